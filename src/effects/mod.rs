//! The side effects, one module each. An effect module owns how the effect is planned (what a
//! preview shows, why it is skipped), how it is performed, and how its failures are classed.
//!
//! Adding an effect is one new file here that implements [`Effect`] and a `plan` function, and
//! one line in [`PLANNERS`] (plus its settings, if it has any: see `docs/architecture.md`). The
//! executor never names a kind of effect.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::report::UploadReport;
use crate::settings::Settings;
use crate::storage::Storage;

pub mod cdn;
pub mod copy;
pub mod email;
pub mod issue;
pub mod report;
pub mod webhook;

/// The planners, in the order their steps run: a step may wait only for steps planned before it.
/// Adding an effect: one line here.
pub const PLANNERS: &[fn(&Planning<'_>) -> Vec<Planned>] = &[
    issue::plan,
    copy::plan,
    report::plan,
    cdn::plan,
    email::plan,
    webhook::plan,
];

/// An effect's configuration, or why it is off (the plan's skip reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Optional<T> {
    On(T),
    /// Off, because this setting is missing.
    Off {
        missing: &'static str,
    },
}

impl<T> Optional<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Optional::On(config) => Some(config),
            Optional::Off { .. } => None,
        }
    }

    /// Why it is off (`"GITHUB_REPO not set"`), or `None` when it is on.
    pub fn why_off(&self) -> Option<String> {
        match self {
            Optional::On(_) => None,
            Optional::Off { missing } => Some(format!("{missing} not set")),
        }
    }
}

/// What a planner reads: the report, the settings, and what every effect shares.
#[derive(Debug)]
pub struct Planning<'a> {
    pub report: &'a UploadReport,
    pub settings: &'a Settings,
    /// The upload's prefix, `{council}/{date}/{timestamp}`.
    pub prefix: String,
    pub valid: bool,
    /// Identifies the upload's content (see [`crate::ledger::content_id`]).
    pub content_id: String,
    /// What the templates (issue, emails) are rendered with.
    pub context: serde_json::Value,
}

impl Planning<'_> {
    /// The reason to skip an effect that acts only on a valid upload, when it is not.
    pub fn unless_valid(&self) -> Option<String> {
        (!self.valid).then(|| "the upload failed its checks".to_owned())
    }
}

/// One step as its planner proposes it: the effect, why it is skipped (if it is), and which kinds
/// of step it waits for.
#[derive(Debug)]
pub struct Planned {
    pub effect: Arc<dyn Effect>,
    pub skip: Option<String>,
    /// Kinds (verbs) of earlier steps it waits for, each with what to say when one failed.
    pub after: Vec<(&'static str, &'static str)>,
    /// Kinds of earlier steps it waits for but goes ahead without when one failed, each with
    /// what its result then says.
    pub after_even_if_failed: Vec<(&'static str, &'static str)>,
}

impl Planned {
    pub fn new(effect: impl Effect + 'static, skip: Option<String>) -> Planned {
        Planned {
            effect: Arc::new(effect),
            skip,
            after: Vec::new(),
            after_even_if_failed: Vec::new(),
        }
    }

    /// Waits for every earlier step of kind `verb`; `because` is why, when one failed.
    pub fn after(mut self, verb: &'static str, because: &'static str) -> Planned {
        self.after.push((verb, because));
        self
    }

    /// Waits for every earlier step of kind `verb` (it needs what they produce), but goes
    /// ahead when one failed or was not attempted; `note` is added to its result then.
    pub fn after_even_if_failed(mut self, verb: &'static str, note: &'static str) -> Planned {
        self.after_even_if_failed.push((verb, note));
        self
    }
}

/// The clients an effect may use while it is performed; one exists only when configured.
#[derive(Debug, Clone)]
pub struct Clients {
    pub storage: Arc<dyn Storage>,
    pub github: Option<crate::github::GitHub>,
    pub cdn: Option<crate::cdn::Cdn>,
    pub mailer: Option<crate::mail::Mailer>,
    pub webhook: crate::webhook::Webhook,
}

/// One execution's state: the clients, and the report as the steps so far have made it (the
/// issue's URL goes into `report.json` and the webhook).
#[derive(Debug)]
pub struct Run<'a> {
    pub clients: &'a Clients,
    pub report: UploadReport,
}

/// How objects are named in previews and messages: `s3://bucket/key`, or a local path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub local_root: Option<std::path::PathBuf>,
}

impl Names {
    pub fn object(&self, bucket: &str, key: &str) -> String {
        crate::storage::object_name(self.local_root.as_deref(), bucket, key)
    }
}

/// A side effect: a step of a plan.
#[async_trait]
pub trait Effect: fmt::Debug + Send + Sync {
    /// The kind of effect, as previews and logs name it ("copy", "open issue").
    fn verb(&self) -> &'static str;
    /// The name it is recorded under when done; unique within a plan.
    fn id(&self) -> String {
        self.verb().replace(' ', "-")
    }
    /// What it acts on, for people: one line, never a secret.
    fn target(&self, names: &Names) -> String;
    /// Whether it leaves the program's own buckets (a local run only previews those).
    fn external(&self) -> bool {
        true
    }
    /// Its data, as `--json` shows it (never a secret).
    fn data(&self) -> serde_json::Value;
    /// Does it; the output (an issue URL, an invalidation id) is recorded with it.
    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError>;
    /// Takes its output — just produced, or recorded by an earlier run — into the run. `false`
    /// when the output cannot be trusted (then it is not used: a record is ignored and the
    /// effect done again; a fresh answer fails the step).
    fn adopt(&self, _output: &str, _run: &mut Run<'_>) -> bool {
        true
    }
}

/// How an effect failed, which says what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Worth retrying as it is (a timeout, a 5xx, throttling): Lambda's retry may succeed.
    Transient,
    /// Will fail again until someone changes something (a missing bucket, denied access).
    Permanent,
    /// Refused on purpose (a file changed after its check, an answer that cannot be trusted).
    Refused,
}

/// An effect's failure: its kind and its cause, whose message names the target.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct EffectError {
    pub kind: FailureKind,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl EffectError {
    pub fn new(
        kind: FailureKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EffectError {
            kind,
            source: source.into(),
        }
    }
}

impl From<crate::storage::StorageError> for EffectError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as S;
        let kind = match &e {
            S::Unavailable { .. } => FailureKind::Transient,
            S::ConditionFailed { .. } | S::BadKey { .. } => FailureKind::Refused,
            S::NoSuchBucket { .. }
            | S::NoSuchKey { .. }
            | S::AccessDenied { .. }
            | S::Other { .. }
            | S::NoEtag { .. } => FailureKind::Permanent,
        };
        EffectError::new(kind, e)
    }
}

impl From<crate::http::HttpError> for EffectError {
    fn from(e: crate::http::HttpError) -> Self {
        let kind = match e.is_transient() {
            true => FailureKind::Transient,
            false => FailureKind::Permanent,
        };
        EffectError::new(kind, e)
    }
}

/// A client that is not configured: the plan skips its effect, so this is a bug if it happens.
pub(crate) fn not_configured(what: &str) -> EffectError {
    EffectError::new(FailureKind::Permanent, format!("{what} is not configured"))
}

/// What the effect modules' unit tests share: settings from a few variables, a report, and
/// clients whose buckets are folders in a temporary directory.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::sync::Arc;

    use super::{Clients, Planning};
    use crate::report::UploadReport;
use wdiv_checks::{FileReport, Problem};
    use crate::settings::{load, Context, Settings};
    use crate::storage::LocalStorage;

    pub fn settings(env: &[(&str, &str)]) -> Settings {
        let mut all = vec![
            ("TEMP_BUCKET_NAME".to_owned(), "temp".to_owned()),
            ("FINAL_BUCKET_NAME".to_owned(), "final".to_owned()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        load(None, &all, Context::Lambda).unwrap()
    }

    pub fn report(valid: bool) -> UploadReport {
        let mut file = FileReport::new("X01/2024-05-02/t/a.csv");
        file.details.etag = Some("\"e1\"".into());
        if !valid {
            file.problems
                .push(Problem::error(wdiv_checks::Code::IncompleteRow, "broken"));
        }
        UploadReport {
            gss: "X01".into(),
            council_name: "Somewhere".into(),
            timestamp: "t".into(),
            election_date: "2024-05-02".into(),
            github_issue: String::new(),
            file_set: vec![file],
            extra: Default::default(),
        }
    }

    /// What a planner reads, for `report` under `settings`, with the templates' real context.
    pub fn planning<'a>(report: &'a UploadReport, settings: &'a Settings) -> Planning<'a> {
        Planning {
            report,
            settings,
            prefix: report.prefix(),
            valid: report.all_valid(),
            content_id: crate::ledger::content_id(report),
            context: crate::plan::template_context(report, settings),
        }
    }

    /// Clients on folder buckets `temp` and `final`; keep the directory while they are used.
    pub fn clients() -> (tempfile::TempDir, Clients) {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.create_bucket("temp").unwrap();
        storage.create_bucket("final").unwrap();
        let clients = Clients {
            storage: Arc::new(storage),
            github: None,
            cdn: None,
            mailer: None,
            webhook: crate::webhook::Webhook::new(reqwest::Client::new()),
        };
        (dir, clients)
    }
}
