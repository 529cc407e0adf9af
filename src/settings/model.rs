//! The validated settings, and what a run decides from them (where the buckets are, the run
//! mode). Built only by [`super::load`]; read by everything else.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::values::Values;

/// A Sentry DSN that parses, so that Sentry starts with it without panicking. A secret: its key
/// lets anyone send events to the project, so `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct SentryDsn(pub(crate) sentry::types::Dsn);

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

/// Validated settings. The typed fields are the core's; every setting's value, the effects'
/// included, is in [`Settings::values`], held by its kind, and `Debug` (logged with `-v`) shows
/// those: a secret masked, a URL's user-info and query masked.
#[derive(Clone)]
pub struct Settings {
    pub temp_bucket: String,
    pub final_bucket: String,
    pub storage: StorageMode,
    /// What this run does: everything, everything but the external effects, or nothing.
    pub mode: RunMode,
    pub sentry_dsn: Option<SentryDsn>,
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
    /// `ROW_CHANGE_WARN_PERCENT`: a file whose rows changed by more than this since the
    /// council's last import is warned about.
    pub row_change_warn_percent: u64,
    /// `RUN_DEADLINE_SECONDS`: outside Lambda, the time one event may take before no step
    /// starts (`execute::Deadline`).
    pub run_deadline_seconds: u64,
    /// Every setting's value by its kind, defaults applied: each effect module makes its one
    /// optional configuration from them (`effects::issue::config` and so on).
    pub values: Values,
    /// Where each value came from, for messages ("TEMP_BUCKET_NAME from settings/prod.toml").
    pub sources: BTreeMap<String, String>,
    /// What a production instance has turned off, decided with the settings
    /// ([`Settings::production_gaps`]).
    pub(crate) gaps: Vec<String>,
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
    /// effects staff and councils rely on (the GitHub issue, the webhook to WDIV, the failure
    /// email: each effect says whether it is one, `effects::Entry::production`). Each names the
    /// settings it lacks. Start-up logs them as warnings, so that a missing parameter in a deploy
    /// is seen at once rather than by a council that hears nothing.
    pub fn production_gaps(&self) -> Vec<String> {
        self.gaps.clone()
    }

    /// True for the instances whose side effects are marked as tests.
    pub fn is_test_instance(&self) -> bool {
        matches!(
            self.server_environment.as_deref(),
            Some("staging" | "development" | "test")
        )
    }
}

/// Derived from the kinds: every setting's value as [`Values`] holds it (a secret masked, a URL
/// redacted), under its name in lower case; the typed fields are copies of those and not shown
/// again.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Settings");
        out.field("storage", &self.storage)
            .field("mode", &self.mode);
        for (name, value) in &self.values.0 {
            out.field(&name.to_ascii_lowercase(), &Some(value));
        }
        out.field("sources", &self.sources).finish()
    }
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
