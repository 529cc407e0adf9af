//! Settings: a TOML file, then environment variables on top, with the original's names.
//!
//! Everything is read and validated once, at start-up, and every problem is listed at once: an
//! operator fixing a deploy should not have to redeploy once per missing key. An empty value means
//! unset, because the original's templates write `""` for a key that is not used.
//!
//! Settings come from whoever deploys, and a value can be anything. Loading never panics, and
//! what it accepts cannot make a client panic later (a Sentry DSN that parses, tokens that fit
//! in an HTTP header). No message shows a secret's value ([`SECRET_NAMES`]), a URL's user-info or
//! query ([`URL_NAMES`], through [`crate::http::redact_url`]), or a line of a settings file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use wdiv_checks::text;
pub use crate::vocab::{DistributionId, EmailAddress, HttpUrl, RepoName, Secret};

/// Every setting, by the name it has in the environment and in TOML files.
pub const NAMES: &[&str] = &[
    "TEMP_BUCKET_NAME",
    "FINAL_BUCKET_NAME",
    "SENTRY_DSN",
    "GITHUB_REPO",
    "GITHUB_API_KEY",
    "GITHUB_API_URL",
    "WDIV_WEBHOOK_URL",
    "WDIV_API_KEY",
    "WDIV_API_URL",
    "ERROR_REPORT_EMAIL",
    "EMAIL_FROM",
    "SERVER_ENVIRONMENT",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "CLOUDFRONT_DISTRIBUTION_ID",
    "CLOUDFRONT_PATHS",
    "SUCCESS_REPORT_EMAIL",
    "LEASE_SECONDS",
    "DRY_RUN",
    "LOCAL_BUCKETS_DIR",
    "SIZE_FLOOR_EXEMPT_COUNCILS",
    "MAX_FILES_PER_UPLOAD",
    "MAX_UPLOAD_BYTES",
    "COUNCIL_NAME_TIMEOUT_SECONDS",
    "ROW_CHANGE_WARN_PERCENT",
    "RUN_DEADLINE_SECONDS",
];

/// The settings whose values are secrets: no message, log or `Debug` output shows them.
pub const SECRET_NAMES: &[&str] = &["SENTRY_DSN", "GITHUB_API_KEY", "WDIV_API_KEY"];
/// The settings that are URLs: shown only through [`crate::http::redact_url`].
pub const URL_NAMES: &[&str] = &[
    "GITHUB_API_URL",
    "WDIV_API_URL",
    "WDIV_WEBHOOK_URL",
    "AWS_ENDPOINT_URL",
];
/// The most characters of a setting's value a message quotes.
const MAX_SHOWN_CHARS: usize = 120;

pub const DEFAULT_EMAIL_FROM: &str = "pollingstations@democracyclub.org.uk";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_WDIV_API_URL: &str = "https://wheredoivote.co.uk/api/beta";
/// How long a run holds an upload's effects before another run may take them over.
pub const DEFAULT_LEASE_SECONDS: u64 = 300;
/// Where local runs keep their buckets when nothing else is said.
pub const DEFAULT_LOCAL_BUCKETS_DIR: &str = "local-buckets";
/// Bucket names for local runs, where the buckets are only folders.
pub const DEFAULT_LOCAL_TEMP_BUCKET: &str = "wdiv-temp";
pub const DEFAULT_LOCAL_FINAL_BUCKET: &str = "wdiv-final";
/// How many files one upload may have.
pub const DEFAULT_MAX_FILES_PER_UPLOAD: usize = 10;
/// How many bytes one upload's files may hold together.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 300_000_000;
/// The whole time the council name's lookup may take, retries included.
pub const DEFAULT_COUNCIL_NAME_TIMEOUT_SECONDS: u64 = 10;
/// How long `run`, `simulate`, `override` and `replay` have for one event, checks included,
/// before no step starts: as long as the Lambda function (120 s) less its margin. In Lambda
/// mode the invocation's own deadline is used instead.
pub const DEFAULT_RUN_DEADLINE_SECONDS: u64 = 110;
/// `ROW_CHANGE_WARN_PERCENT`'s default.
pub const DEFAULT_ROW_CHANGE_WARN_PERCENT: u64 = 30;
/// The settings file read when `--settings` is not given, if it exists.
pub const DEFAULT_SETTINGS_FILE: &str = "settings/local.toml";

/// A Sentry DSN that parses, so that Sentry starts with it without panicking. A secret: its key
/// lets anyone send events to the project, so `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct SentryDsn(sentry::types::Dsn);

impl SentryDsn {
    /// The DSN itself, for the one place that starts Sentry.
    pub fn expose(&self) -> &sentry::types::Dsn {
        &self.0
    }
}

impl fmt::Debug for SentryDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for SentryDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where the buckets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    /// Amazon S3, or an S3-compatible endpoint (`AWS_ENDPOINT_URL`).
    S3,
    /// Folders: `{dir}/{bucket}/{key}`.
    Local(PathBuf),
}

/// Validated settings. `Debug` (logged with `-v`) masks the secrets and the URLs' user-info and
/// queries.
#[derive(Clone)]
pub struct Settings {
    pub temp_bucket: String,
    pub final_bucket: String,
    pub storage: StorageMode,
    /// What this run does: everything, everything but the external effects, or nothing.
    pub mode: RunMode,
    /// The effects' settings, validated; each effect module makes its one optional
    /// configuration from them (`effects::issue::config` and so on).
    pub github_repo: Option<RepoName>,
    pub github_api_key: Option<Secret>,
    pub github_api_url: HttpUrl,
    pub cloudfront_distribution_id: Option<DistributionId>,
    pub cloudfront_paths: CdnPaths,
    pub email_from: EmailAddress,
    pub error_report_email: Option<EmailAddress>,
    pub success_report_email: Option<EmailAddress>,
    pub wdiv_webhook_url: Option<HttpUrl>,
    pub sentry_dsn: Option<SentryDsn>,
    /// For council names (`{WDIV_API_URL}/councils/{id}.json`), with `WDIV_API_KEY` if set.
    pub wdiv_api_url: String,
    pub wdiv_api_key: Option<Secret>,
    pub server_environment: Option<String>,
    pub aws_region: Option<String>,
    pub aws_endpoint_url: Option<String>,
    /// `LEASE_SECONDS`: how long a run holds an upload's effects (a crashed run's work is taken
    /// over after it).
    pub lease_seconds: u64,
    pub size_floor_exempt_councils: Vec<String>,
    /// `MAX_FILES_PER_UPLOAD`: an upload with more files fails, unread.
    pub max_files_per_upload: usize,
    /// `MAX_UPLOAD_BYTES`: an upload whose files hold more fails, unread.
    pub max_upload_bytes: u64,
    /// `COUNCIL_NAME_TIMEOUT_SECONDS`: after this the council id stands in for its name.
    pub council_name_timeout_seconds: u64,
    /// `ROW_CHANGE_WARN_PERCENT`: a file whose rows changed by more than this since the
    /// council's last import is warned about.
    pub row_change_warn_percent: u64,
    /// `RUN_DEADLINE_SECONDS`: outside Lambda, the time one event may take before no step
    /// starts (`execute::Deadline`).
    pub run_deadline_seconds: u64,
    /// Where each value came from, for messages ("TEMP_BUCKET_NAME from settings/prod.toml").
    pub sources: BTreeMap<String, String>,
}

/// What a run does; decided once, by [`RunMode::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Every effect.
    Live,
    /// The buckets are written; the external effects (GitHub, CloudFront, email, webhook) are
    /// only previewed: a local run with `DRY_RUN` unset.
    PreviewExternal,
    /// Nothing is written anywhere: `--dry-run` or `DRY_RUN=true`.
    DryRun,
}

impl RunMode {
    /// The one place the run mode is decided: from where the buckets are, `DRY_RUN`, and the
    /// command line's `--dry-run`.
    pub fn decide(
        storage: &StorageMode,
        dry_run_setting: Option<bool>,
        dry_run_flag: bool,
    ) -> Self {
        match (dry_run_flag, dry_run_setting, storage) {
            (true, _, _) | (_, Some(true), _) => RunMode::DryRun,
            (false, None, StorageMode::Local(_)) => RunMode::PreviewExternal,
            _ => RunMode::Live,
        }
    }

    pub fn is_dry_run(self) -> bool {
        self == RunMode::DryRun
    }
}

impl Settings {
    /// The command line's `--dry-run`: nothing is written, whatever `DRY_RUN` says.
    pub fn dry_run_requested(&mut self) {
        self.mode = RunMode::decide(&self.storage, Some(true), true);
    }

    /// What a production instance (`SERVER_ENVIRONMENT=production`) has turned off among the
    /// effects staff and councils rely on: the GitHub issue, the webhook to WDIV, the failure
    /// email. Each names the settings it lacks. Start-up logs them as warnings, so that a
    /// missing parameter in a deploy is seen at once rather than by a council that hears nothing.
    pub fn production_gaps(&self) -> Vec<String> {
        if self.server_environment.as_deref() != Some("production") {
            return Vec::new();
        }
        let missing = |pairs: &[(&'static str, bool)]| -> Vec<&'static str> {
            pairs
                .iter()
                .filter(|(_, set)| !set)
                .map(|(n, _)| *n)
                .collect()
        };
        [
            (
                "the GitHub issue",
                missing(&[
                    ("GITHUB_REPO", self.github_repo.is_some()),
                    ("GITHUB_API_KEY", self.github_api_key.is_some()),
                ]),
            ),
            (
                "the webhook to WDIV",
                missing(&[
                    ("WDIV_WEBHOOK_URL", self.wdiv_webhook_url.is_some()),
                    ("WDIV_API_KEY", self.wdiv_api_key.is_some()),
                ]),
            ),
            (
                "the failure email",
                missing(&[("ERROR_REPORT_EMAIL", self.error_report_email.is_some())]),
            ),
        ]
        .into_iter()
        .filter(|(_, unset)| !unset.is_empty())
        .map(|(effect, unset)| {
            format!(
                "SERVER_ENVIRONMENT is production, but {effect} is off: {} not set",
                match unset.as_slice() {
                    [one] => format!("{one} is"),
                    many => format!("{} are", many.join(" and ")),
                }
            )
        })
        .collect()
    }

    /// True for the instances whose side effects are marked as tests.
    pub fn is_test_instance(&self) -> bool {
        matches!(
            self.server_environment.as_deref(),
            Some("staging" | "development" | "test")
        )
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field, named here so that a new one cannot be logged without a decision. Secrets
        // and URLs mask themselves in their own `Debug`.
        let Settings {
            temp_bucket,
            final_bucket,
            storage,
            mode,
            github_repo,
            github_api_key,
            github_api_url,
            cloudfront_distribution_id,
            cloudfront_paths,
            email_from,
            error_report_email,
            success_report_email,
            wdiv_webhook_url,
            sentry_dsn,
            wdiv_api_url,
            wdiv_api_key,
            server_environment,
            aws_region,
            aws_endpoint_url,
            lease_seconds,
            size_floor_exempt_councils,
            max_files_per_upload,
            max_upload_bytes,
            council_name_timeout_seconds,
            row_change_warn_percent,
            run_deadline_seconds,
            sources,
        } = self;
        let url = |u: &String| crate::http::redact_url(u);
        f.debug_struct("Settings")
            .field("temp_bucket", temp_bucket)
            .field("final_bucket", final_bucket)
            .field("storage", storage)
            .field("mode", mode)
            .field("github_repo", github_repo)
            .field("github_api_key", github_api_key)
            .field("github_api_url", github_api_url)
            .field("cloudfront_distribution_id", cloudfront_distribution_id)
            .field("cloudfront_paths", cloudfront_paths)
            .field("email_from", email_from)
            .field("error_report_email", error_report_email)
            .field("success_report_email", success_report_email)
            .field("wdiv_webhook_url", wdiv_webhook_url)
            .field("sentry_dsn", sentry_dsn)
            .field("wdiv_api_url", &url(wdiv_api_url))
            .field("wdiv_api_key", wdiv_api_key)
            .field("server_environment", server_environment)
            .field("aws_region", aws_region)
            .field("aws_endpoint_url", &aws_endpoint_url.as_ref().map(url))
            .field("lease_seconds", lease_seconds)
            .field("size_floor_exempt_councils", size_floor_exempt_councils)
            .field("max_files_per_upload", max_files_per_upload)
            .field("max_upload_bytes", max_upload_bytes)
            .field("council_name_timeout_seconds", council_name_timeout_seconds)
            .field("row_change_warn_percent", row_change_warn_percent)
            .field("run_deadline_seconds", run_deadline_seconds)
            .field("sources", sources)
            .finish()
    }
}

/// What a CloudFront invalidation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdnPaths {
    /// One wildcard path for the upload's prefix: one billable path.
    Prefix,
    /// One path per file (and the report).
    Files,
}

/// How the program runs, which changes what is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// As a Lambda: S3, with the buckets named.
    Lambda,
    /// From the command line: local folders unless AWS settings are present.
    Cli,
}

/// Every problem with the settings, at once.
#[derive(Debug, thiserror::Error)]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the settings are not valid ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// The environment variables of [`NAMES`], as strings exactly as set (figment's own `Env`
/// provider would read `0123` as the number 123, which would corrupt a token).
struct RawEnv {
    vars: Vec<(String, String)>,
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// The environment, as a list of variables (tests pass their own).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Reads the settings: `file` (or [`DEFAULT_SETTINGS_FILE`] when it exists), then `env` on top.
/// Three steps, each listing every problem it finds: the sources, their raw values, then the
/// validated settings (with one configuration per effect).
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let (figment, problems) = sources(file, env)?;
    let mut raw = raw_values(&figment, problems)?;
    for (name, value) in &raw.values {
        if crate::secrets::parameter_name(value).is_some() {
            raw.problems.push(format!(
                "{name} (from {}) names an SSM parameter, which only start-up reads \
                 (settings::load_resolved)",
                raw.sources
                    .get(name)
                    .map(String::as_str)
                    .unwrap_or("the settings")
            ));
        }
    }
    validate(raw, env, context)
}

/// [`load`], with every `ssm:NAME` value first replaced by the SSM parameter NAME's value
/// (decrypted; [`crate::secrets`]). What start-up calls, in both the CLI and Lambda.
pub async fn load_resolved(
    file: Option<&Path>,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let (figment, problems) = sources(file, env)?;
    let mut raw = raw_values(&figment, problems)?;
    let resolved = crate::secrets::resolve(&mut raw.values, &raw.sources).await;
    raw.sources.extend(resolved.sources);
    raw.secure = resolved.secure;
    raw.problems.extend(resolved.problems);
    validate(raw, env, context)
}

/// The settings file and the environment, merged (the environment wins).
fn sources(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<(Figment, Vec<String>), SettingsError> {
    let mut figment = Figment::new();
    let mut problems = Vec::new();
    let file = match file {
        Some(path) if !path.is_file() => {
            problems.push(format!(
                "the settings file {} does not exist (copy a template from settings/)",
                shown_path(path)
            ));
            None
        }
        Some(path) => Some(path),
        None => Some(Path::new(DEFAULT_SETTINGS_FILE)).filter(|path| path.is_file()),
    };
    if let Some(path) = file {
        // Our own parse first, for an error that shows no line of the file (figment's would quote
        // the line, and it may hold a secret); figment then reads the same file for the merge.
        if let Err(problem) = check_toml(path) {
            problems.push(problem);
            return Err(SettingsError { problems });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| NAMES.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok((figment.merge(RawEnv { vars }), problems))
}

/// Every known setting's value as text, trimmed, with where it came from; empty means unset.
struct Raw {
    /// Settings read from an SSM SecureString: their values are never quoted.
    secure: BTreeSet<String>,
    values: BTreeMap<String, String>,
    sources: BTreeMap<String, String>,
    problems: Vec<String>,
}

fn raw_values(figment: &Figment, mut problems: Vec<String>) -> Result<Raw, SettingsError> {
    let raw: BTreeMap<String, Value> = match figment.extract() {
        Ok(map) => map,
        Err(e) => {
            // Not expected once the file has parsed; figment's own text may quote a value or a
            // line of the file, so only where it happened is shown.
            let from = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => source.to_string(),
                    None => m.name.to_string(),
                })
                .unwrap_or_else(|| "the settings".into());
            problems.push(format!(
                "cannot read the settings from {}: a value cannot be read",
                text::escape_control(&from)
            ));
            return Err(SettingsError { problems });
        }
    };

    let mut values = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (key, value) in &raw {
        if !NAMES.contains(&key.as_str()) {
            let hint = if NAMES.contains(&key.to_ascii_uppercase().as_str()) {
                format!(" (settings are upper case: {})", key.to_ascii_uppercase())
            } else {
                String::new()
            };
            problems.push(format!(
                "{} in {} is not a known setting{hint}",
                text::escape_control(&text::truncate_chars(key, MAX_SHOWN_CHARS)),
                source_of(figment, key)
            ));
            continue;
        }
        match scalar_text(value) {
            Some(text) if text.trim().is_empty() => {}
            Some(text) => {
                values.insert(key.clone(), text.trim().to_owned());
                sources.insert(key.clone(), source_of(figment, key));
            }
            None => problems.push(format!(
                "{key} in {} must be text, a number or true/false",
                source_of(figment, key)
            )),
        }
    }
    Ok(Raw {
        secure: BTreeSet::new(),
        values,
        sources,
        problems,
    })
}

/// The settings, validated, from their raw values.
fn validate(
    raw: Raw,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let Raw {
        values,
        sources,
        problems,
        secure,
    } = raw;
    let take = |name: &str| values.get(name).cloned();
    let mut check = Checker {
        problems,
        sources: &sources,
        secure: &secure,
    };
    let (storage, temp_bucket, final_bucket) = buckets(&take, &mut check, env, context);

    let sentry_dsn = take("SENTRY_DSN").and_then(|dsn| check.sentry_dsn(&dsn));

    let github_api_url = take("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_GITHUB_API_URL.into());
    check.api_url("GITHUB_API_URL", &github_api_url, "GITHUB_API_KEY");
    let wdiv_api_url = take("WDIV_API_URL").unwrap_or_else(|| DEFAULT_WDIV_API_URL.into());
    check.api_url("WDIV_API_URL", &wdiv_api_url, "WDIV_API_KEY");
    let aws_endpoint_url = take("AWS_ENDPOINT_URL");
    if let Some(url) = &aws_endpoint_url {
        check.url("AWS_ENDPOINT_URL", url);
    }
    let email_from = take("EMAIL_FROM").unwrap_or_else(|| DEFAULT_EMAIL_FROM.into());
    check.email("EMAIL_FROM", &email_from);
    let cloudfront_paths = match take("CLOUDFRONT_PATHS").as_deref() {
        None | Some("prefix") => CdnPaths::Prefix,
        Some("files") => CdnPaths::Files,
        Some(other) => {
            check.invalid("CLOUDFRONT_PATHS", other, "must be prefix or files");
            CdnPaths::Prefix
        }
    };
    let lease_seconds = match take("LEASE_SECONDS") {
        None => DEFAULT_LEASE_SECONDS,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => n,
            _ => {
                check.invalid(
                    "LEASE_SECONDS",
                    &text,
                    "must be a number of seconds, 1 to 3600",
                );
                DEFAULT_LEASE_SECONDS
            }
        },
    };
    let mut number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> u64 {
        match take(name) {
            None => default,
            Some(text) => match text.replace('_', "").parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    check.invalid(
                        name,
                        &text,
                        &format!(
                            "must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    );
                    default
                }
            },
        }
    };
    let max_files_per_upload = number(
        "MAX_FILES_PER_UPLOAD",
        DEFAULT_MAX_FILES_PER_UPLOAD as u64,
        1..=1000,
    ) as usize;
    let max_upload_bytes = number(
        "MAX_UPLOAD_BYTES",
        DEFAULT_MAX_UPLOAD_BYTES,
        1..=50_000_000_000,
    );
    let council_name_timeout_seconds = number(
        "COUNCIL_NAME_TIMEOUT_SECONDS",
        DEFAULT_COUNCIL_NAME_TIMEOUT_SECONDS,
        1..=120,
    );
    let row_change_warn_percent = number(
        "ROW_CHANGE_WARN_PERCENT",
        DEFAULT_ROW_CHANGE_WARN_PERCENT,
        1..=10_000,
    );
    let run_deadline_seconds = number(
        "RUN_DEADLINE_SECONDS",
        DEFAULT_RUN_DEADLINE_SECONDS,
        1..=3600,
    );
    let dry_run = take("DRY_RUN").and_then(|v| match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => {
            check.invalid("DRY_RUN", &v, "must be true or false");
            None
        }
    });
    let size_floor_exempt_councils = match take("SIZE_FLOOR_EXEMPT_COUNCILS") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => wdiv_checks::DEFAULT_SIZE_FLOOR_EXEMPT
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    let effects = effect_settings(&take, &mut check);
    if !check.problems.is_empty() {
        return Err(SettingsError {
            problems: check.problems,
        });
    }
    let mode = RunMode::decide(&storage, dry_run, false);
    Ok(Settings {
        temp_bucket,
        final_bucket,
        storage,
        mode,
        github_repo: effects.github_repo,
        github_api_key: effects.github_api_key,
        github_api_url: HttpUrl::new(github_api_url),
        cloudfront_distribution_id: effects.cloudfront_distribution_id,
        cloudfront_paths,
        email_from: EmailAddress::new(email_from),
        error_report_email: effects.error_report_email,
        success_report_email: effects.success_report_email,
        wdiv_webhook_url: effects.wdiv_webhook_url,
        sentry_dsn,
        wdiv_api_url,
        wdiv_api_key: effects.wdiv_api_key,
        server_environment: take("SERVER_ENVIRONMENT"),
        aws_region: take("AWS_REGION"),
        aws_endpoint_url,
        lease_seconds,
        size_floor_exempt_councils,
        max_files_per_upload,
        max_upload_bytes,
        council_name_timeout_seconds,
        row_change_warn_percent,
        run_deadline_seconds,
        sources,
    })
}

/// Where the buckets are, and their names: folders for a local run unless AWS settings are
/// present, S3 in Lambda mode.
fn buckets(
    take: &impl Fn(&str) -> Option<String>,
    check: &mut Checker<'_>,
    env: &[(String, String)],
    context: Context,
) -> (StorageMode, String, String) {
    // The AWS SDK reads these from the environment itself; they count as "AWS settings".
    let aws_configured = ["AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"]
        .iter()
        .any(|name| take(name).is_some() || env.iter().any(|(k, v)| k == name && !v.is_empty()));

    let storage = match (take("LOCAL_BUCKETS_DIR"), context) {
        (Some(dir), _) => StorageMode::Local(PathBuf::from(dir)),
        (None, Context::Lambda) => StorageMode::S3,
        (None, Context::Cli) if aws_configured => StorageMode::S3,
        (None, Context::Cli) => StorageMode::Local(PathBuf::from(DEFAULT_LOCAL_BUCKETS_DIR)),
    };
    let local = matches!(storage, StorageMode::Local(_));
    let bucket = |check: &mut Checker<'_>, name: &str, local_default: &str| -> String {
        match take(name) {
            Some(b) => {
                check.bucket_name(name, &b);
                b
            }
            None if local => local_default.to_owned(),
            None => {
                check.problems.push(format!(
                    "{name} is not set: it is required when the buckets are in S3"
                ));
                String::new()
            }
        }
    };
    let temp_bucket = bucket(check, "TEMP_BUCKET_NAME", DEFAULT_LOCAL_TEMP_BUCKET);
    let final_bucket = bucket(check, "FINAL_BUCKET_NAME", DEFAULT_LOCAL_FINAL_BUCKET);
    if !temp_bucket.is_empty() && temp_bucket == final_bucket {
        check.problems.push(format!(
            "TEMP_BUCKET_NAME and FINAL_BUCKET_NAME are both {}: they must differ",
            quoted(&temp_bucket)
        ));
    }

    (storage, temp_bucket, final_bucket)
}

/// The effects' settings, validated.
struct EffectSettings {
    github_repo: Option<RepoName>,
    github_api_key: Option<Secret>,
    cloudfront_distribution_id: Option<DistributionId>,
    error_report_email: Option<EmailAddress>,
    success_report_email: Option<EmailAddress>,
    wdiv_webhook_url: Option<HttpUrl>,
    wdiv_api_key: Option<Secret>,
}

fn effect_settings(
    take: &impl Fn(&str) -> Option<String>,
    check: &mut Checker<'_>,
) -> EffectSettings {
    let mut token = |name: &str| {
        take(name).map(|token| {
            let token = Secret::new(token);
            check.token(name, &token);
            token
        })
    };
    let github_api_key = token("GITHUB_API_KEY");
    let wdiv_api_key = token("WDIV_API_KEY");
    let github_repo = take("GITHUB_REPO").map(|repo| {
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            check.invalid("GITHUB_REPO", &repo, "must be owner/name");
        }
        RepoName::new(repo)
    });
    let wdiv_webhook_url = take("WDIV_WEBHOOK_URL").map(|url| {
        check.url("WDIV_WEBHOOK_URL", &url);
        HttpUrl::new(url)
    });
    let mut email = |name: &'static str| {
        take(name).map(|address| {
            check.email(name, &address);
            EmailAddress::new(address)
        })
    };
    EffectSettings {
        github_repo,
        github_api_key,
        cloudfront_distribution_id: take("CLOUDFRONT_DISTRIBUTION_ID").map(DistributionId::new),
        error_report_email: email("ERROR_REPORT_EMAIL"),
        success_report_email: email("SUCCESS_REPORT_EMAIL"),
        wdiv_webhook_url,
        wdiv_api_key,
    }
}

/// A path as a message shows it: one line.
fn shown_path(path: &Path) -> String {
    text::escape_control(&path.display().to_string())
}

/// Parses the settings file as TOML. On a syntax error, the problem names the file, the line and
/// column, and the parser's message, but never shows a line of the file: a line may hold a
/// secret (`GITHUB_API_KEY = "ghp_…` with its closing quote missing).
fn check_toml(path: &Path) -> Result<(), String> {
    let contents = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", shown_path(path)))?;
    let error = match contents.parse::<toml::Table>() {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    let at = match error.span() {
        Some(span) => {
            let start = span.start.min(contents.len());
            let start = (0..=start)
                .rev()
                .find(|i| contents.is_char_boundary(*i))
                .unwrap_or(0);
            let before = &contents[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            format!(", line {line}, column {column}")
        }
        None => String::new(),
    };
    Err(format!(
        "the settings file {}{at} is not valid TOML: {} (the line is not shown: it may hold a \
         secret)",
        shown_path(path),
        toml_message(error.message())
    ))
}

/// The TOML parser's message on one line. The parser names keys in backquotes (a duplicate key):
/// a setting's name is kept, anything else (a quoted key could be a pasted secret) is not.
fn toml_message(message: &str) -> String {
    let kept: Vec<&str> = message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            let quoted = i % 2 == 1;
            if quoted && part.chars().count() > 2 && !NAMES.contains(&part) {
                "…"
            } else {
                part
            }
        })
        .collect();
    let kept = kept.join("`");
    let lines: Vec<&str> = kept
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    text::one_line(&lines.join("; "))
}

/// A value as a problem quotes it: hidden characters escaped, at most [`MAX_SHOWN_CHARS`]
/// characters, in double quotes. Only for values that are not secrets.
fn quoted(value: &str) -> String {
    let shown = text::escape_control(&text::truncate_chars(value, MAX_SHOWN_CHARS));
    format!("\"{}\"", shown.replace('"', "\\\""))
}

/// Where `key` came from, for messages: "environment variable", or the file's path (one line).
fn source_of(figment: &Figment, key: &str) -> String {
    let source = match figment.find_metadata(key) {
        Some(meta) => match &meta.source {
            Some(source) => source.to_string(),
            None => meta.name.to_string(),
        },
        None => "the settings".into(),
    };
    text::escape_control(&source)
}

/// A scalar as text; lists (of council ids) are joined with commas.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_f64().map(|f| f.to_string())),
        Value::Empty(..) => Some(String::new()),
        Value::Array(_, items) => items
            .iter()
            .map(scalar_text)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Dict(..) => None,
    }
}

struct Checker<'a> {
    problems: Vec<String>,
    sources: &'a BTreeMap<String, String>,
    secure: &'a BTreeSet<String>,
}

impl Checker<'_> {
    /// A problem with a setting's value. The value is shown, unless it is a secret (then only
    /// the name is), and a URL only through [`crate::http::redact_url`].
    fn invalid(&mut self, name: &str, value: &str, why: &str) {
        let from = self
            .sources
            .get(name)
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
        let shown = if SECRET_NAMES.contains(&name) || self.secure.contains(name) {
            String::new()
        } else if URL_NAMES.contains(&name) {
            format!(" {}", quoted(&crate::http::redact_url(value)))
        } else {
            format!(" {}", quoted(value))
        };
        self.problems.push(format!("{name}{shown}{from} {why}"));
    }

    /// An http(s) URL with a host; returns it parsed when it is one.
    fn url(&mut self, name: &str, value: &str) -> Option<reqwest::Url> {
        // The URL parser drops tabs and line breaks where a client given the raw text might not.
        let plain = !value
            .chars()
            .any(|c| c.is_whitespace() || text::is_hidden(c));
        match reqwest::Url::parse(value) {
            Ok(url)
                if plain && matches!(url.scheme(), "http" | "https") && url.host().is_some() =>
            {
                Some(url)
            }
            _ => {
                self.invalid(name, value, "must be an http(s) URL");
                None
            }
        }
    }

    /// An API's base URL (`GITHUB_API_URL`, `WDIV_API_URL`): the request URLs are built on it,
    /// and a client may log those whole (octocrab's span shows `http.url`), so it holds no
    /// credentials: no user-info, no query, no fragment. The API's token has its own setting.
    fn api_url(&mut self, name: &str, value: &str, token_name: &str) {
        let Some(url) = self.url(name, value) else {
            return;
        };
        let mut held = Vec::new();
        if !url.username().is_empty() || url.password().is_some() {
            held.push("a user name or password (user:pass@)");
        }
        if url.query().is_some() {
            held.push("a query (?…)");
        }
        if url.fragment().is_some() {
            held.push("a fragment (#…)");
        }
        if !held.is_empty() {
            self.invalid(
                name,
                value,
                &format!(
                    "must not hold {}: the URLs built on it are logged; put the token in {token_name}",
                    held.join(" or ")
                ),
            );
        }
    }

    /// A token goes into an HTTP header (`Authorization: …`): a character a header cannot hold
    /// would make the request fail, or the client panic (octocrab). Only visible ASCII passes.
    fn token(&mut self, name: &str, token: &Secret) {
        if let Some(bad) = token.expose().chars().find(|c| !c.is_ascii_graphic()) {
            let what = match bad {
                '\n' | '\r' => "a line break",
                ' ' => "a space",
                c if c.is_control() => "a control character",
                _ => "a character outside visible ASCII",
            };
            self.invalid(
                name,
                token.expose(),
                &format!(
                    "holds {what}: a token is sent in an HTTP header, and may hold only visible \
                     ASCII characters (the value is a secret and is not shown)"
                ),
            );
        }
    }

    /// `SENTRY_DSN` must parse as Sentry's `sentry::init` parses it (which panics otherwise).
    fn sentry_dsn(&mut self, value: &str) -> Option<SentryDsn> {
        use sentry::types::ParseDsnError;
        let why = if !value.chars().all(|c| c.is_ascii_graphic()) {
            "holds a character a URL cannot"
        } else {
            match value.parse::<sentry::types::Dsn>() {
                Ok(dsn) => return Some(SentryDsn(dsn)),
                Err(ParseDsnError::InvalidUrl) => "is not a URL",
                Err(ParseDsnError::InvalidScheme) => "is not an http(s) URL",
                Err(ParseDsnError::NoUsername) => "has no public key before the @",
                Err(ParseDsnError::NoProjectId | ParseDsnError::InvalidProjectId(_)) => {
                    "has no project id at the end of its path"
                }
            }
        };
        self.invalid(
            "SENTRY_DSN",
            value,
            &format!(
                "is not a valid Sentry DSN: it {why}; expected https://PUBLIC_KEY@HOST/PROJECT_ID, \
                 as the Sentry project's Client Keys page shows it (the value is a secret and is \
                 not shown)"
            ),
        );
        None
    }

    fn email(&mut self, name: &str, value: &str) {
        let ok = value
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !ok {
            self.invalid(name, value, "must be an email address");
        }
    }

    /// Bucket names become folder names on a local run: only S3's own alphabet is allowed.
    fn bucket_name(&mut self, name: &str, value: &str) {
        let ok = (3..=63).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !value.starts_with(['.', '-'])
            && !value.contains("..");
        if !ok {
            self.invalid(
                name,
                value,
                "is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '-', '.')",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_local_run_needs_nothing() {
        let s = load(None, &[], Context::Cli).unwrap();
        assert_eq!(
            s.storage,
            StorageMode::Local(PathBuf::from(DEFAULT_LOCAL_BUCKETS_DIR))
        );
        assert_eq!(s.temp_bucket, DEFAULT_LOCAL_TEMP_BUCKET);
        assert_eq!(s.mode, RunMode::PreviewExternal);
        assert_eq!(s.email_from.as_str(), DEFAULT_EMAIL_FROM);
        assert_eq!(s.error_report_email, None);
        assert_eq!(s.size_floor_exempt_councils, vec!["IOS"]);
    }

    #[test]
    fn lambda_lists_every_problem_at_once() {
        let e = load(
            None,
            &env(&[
                ("WDIV_WEBHOOK_URL", "ftp://x"),
                ("DRY_RUN", "perhaps"),
                ("GITHUB_REPO", "just-a-name"),
                ("WDIV_API_KEY", ""),
            ]),
            Context::Lambda,
        )
        .unwrap_err();
        let text = e.to_string();
        for expected in [
            "TEMP_BUCKET_NAME is not set",
            "FINAL_BUCKET_NAME is not set",
            "WDIV_WEBHOOK_URL \"ftp://x/\" (from environment variable) must be an http(s) URL",
            "DRY_RUN \"perhaps\"",
            "GITHUB_REPO \"just-a-name\"",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert_eq!(e.problems.len(), 5, "{text}");
    }

    #[test]
    fn environment_wins_over_the_file_and_empty_means_unset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "TEMP_BUCKET_NAME = \"from-file\"\nFINAL_BUCKET_NAME = \"final-file\"\n\
             WDIV_API_KEY = \"\"\nDRY_RUN = false\nSIZE_FLOOR_EXEMPT_COUNCILS = [\"IOS\", \"ABC\"]\n",
        )
        .unwrap();
        let s = load(
            Some(&file),
            &env(&[
                ("TEMP_BUCKET_NAME", "from-env"),
                ("GITHUB_API_KEY", "0123"),
                ("UNRELATED", "x"),
            ]),
            Context::Lambda,
        )
        .unwrap();
        assert_eq!(s.temp_bucket, "from-env");
        assert_eq!(s.final_bucket, "final-file");
        assert_eq!(s.wdiv_api_key, None);
        assert_eq!(s.mode, RunMode::Live, "DRY_RUN = false");
        assert_eq!(s.size_floor_exempt_councils, vec!["IOS", "ABC"]);
        assert_eq!(s.github_api_key.as_ref().unwrap().expose(), "0123");
        assert!(s.sources["FINAL_BUCKET_NAME"].contains("s.toml"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let s = load(
            None,
            &env(&[
                ("GITHUB_API_KEY", "ghp_verysecret"),
                ("WDIV_API_KEY", "wdiv-token-123"),
                ("SENTRY_DSN", "https://key@sentry.example/1"),
            ]),
            Context::Cli,
        )
        .unwrap();
        let debug = format!("{s:?}");
        for secret in ["ghp_verysecret", "wdiv-token-123", "key@sentry"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("Secret(****)"));
    }

    #[test]
    fn unknown_and_lower_case_keys_in_a_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "temp_bucket_name = \"x\"\nGITHUB_REPOSITORY = \"a/b\"\n",
        )
        .unwrap();
        let e = load(Some(&file), &[], Context::Cli).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("settings are upper case: TEMP_BUCKET_NAME"),
            "{text}"
        );
        assert!(text.contains("GITHUB_REPOSITORY"), "{text}");
    }

    #[test]
    fn the_templates_document_every_setting_and_load() {
        for template in ["dev", "prod"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("settings/{template}.template.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            for name in NAMES {
                assert!(
                    text.contains(&format!("\n{name} = ")),
                    "{name} missing from {template}"
                );
            }
            // What a template reads from SSM (`ssm:NAME`, resolved only at start-up) gets a
            // stand-in here, in the environment, which wins over the file.
            let stand_ins: Vec<(String, String)> = text
                .lines()
                .filter_map(|line| {
                    let (name, value) = line.split_once(" = ")?;
                    let stand_in = match name {
                        "TEMP_BUCKET_NAME" => "temp-bucket",
                        "FINAL_BUCKET_NAME" => "final-bucket",
                        "GITHUB_REPO" => "owner/repo",
                        "ERROR_REPORT_EMAIL" => "staff@example.org",
                        "WDIV_WEBHOOK_URL" => "https://wdiv.example.org/uploads/",
                        "SENTRY_DSN" => "https://public@sentry.example.org/1",
                        _ => "a-token",
                    };
                    value
                        .starts_with("\"ssm:")
                        .then(|| (name.to_owned(), stand_in.to_owned()))
                })
                .collect();
            load(Some(&path), &stand_ins, Context::Lambda)
                .or_else(|_| load(Some(&path), &stand_ins, Context::Cli))
                .unwrap_or_else(|e| panic!("{template}: {e}"));
        }
    }

    #[test]
    fn aws_settings_switch_a_cli_run_to_s3() {
        let s = load(
            None,
            &env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap();
        assert_eq!(s.storage, StorageMode::S3);
        assert_eq!(s.mode, RunMode::Live);
        let e = load(
            None,
            &env(&[
                ("LOCAL_BUCKETS_DIR", "/tmp/b"),
                ("TEMP_BUCKET_NAME", "../etc"),
            ]),
            Context::Cli,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a valid S3 bucket name"));
    }

    #[test]
    fn a_malformed_sentry_dsn_is_named_but_not_shown() {
        for dsn in [
            "not a dsn s3cr3t-dsn",
            "https://sentry.example/42?s3cr3t-dsn",
            "https://s3cr3t-dsn@sentry.example/",
            "ftp://s3cr3t-dsn@sentry.example/42",
            "https://s3cr3t-dsn@sentry.example/4\n2",
        ] {
            let e = load(None, &env(&[("SENTRY_DSN", dsn)]), Context::Cli).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.problems.len(), 1, "{text}");
            assert!(
                text.contains("SENTRY_DSN (from environment variable) is not a valid Sentry DSN"),
                "{text}"
            );
            assert!(
                text.contains("https://PUBLIC_KEY@HOST/PROJECT_ID"),
                "{text}"
            );
            assert!(!text.contains("s3cr3t-dsn"), "{dsn:?} leaked: {text}");
        }
        let s = load(
            None,
            &env(&[("SENTRY_DSN", "https://public-key@sentry.example/42")]),
            Context::Cli,
        )
        .unwrap();
        let dsn = s.sentry_dsn.as_ref().unwrap().expose();
        assert_eq!(dsn.public_key(), "public-key");
        assert_eq!(dsn.host(), "sentry.example");
        assert_eq!(format!("{:?}", s.sentry_dsn), "Some(Secret(****))");
    }

    #[test]
    fn a_token_must_fit_in_an_http_header_and_is_never_shown() {
        for (token, what) in [
            ("ghp_s3cr3t\ninjected", "a line break"),
            ("ghp_s3cr3t\rinjected", "a line break"),
            ("ghp_s3cr3t\u{0}x", "a control character"),
            ("ghp_s3cr3t\u{7f}x", "a control character"),
            ("ghp_s3cr3t and more", "a space"),
            ("ghp_s3cr3t\u{e9}", "a character outside visible ASCII"),
            ("ghp_s3cr3t\u{202e}", "a character outside visible ASCII"),
        ] {
            for name in ["GITHUB_API_KEY", "WDIV_API_KEY"] {
                let e = load(None, &env(&[(name, token)]), Context::Cli).unwrap_err();
                let text = e.to_string();
                assert!(
                    text.contains(&format!("{name} (from environment variable) holds {what}")),
                    "{token:?}: {text}"
                );
                assert!(!text.contains("s3cr3t"), "{token:?} leaked: {text}");
            }
        }
        // Whitespace around a token is trimmed, not refused; digits stay text.
        let s = load(
            None,
            &env(&[
                ("GITHUB_API_KEY", " 0123\n"),
                ("WDIV_API_KEY", "Ab-_.~+/=09"),
            ]),
            Context::Cli,
        )
        .unwrap();
        assert_eq!(s.wdiv_api_key.unwrap().expose(), "Ab-_.~+/=09");
    }

    #[test]
    fn urls_in_problems_and_debug_are_masked() {
        let e = load(
            None,
            &env(&[
                (
                    "WDIV_WEBHOOK_URL",
                    "ftp://user:hunter2@wdiv.example/hook?key=abc",
                ),
                ("WDIV_API_URL", "user:hunter2@wdiv.example?key=abc"),
                ("GITHUB_API_URL", "https://api.example/a\nb?key=abc"),
                ("AWS_ENDPOINT_URL", "https://user:hunter2@@?key=abc"),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.problems.len(), 4, "{text}");
        assert!(
            text.contains("WDIV_WEBHOOK_URL \"ftp://****@wdiv.example/hook?****\""),
            "{text}"
        );
        assert!(text.contains("WDIV_API_URL \"****@****\""), "{text}");
        assert!(
            text.contains("GITHUB_API_URL \"https://api.example/a\\nb?****\""),
            "{text}"
        );
        assert!(
            text.contains("AWS_ENDPOINT_URL \"https://****@****\""),
            "{text}"
        );
        for secret in ["hunter2", "key=abc", "user:"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }

        let s = load(
            None,
            &env(&[
                (
                    "WDIV_WEBHOOK_URL",
                    "https://user:hunter2@wdiv.example/hook?key=abc",
                ),
                ("WDIV_API_KEY", "wdiv-token"),
                ("AWS_ENDPOINT_URL", "http://user:hunter2@127.0.0.1:9000"),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap();
        // The values themselves are kept whole: the clients need them.
        assert_eq!(
            s.wdiv_webhook_url.as_ref().map(|u| u.as_str()),
            Some("https://user:hunter2@wdiv.example/hook?key=abc")
        );
        let debug = format!("{s:?}");
        for secret in ["hunter2", "key=abc", "user:"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(
            debug.contains("wdiv_webhook_url: Some(\"https://****@wdiv.example/hook?****\")"),
            "{debug}"
        );
    }

    #[test]
    fn api_urls_with_credentials_a_query_or_a_fragment_are_refused() {
        let e = load(
            None,
            &env(&[
                ("WDIV_API_URL", "https://user:hunter2@wdiv.example/api"),
                (
                    "GITHUB_API_URL",
                    "http://gh.example/api/v3?access_token=abc#x",
                ),
                (
                    "WDIV_WEBHOOK_URL",
                    "https://user:hunter2@wdiv.example/hook?key=abc",
                ),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(
            e.problems,
            [
                "GITHUB_API_URL \"http://gh.example/api/v3?****\" (from environment variable) \
                 must not hold a query (?…) or a fragment (#…): the URLs built on it are logged; \
                 put the token in GITHUB_API_KEY",
                "WDIV_API_URL \"https://****@wdiv.example/api\" (from environment variable) \
                 must not hold a user name or password (user:pass@): the URLs built on it are \
                 logged; put the token in WDIV_API_KEY",
            ],
            "{text}"
        );
        for secret in ["hunter2", "access_token", "key=abc"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        // A bare `@` in a path is not user-info, and an empty query is still a query.
        let s = load(
            None,
            &env(&[
                ("GITHUB_API_URL", "https://gh.example/api/@v3/"),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap();
        assert_eq!(s.github_api_url.as_str(), "https://gh.example/api/@v3/");
        let e = load(
            None,
            &env(&[
                ("WDIV_API_URL", "https://wdiv.example/api?"),
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]),
            Context::Cli,
        )
        .unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
    }

    #[test]
    fn other_values_are_quoted_on_one_line_and_bounded() {
        let e = load(
            None,
            &env(&[
                ("DRY_RUN", "maybe\n  - FORGED problem"),
                ("CLOUDFRONT_PATHS", &"x".repeat(10_000)),
            ]),
            Context::Cli,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("DRY_RUN \"maybe\\n  - FORGED problem\""),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.len() < 1000, "{text}");
    }

    #[test]
    fn a_toml_syntax_error_names_the_place_but_shows_no_line() {
        let dir = tempfile::tempdir().unwrap();
        for (contents, line, column) in [
            (
                "TEMP_BUCKET_NAME = \"t-bucket\"\nGITHUB_API_KEY = \"ghp_s3cr3t\nX = 1\n",
                2,
                29,
            ),
            ("SENTRY_DSN = https://s3cr3t@sentry.example/1\n", 1, 14),
            ("\n\n  WDIV_API_KEY = 's3cr3t' 's3cr3t'\n", 3, 27),
            ("\"s3cr3t-key\" = 1\n\"s3cr3t-key\" = 2\n", 2, 1),
            ("WDIV_API_KEY = \"\"\"s3cr3t\n\u{e9}\u{e9}\n", 3, 1),
        ] {
            let file = dir.path().join("bad.toml");
            std::fs::write(&file, contents).unwrap();
            let e = load(Some(&file), &[], Context::Cli).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("bad.toml"), "{text}");
            assert!(
                text.contains(&format!(
                    ", line {line}, column {column} is not valid TOML: "
                )),
                "{contents:?}: {text}"
            );
            assert!(!text.contains("s3cr3t"), "{contents:?} leaked: {text}");
            assert_eq!(text.lines().count(), 2, "{text}");
        }
    }

    #[test]
    fn figment_errors_are_not_shown_either() {
        // A file that is not UTF-8: the read fails before any parse.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latin1.toml");
        std::fs::write(&file, b"GITHUB_API_KEY = \"s3cr3t\xe9\"\n").unwrap();
        let text = load(Some(&file), &[], Context::Cli)
            .unwrap_err()
            .to_string();
        assert!(text.contains("cannot read the settings file"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    /// TOML's basic string for `value`: every value can be written this way.
    fn toml_string(value: &str) -> String {
        let mut out = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        /// Any text a setting could be given: arbitrary Unicode, control characters and line
        /// breaks, long runs, and shapes close to real values (URLs with credentials, DSNs,
        /// numbers with leading zeros, booleans).
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => any::<String>(),
                2 => "[ -~\n\r\t\u{0}\u{7f}\u{85}\u{a0}\u{202e}\u{2028}\u{feff}é]{0,40}",
                1 => "(https?|ftp)://([a-z]{1,6}(:[a-z0-9]{0,6})?@)?[a-z0-9.\\[\\]:-]{0,15}(/[ -~]{0,12})?(\\?[ -~]{0,8})?",
                1 => "https?://[a-z0-9]{1,8}(:[a-z]{1,4})?@[a-z0-9.-]{1,10}(:[0-9]{1,5})?(/[a-z0-9%._-]{0,6}){0,3}",
                1 => "0[0-9]{0,5}|true|false|yes|prefix|files|[a-z]{1,8}/[a-z]{1,8}|[a-z]{1,5}@[a-z]{1,5}\\.org",
                1 => "[a-z\n]{1000,5000}",
            ]
        }

        /// A secret value: hostile text around a marker that is unique to the setting, or a
        /// URL (a DSN, often valid) with the marker as its user.
        fn secret(marker: &'static str) -> impl Strategy<Value = String> {
            let around = prop_oneof![
                Just(String::new()),
                "https://[a-z]{0,3}",
                "[ -~\n\r\t\u{0}é]{0,12}",
                any::<String>(),
            ];
            let hostile = (around.clone(), around)
                .prop_map(move |(before, after)| format!("{before}{marker}{after}"));
            let dsn = (
                "https?://",
                "(:[ -~]{0,4})?",
                "[a-z0-9.-]{1,10}|\\[[0-9a-f:]{2,8}\\]|[ -~]{0,8}",
                "(:[0-9]{1,6})?",
                "(/[ -~]{0,6}){0,3}",
            )
                .prop_map(move |(scheme, password, host, port, path)| {
                    format!("{scheme}{marker}{password}@{host}{port}{path}")
                });
            prop_oneof![hostile, dsn]
        }

        const MARKERS: [(&str, &str); 3] = [
            ("SENTRY_DSN", "SentryS3cr3tMark"),
            ("GITHUB_API_KEY", "GithubS3cr3tMark"),
            ("WDIV_API_KEY", "WdivS3cr3tMark"),
        ];

        /// Checks one load: it returned (a panic fails the property), showed no marker, and what
        /// it accepted cannot make a client panic later.
        fn check(result: Result<Settings, SettingsError>) -> Result<(), TestCaseError> {
            let shown = match &result {
                Ok(settings) => {
                    if let Some(dsn) = &settings.sentry_dsn {
                        // What Sentry's transport builds from the DSN, and panics on if it can't.
                        let _ = dsn.expose().envelope_api_url();
                        let _ = dsn.expose().to_auth(Some("wdiv-s3-trigger")).to_string();
                    }
                    for token in [&settings.github_api_key, &settings.wdiv_api_key]
                        .into_iter()
                        .flatten()
                    {
                        let header = format!("Bearer {}", token.expose());
                        prop_assert!(reqwest::header::HeaderValue::from_str(&header).is_ok());
                    }
                    format!("{settings:?}")
                }
                Err(e) => e.to_string(),
            };
            for (_, marker) in MARKERS {
                prop_assert!(!shown.contains(marker), "{} leaked:\n{}", marker, shown);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn any_values_load_or_fail_without_panic_or_leak(
                values in proptest::collection::vec(proptest::option::weighted(0.8, value()), NAMES.len()),
                secrets in (secret(MARKERS[0].1), secret(MARKERS[1].1), secret(MARKERS[2].1)),
                in_file in proptest::collection::vec(any::<bool>(), NAMES.len()),
            ) {
                let secrets = [secrets.0, secrets.1, secrets.2];
                let mut all: Vec<(String, String)> = Vec::new();
                for (name, value) in NAMES.iter().zip(&values) {
                    let value = match MARKERS.iter().position(|(secret, _)| secret == name) {
                        Some(i) => Some(secrets[i].clone()),
                        None => value.clone(),
                    };
                    if let Some(value) = value {
                        all.push((name.to_string(), value));
                    }
                }
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("settings.toml");

                // Everything in the environment.
                for context in [Context::Cli, Context::Lambda] {
                    check(load(None, &all, context))?;
                }

                // Everything in a file, each value written as a TOML string; and split between
                // the file and the environment.
                let toml: String = all
                    .iter()
                    .map(|(k, v)| format!("{k} = {}\n", toml_string(v)))
                    .collect();
                std::fs::write(&file, &toml).unwrap();
                check(load(Some(&file), &[], Context::Lambda))?;
                let (file_part, env_part): (Vec<_>, Vec<_>) = all
                    .iter()
                    .cloned()
                    .zip(&in_file)
                    .partition(|(_, in_file)| **in_file);
                let file_part: String = file_part
                    .iter()
                    .map(|((k, v), _)| format!("{k} = {}\n", toml_string(v)))
                    .collect();
                let env_part: Vec<(String, String)> =
                    env_part.into_iter().map(|(kv, _)| kv).collect();
                std::fs::write(&file, &file_part).unwrap();
                check(load(Some(&file), &env_part, Context::Cli))?;

                // Each value pasted into the file as it is, between quotes or bare: mostly a
                // syntax error, with the secrets on the broken lines.
                let raw: String = all
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| if i % 2 == 0 { format!("{k} = \"{v}\"\n") } else { format!("{k} = {v}\n") })
                    .collect();
                std::fs::write(&file, &raw).unwrap();
                check(load(Some(&file), &[], Context::Cli))?;
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// One secret alone, so that what validation accepts reaches the checks on the
            /// accepted settings (the DSN Sentry's transport uses, the tokens' headers).
            #[test]
            fn an_accepted_secret_cannot_make_a_client_panic(
                secrets in (secret(MARKERS[0].1), secret(MARKERS[1].1), secret(MARKERS[2].1)),
            ) {
                let secrets = [secrets.0, secrets.1, secrets.2];
                for ((name, _), value) in MARKERS.iter().zip(&secrets) {
                    check(load(None, &[(name.to_string(), value.clone())], Context::Cli))?;
                }
            }
        }
    }
}
