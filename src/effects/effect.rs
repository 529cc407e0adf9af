//! What every effect module shares: the [`Effect`] trait, the step kinds the plan's edges name,
//! what a planner reads and returns, the clients a step is performed with, how a failure is
//! classed, and the [`Entry`] each effect module gives the registry ([`super::EFFECTS`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::report::UploadReport;
use crate::settings::{Key, Settings};
use crate::storage::Storage;

/// What an effect module gives the registry: its settings, its planner, its client if it needs
/// one, and whether a production instance needs it on.
#[derive(Debug)]
pub struct Entry {
    /// Its settings, declared in its module: the registry is the one list of them.
    pub keys: &'static [Key],
    /// Its steps for an upload. The registry's order is the order steps run in: a step may wait
    /// only for steps planned before it.
    pub plan: fn(&Planning<'_>) -> Vec<Planned>,
    /// The client it is performed with, made once at start-up, when it needs one of its own.
    pub client: Option<ClientMaker>,
    /// For an effect staff or councils rely on: a production instance warns at start-up when
    /// it is off.
    pub production: Option<Needed>,
}

/// An effect a production instance should have on, and the settings it is on with.
#[derive(Debug)]
pub struct Needed {
    /// The effect, as the warning names it ("the GitHub issue").
    pub what: &'static str,
    pub keys: &'static [Key],
}

/// How an effect's client is made at start-up.
#[derive(Debug)]
pub struct ClientMaker {
    /// Whether these settings configure the effect (no client is made otherwise).
    pub wanted: fn(&Settings) -> bool,
    /// Whether it is made from the AWS SDK's configuration (loaded once, when one needs it).
    pub aws: bool,
    pub make: fn(&Settings, &Shared<'_>) -> Result<Client, ClientError>,
}

/// What start-up shares with the clients it makes.
#[derive(Debug)]
pub struct Shared<'a> {
    /// The one HTTP client (connection pool, timeouts, TLS).
    pub http: &'a reqwest::Client,
    /// The AWS SDK's configuration, when a client needs it.
    pub sdk: Option<&'a aws_config::SdkConfig>,
}

impl Shared<'_> {
    /// The AWS SDK's configuration; loaded whenever a maker with `aws: true` is wanted.
    pub fn sdk(&self) -> Result<&aws_config::SdkConfig, ClientError> {
        self.sdk
            .ok_or_else(|| ClientError("the AWS configuration is not loaded".into()))
    }
}

/// A client, as the registry makes it; [`Clients::get`] finds it by its type.
pub type Client = Arc<dyn Any + Send + Sync>;

/// A client that could not be made at start-up.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ClientError(pub Box<dyn std::error::Error + Send + Sync>);

/// A kind of step, by the verb previews and logs name it ("copy", "open issue"). Each effect
/// module declares its kinds as constants, and a plan's edges name them
/// ([`Planned::after`]): a misspelt kind does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct StepKind(&'static str);

impl StepKind {
    pub const fn new(verb: &'static str) -> StepKind {
        StepKind(verb)
    }

    pub fn verb(self) -> &'static str {
        self.0
    }
}

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
    pub after: Vec<(StepKind, &'static str)>,
    /// Kinds of earlier steps it waits for but goes ahead without when one failed, each with
    /// what its result then says.
    pub after_even_if_failed: Vec<(StepKind, &'static str)>,
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

    /// Waits for every earlier step of `kind`; `because` is why, when one failed.
    pub fn after(mut self, kind: StepKind, because: &'static str) -> Planned {
        self.after.push((kind, because));
        self
    }

    /// Waits for every earlier step of `kind` (it needs what they produce), but goes ahead
    /// when one failed or was not attempted; `note` is added to its result then.
    pub fn after_even_if_failed(mut self, kind: StepKind, note: &'static str) -> Planned {
        self.after_even_if_failed.push((kind, note));
        self
    }
}

/// The clients an effect may use while it is performed: the buckets, and each configured
/// effect's own client, made at start-up by the registry ([`super::clients`]).
#[derive(Clone)]
pub struct Clients {
    pub storage: Arc<dyn Storage>,
    others: Vec<Client>,
}

impl Clients {
    /// The buckets, and no other client.
    pub fn new(storage: Arc<dyn Storage>) -> Clients {
        Clients {
            storage,
            others: Vec::new(),
        }
    }

    /// Adds a client (replacing one of the same type).
    pub fn insert(&mut self, client: Client) {
        let id = (*client).type_id();
        self.others.retain(|c| (**c).type_id() != id);
        self.others.push(client);
    }

    /// The client of type `T`, when it was made.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.others.iter().find_map(|c| c.downcast_ref::<T>())
    }
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients")
            .field("storage", &self.storage)
            .field("others", &self.others.len())
            .finish()
    }
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
    /// The kind of step it is; its verb names it in previews and logs ("copy", "open issue").
    fn kind(&self) -> StepKind;
    /// The kind's verb.
    fn verb(&self) -> &'static str {
        self.kind().verb()
    }
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
