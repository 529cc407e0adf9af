//! `ssm:` settings: a setting whose value is `ssm:NAME` is read from the SSM parameter NAME
//! (`/wdiv_s3_trigger/GITHUB_API_KEY`, or the parameter's ARN) once, at start-up, decrypted. The
//! value read then goes through the same validation as any other value.
//!
//! A secret so kept is never in the function's plain environment, and its value never in a
//! message: errors name the setting and the parameter, never what it holds.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::ParameterType;

/// What marks a value as the name of an SSM parameter.
pub const SSM_PREFIX: &str = "ssm:";

/// Settings that say where AWS is, and so cannot themselves be read from it.
const NOT_FROM_SSM: &[&str] = &["AWS_REGION", "AWS_ENDPOINT_URL"];

/// The longest parameter name (or ARN) SSM accepts.
const MAX_NAME_CHARS: usize = 2048;

/// The SSM parameter a value names, if it names one.
pub fn parameter_name(value: &str) -> Option<&str> {
    value.strip_prefix(SSM_PREFIX).map(str::trim)
}

/// Settings values after their `ssm:` references are read.
pub(crate) struct Resolved {
    /// Where each value read came from, replacing the setting's source in messages.
    pub sources: BTreeMap<String, String>,
    /// The settings whose values came from a SecureString: never quoted, whatever the setting.
    pub secure: BTreeSet<String>,
    pub problems: Vec<String>,
}

/// Replaces every `ssm:NAME` value in `values` by the parameter's value, read with one
/// `GetParameter` each (decrypted). Every problem is listed; no value is shown in any.
pub(crate) async fn resolve(
    values: &mut BTreeMap<String, String>,
    sources: &BTreeMap<String, String>,
) -> Resolved {
    let mut resolved = Resolved {
        sources: BTreeMap::new(),
        secure: BTreeSet::new(),
        problems: Vec::new(),
    };
    let to_read = parameters_to_read(values, sources, &mut resolved.problems);
    if to_read.is_empty() {
        return resolved;
    }
    let client = ssm_client(values).await;
    for (setting, name) in to_read {
        let read = client
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await;
        match read {
            Ok(output) => take_parameter(
                values,
                sources,
                &mut resolved,
                &setting,
                &name,
                output.parameter,
            ),
            Err(e) => resolved.problems.push(format!(
                "{setting}{} names the SSM parameter {}, {}",
                from(sources, &setting),
                shown(&name),
                why_not_read(&e, &name)
            )),
        }
    }
    resolved
}

/// ` (from SOURCE)`, where the setting was given, for messages.
fn from(sources: &BTreeMap<String, String>, setting: &str) -> String {
    sources
        .get(setting)
        .map(|s| format!(" (from {s})"))
        .unwrap_or_default()
}

/// The settings whose values name an SSM parameter, taken out of `values`, with the parameter
/// each names: those that may be read from SSM, under a name SSM can hold. The others are
/// problems.
fn parameters_to_read(
    values: &mut BTreeMap<String, String>,
    sources: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> Vec<(String, String)> {
    let wanted: Vec<(String, String)> = values
        .iter()
        .filter_map(|(setting, value)| {
            parameter_name(value).map(|name| (setting.clone(), name.to_owned()))
        })
        .collect();
    let mut to_read = Vec::new();
    for (setting, name) in wanted {
        values.remove(&setting);
        if NOT_FROM_SSM.contains(&setting.as_str()) {
            problems.push(format!(
                "{setting}{} cannot be read from SSM: it says where AWS (and so SSM) is; set it \
                 directly",
                from(sources, &setting)
            ));
        } else if let Err(why) = check_name(&name) {
            problems.push(format!(
                "{setting}{} names the SSM parameter {}, which {why}",
                from(sources, &setting),
                shown(&name)
            ));
        } else {
            to_read.push((setting, name));
        }
    }
    to_read
}

/// The SSM client, at the region and endpoint the (unvalidated) values give.
async fn ssm_client(values: &BTreeMap<String, String>) -> aws_sdk_ssm::Client {
    let region = values.get("AWS_REGION").map(String::as_str);
    // An endpoint that is not a URL is reported by validation; SSM is then asked at AWS's.
    // The SDK's service-specific variable wins, as it does for the SDK's own clients.
    let ssm_endpoint = std::env::var("AWS_ENDPOINT_URL_SSM").ok();
    let endpoint = ssm_endpoint
        .as_deref()
        .or(values.get("AWS_ENDPOINT_URL").map(String::as_str))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let sdk = crate::aws::sdk_config(region, endpoint).await;
    aws_sdk_ssm::Client::new(&sdk)
}

/// The value SSM answered for `setting`'s parameter `name`, put in `values`, with where it came
/// from; or why it cannot be used.
fn take_parameter(
    values: &mut BTreeMap<String, String>,
    sources: &BTreeMap<String, String>,
    resolved: &mut Resolved,
    setting: &str,
    name: &str,
    parameter: Option<aws_sdk_ssm::types::Parameter>,
) {
    let Some(parameter) = parameter else {
        resolved.problems.push(format!(
            "{setting}{}: SSM answered for parameter {} without a parameter",
            from(sources, setting),
            shown(name)
        ));
        return;
    };
    let value = parameter.value.unwrap_or_default();
    let value = value.trim();
    if value.is_empty() {
        resolved.problems.push(format!(
            "{setting}{} names the SSM parameter {}, which is empty (put the value \
             in it, or unset {setting})",
            from(sources, setting),
            shown(name)
        ));
        return;
    }
    let secure = parameter.r#type == Some(ParameterType::SecureString);
    if secure {
        resolved.secure.insert(setting.to_owned());
    }
    resolved.sources.insert(
        setting.to_owned(),
        format!(
            "SSM {}parameter {}{}",
            if secure { "SecureString " } else { "" },
            shown(name),
            sources
                .get(setting)
                .map(|s| format!(", named in {s}"))
                .unwrap_or_default()
        ),
    );
    values.insert(setting.to_owned(), value.to_owned());
}

/// What an operator can do about a parameter that could not be read.
fn why_not_read(e: &SdkError<GetParameterError>, name: &str) -> String {
    let name = shown(name);
    if let Some(service) = e.as_service_error() {
        match service {
            GetParameterError::ParameterNotFound(_) => {
                return format!(
                    "which does not exist in this account and region: create it (aws ssm \
                     put-parameter --name {name} --type SecureString --value ...) or correct \
                     the name"
                )
            }
            GetParameterError::ParameterVersionNotFound(_) => {
                return "whose version or label does not exist: name one that does, or none \
                        for the latest"
                    .into()
            }
            GetParameterError::InvalidKeyId(_) => {
                return "which cannot be decrypted: its KMS key is missing or disabled".into()
            }
            _ => {}
        }
    }
    match e.code() {
        Some("AccessDeniedException") => format!(
            "which this role may not read: allow ssm:GetParameter on {name} (and kms:Decrypt on \
             its key, for a SecureString under a customer-managed key)"
        ),
        Some(
            code @ ("UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"),
        ) => {
            format!("which cannot be read: the AWS credentials were refused ({code})")
        }
        _ => format!("which cannot be read: {}", error_chain(e)),
    }
}

/// The error and its causes on one bounded line: their messages, never the raw response (which
/// the SDK's display context would print whole).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    wdiv_checks::text::truncate_chars(&wdiv_checks::text::escape_control(&parts.join(": ")), 300)
}

/// Parameter names SSM accepts: letters, digits, `_.-/`, and `:` in an ARN or a version selector.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty: write ssm:/path/to/parameter");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("is too long for a parameter name");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c))
    {
        return Err("is not a parameter name: only letters, digits and _ . - / : may be in one");
    }
    Ok(())
}

/// A parameter name as messages show it: quoted, short, without hidden characters.
fn shown(name: &str) -> String {
    format!(
        "{:?}",
        wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(name, 120))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_ssm_is_asked() {
        assert!(check_name("/wdiv_s3_trigger/GITHUB_API_KEY").is_ok());
        assert!(check_name("arn:aws:ssm:eu-west-2:123456789012:parameter/x/y").is_ok());
        assert!(check_name("/x/y:3").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("/a b").is_err());
        assert!(check_name("/a\n").is_err());
        assert_eq!(parameter_name("ssm:/a/b"), Some("/a/b"));
        assert_eq!(parameter_name("/a/b"), None);
    }
}
