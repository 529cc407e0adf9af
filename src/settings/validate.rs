//! Validation: the raw text of every setting ([`Raw`]) becomes [`Settings`], or every problem at
//! once. Each key is read by its kind, after its own rule if it has one; unset keys take their
//! defaults. No message shows a secret's value (a secret key, or any value read from an SSM
//! SecureString), a URL's user-info or query (through [`crate::http::redact_url`]), or more than
//! [`MAX_SHOWN_CHARS`] of any value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use wdiv_checks::text;

use super::key::{http_url, Key, Kind};
use super::model::{Context, RunMode, SentryDsn, Settings, SettingsError, StorageMode};
use super::schema::{self, KEYS};
use super::values::{Value, Values};
use crate::vocab::{HttpUrl, Secret};

/// The most characters of a setting's value a message quotes.
pub(super) const MAX_SHOWN_CHARS: usize = 120;

/// Every known setting's value as text, trimmed, with where it came from; empty means unset.
pub(super) struct Raw {
    /// Settings read from an SSM SecureString: their values are never quoted.
    pub secure: BTreeSet<String>,
    pub values: BTreeMap<String, String>,
    pub sources: BTreeMap<String, String>,
    pub problems: Vec<String>,
}

/// The settings, validated, from their raw values.
pub(super) fn validate(
    raw: Raw,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let Raw {
        values: raw,
        sources,
        problems,
        secure,
    } = raw;
    let mut check = Checker {
        problems,
        sources: &sources,
        secure: &secure,
    };
    let values = Values(
        KEYS.iter()
            .filter_map(|key| Some((key.name, check.value(key, raw.get(key.name))?)))
            .collect(),
    );
    let (storage, temp_bucket, final_bucket) = buckets(&raw, &mut check, env, context);
    if !check.problems.is_empty() {
        return Err(SettingsError {
            problems: check.problems,
        });
    }
    Ok(settings(
        values,
        storage,
        temp_bucket,
        final_bucket,
        sources,
    ))
}

/// The core's typed fields, from values that are valid.
fn settings(
    values: Values,
    storage: StorageMode,
    temp_bucket: String,
    final_bucket: String,
    sources: BTreeMap<String, String>,
) -> Settings {
    use schema::*;
    let text = |key: &Key| values.text(key);
    let size_floor_exempt_councils = text(&SIZE_FLOOR_EXEMPT_COUNCILS)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let server_environment = text(&SERVER_ENVIRONMENT);
    Settings {
        temp_bucket,
        final_bucket,
        mode: RunMode::decide(&storage, values.flag(&DRY_RUN), false),
        storage,
        sentry_dsn: (values.secret(&SENTRY_DSN))
            .and_then(|dsn| dsn.expose().parse().ok())
            .map(SentryDsn),
        gaps: production_gaps(&values, server_environment.as_deref()),
        server_environment,
        aws_region: text(&AWS_REGION),
        aws_endpoint_url: text(&AWS_ENDPOINT_URL),
        lease_seconds: values.number(&LEASE_SECONDS),
        size_floor_exempt_councils,
        max_files_per_upload: values.number(&MAX_FILES_PER_UPLOAD) as usize,
        max_upload_bytes: values.number(&MAX_UPLOAD_BYTES),
        row_change_warn_percent: values.number(&ROW_CHANGE_WARN_PERCENT),
        run_deadline_seconds: values.number(&RUN_DEADLINE_SECONDS),
        values,
        sources,
    }
}

/// On a production instance, each effect staff and councils rely on that is off, with the
/// settings it lacks (the effects say which they are: `effects::Entry::production`).
fn production_gaps(values: &Values, environment: Option<&str>) -> Vec<String> {
    if environment != Some("production") {
        return Vec::new();
    }
    crate::effects::EFFECTS
        .iter()
        .filter_map(|effect| effect.production.as_ref())
        .filter_map(|needs| {
            let unset: Vec<&str> = (needs.keys.iter())
                .filter(|key| values.get(key).is_none())
                .map(|key| key.name)
                .collect();
            let unset = match unset.as_slice() {
                [] => return None,
                [one] => format!("{one} is"),
                many => format!("{} are", many.join(" and ")),
            };
            Some(format!(
                "SERVER_ENVIRONMENT is production, but {} is off: {unset} not set",
                needs.what
            ))
        })
        .collect()
}

/// Where the buckets are, and their names: folders for a local run unless AWS settings are
/// present, S3 in Lambda mode.
fn buckets(
    raw: &BTreeMap<String, String>,
    check: &mut Checker<'_>,
    env: &[(String, String)],
    context: Context,
) -> (StorageMode, String, String) {
    use schema::{FINAL_BUCKET_NAME, LOCAL_BUCKETS_DIR, TEMP_BUCKET_NAME};
    let take = |key: &Key| raw.get(key.name).cloned();
    // The AWS SDK reads these from the environment itself; they count as "AWS settings".
    let aws_configured = ["AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"]
        .iter()
        .any(|name| raw.contains_key(*name) || env.iter().any(|(k, v)| k == name && !v.is_empty()));

    let storage = match (take(&LOCAL_BUCKETS_DIR), context) {
        (Some(dir), _) => StorageMode::Local(PathBuf::from(dir)),
        (None, Context::Lambda) => StorageMode::S3,
        (None, Context::Cli) if aws_configured => StorageMode::S3,
        (None, Context::Cli) => {
            StorageMode::Local(PathBuf::from(schema::DEFAULT_LOCAL_BUCKETS_DIR))
        }
    };
    let local = matches!(storage, StorageMode::Local(_));
    let mut bucket = |key: &Key, local_default: &str| -> String {
        match take(key) {
            Some(b) => b,
            None if local => local_default.to_owned(),
            None => {
                check.problems.push(format!(
                    "{} is not set: it is required when the buckets are in S3",
                    key.name
                ));
                String::new()
            }
        }
    };
    let temp_bucket = bucket(&TEMP_BUCKET_NAME, schema::DEFAULT_LOCAL_TEMP_BUCKET);
    let final_bucket = bucket(&FINAL_BUCKET_NAME, schema::DEFAULT_LOCAL_FINAL_BUCKET);
    if !temp_bucket.is_empty() && temp_bucket == final_bucket {
        check.problems.push(format!(
            "TEMP_BUCKET_NAME and FINAL_BUCKET_NAME are both {}: they must differ",
            quoted(&temp_bucket)
        ));
    }
    (storage, temp_bucket, final_bucket)
}

struct Checker<'a> {
    problems: Vec<String>,
    sources: &'a BTreeMap<String, String>,
    secure: &'a BTreeSet<String>,
}

impl Checker<'_> {
    /// `key`'s value: `raw` checked by the key's rule, or else by its kind, and read by its kind;
    /// its default when unset. `None`: unset, or not valid (then a problem says why).
    fn value(&mut self, key: &Key, raw: Option<&String>) -> Option<Value> {
        let Some(text) = raw else {
            return key.default.and_then(|d| read(key.kind, d).ok());
        };
        let read = match key.rule {
            Some(rule) => rule(text).and_then(|()| read(key.kind, text)),
            None => read(key.kind, text),
        };
        match read {
            Ok(value) => Some(value),
            Err(why) => {
                self.invalid(key, text, &why);
                None
            }
        }
    }

    /// A problem with a setting's value. The value is shown, unless it is a secret (then only
    /// the name is), and a URL only through [`crate::http::redact_url`].
    fn invalid(&mut self, key: &Key, value: &str, why: &str) {
        let name = key.name;
        let from = self
            .sources
            .get(name)
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
        let shown = match key.kind {
            _ if self.secure.contains(name) => String::new(),
            Kind::Secret => String::new(),
            Kind::Url => format!(" {}", quoted(&crate::http::redact_url(value))),
            _ => format!(" {}", quoted(value)),
        };
        self.problems.push(format!("{name}{shown}{from} {why}"));
    }
}

/// A value read by its kind.
fn read(kind: Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Plain => Ok(Value::Text(text.to_owned())),
        Kind::Secret => Ok(Value::Secret(Secret::new(text))),
        Kind::Url => http_url(text).map(|_| Value::Url(HttpUrl::new(text))),
        Kind::Number { min, max } => match text.replace('_', "").parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::Number(n)),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        Kind::Flag => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Flag(true)),
            "false" | "0" | "no" => Ok(Value::Flag(false)),
            _ => Err("must be true or false".to_owned()),
        },
    }
}

/// A value as a problem quotes it: hidden characters escaped, at most [`MAX_SHOWN_CHARS`]
/// characters, in double quotes. Only for values that are not secrets.
fn quoted(value: &str) -> String {
    let shown = text::escape_control(&text::truncate_chars(value, MAX_SHOWN_CHARS));
    format!("\"{}\"", shown.replace('"', "\\\""))
}
