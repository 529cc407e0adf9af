//! Metrics, as CloudWatch Embedded Metric Format (EMF) lines in the logs: no client, no call.
//!
//! After each event, [`Emitter::emit_event`] prints one JSON document per line: one for the event,
//! one per upload, one per effect of the upload's plan and one per problem code its files fail
//! with. In Lambda mode they go to stdout, which CloudWatch Logs reads and where it extracts the
//! metrics (the JSON log lines carry no `_aws` member, so they are not mistaken for metrics);
//! from the command line only with `--metrics`, on stderr, so stdout keeps its output.
//!
//! Each document holds an `_aws` member (a Timestamp in milliseconds and one metric directive in
//! the namespace [`NAMESPACE`]), the values of its dimensions (strings) and metrics (numbers) as
//! top-level members, and plain properties (council, prefix, request id) that are searchable in
//! Logs Insights but are not dimensions, so the number of metrics stays small. The names are a
//! contract for alarms and dashboards: see `docs/contracts.md`.
//!
//! [`UploadMetrics`] is filled from an [`UploadOutcome`]; a new figure is one more field
//! there, or [`UploadMetrics::count`] for another upload-level count.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::execute::StepResult;
use crate::outcome::{EventOutcome, Timings, UploadOutcome};
use crate::plan::Disposition;
use crate::settings::Settings;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "WDIV/S3Trigger";

/// EMF's limits: metrics per directive, keys per dimension set.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

/// The longest dimension value we send (CloudWatch allows 1024).
const MAX_DIMENSION_CHARS: usize = 64;
/// The most problem codes counted per upload; any further ones are counted as `other`.
const MAX_PROBLEM_CODES: usize = 20;

/// The `Environment` dimension when `SERVER_ENVIRONMENT` is not set.
pub const NO_ENVIRONMENT: &str = "unset";

/// The upload's verdict, as the `Verdict` dimension says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// The upload could not be checked (a listing or a read failed).
    Unchecked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unchecked => "unchecked",
        }
    }
}

/// What became of one kind of effect in one upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectCounts {
    pub done: u64,
    /// The ledger says an earlier run did it: not repeated.
    pub done_earlier: u64,
    /// Off by the settings, or not for this upload (an invalid upload is not copied).
    pub skipped: u64,
    /// Only previewed (a dry run, or an external effect on a local run).
    pub previewed: u64,
    pub failed: u64,
    /// Not attempted because a step it waits for failed, or the effects record could not be
    /// written.
    pub blocked: u64,
}

impl EffectCounts {
    fn add(&mut self, result: &StepResult) {
        match result {
            StepResult::Done(_) => self.done += 1,
            StepResult::AlreadyDone(_) => self.done_earlier += 1,
            StepResult::Previewed(_) => self.previewed += 1,
            StepResult::Skipped(_) => self.skipped += 1,
            StepResult::NotAttempted(_) => self.blocked += 1,
            StepResult::Failed(_) => self.failed += 1,
        }
    }
}

/// The figures of one upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadMetrics {
    /// Properties, never dimensions.
    pub prefix: String,
    pub council: Option<String>,
    pub verdict: Verdict,
    /// The upload could not be checked, or an action failed.
    pub failed: bool,
    pub files: u64,
    pub files_failed: u64,
    pub rows: u64,
    /// Problem code → how many of the upload's files fail with it.
    pub failures: BTreeMap<String, u64>,
    /// Effect (its verb) → what became of its steps.
    pub effects: BTreeMap<&'static str, EffectCounts>,
    pub timings: Timings,
    /// Further upload-level counts, by metric name (unit Count).
    pub counts: BTreeMap<&'static str, u64>,
}

impl UploadMetrics {
    pub fn from_outcome(outcome: &UploadOutcome) -> UploadMetrics {
        let report = outcome.report.as_ref();
        let files = report.map(|r| r.file_set.as_slice()).unwrap_or_default();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for file in files {
            let mut codes: Vec<String> = file.errors().map(|p| problem_code(&p.code)).collect();
            codes.sort();
            codes.dedup();
            for code in codes {
                let code = if failures.len() >= MAX_PROBLEM_CODES && !failures.contains_key(&code) {
                    "other".to_owned()
                } else {
                    code
                };
                *failures.entry(code).or_default() += 1;
            }
        }
        let mut effects: BTreeMap<&'static str, EffectCounts> = BTreeMap::new();
        if let Some(plan) = &outcome.plan {
            for (n, step) in plan.steps.iter().enumerate() {
                let counts = effects.entry(step.effect.verb()).or_default();
                match outcome.results.get(n) {
                    Some(result) => counts.add(result),
                    // No result: a dry run (what the plan says), or the lease could not be taken.
                    None => match &step.disposition {
                        Disposition::Skip(_) => counts.skipped += 1,
                        Disposition::Preview(_) => counts.previewed += 1,
                        Disposition::Do => counts.blocked += 1,
                    },
                }
            }
        }
        let mut metrics = UploadMetrics {
            prefix: outcome.prefix.clone(),
            council: report.map(|r| r.gss.clone()),
            verdict: match report {
                None => Verdict::Unchecked,
                Some(r) if r.all_valid() => Verdict::Valid,
                Some(_) => Verdict::Invalid,
            },
            failed: outcome.failed(),
            files: files.len() as u64,
            files_failed: files.iter().filter(|f| !f.csv_valid()).count() as u64,
            rows: files.iter().map(|f| f.csv_rows).sum(),
            failures,
            effects,
            timings: outcome.timings,
            counts: BTreeMap::new(),
        };
        if report.is_some_and(|r| r.extra.staff_override.is_some()) {
            metrics.count(OVERRIDES, 1);
        }
        metrics
    }

    /// Adds `n` to an upload-level count (e.g. `count("Overrides", 1)`): one more metric in the
    /// upload's document, with the dimensions of the others.
    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counts.entry(name).or_default() += n;
    }

    /// The upload's EMF documents: the upload, then one per effect, then one per problem code.
    pub fn documents(&self, context: &Context, timestamp_ms: u64) -> Vec<Value> {
        let mut properties = context.properties();
        properties.insert("prefix".into(), self.prefix.clone().into());
        if let Some(council) = &self.council {
            properties.insert("council".into(), council.clone().into());
        }
        let env = context.environment.as_str();
        let mut metrics = vec![
            (UPLOADS, Unit::Count, 1.0),
            (UPLOADS_FAILED, Unit::Count, u64::from(self.failed) as f64),
            (FILES, Unit::Count, self.files as f64),
            (FILES_FAILED, Unit::Count, self.files_failed as f64),
            (ROWS, Unit::Count, self.rows as f64),
        ];
        for (name, duration) in [
            (CHECK_TIME, self.timings.check),
            (EFFECTS_TIME, self.timings.effects),
            (UPLOAD_TIME, Some(self.timings.total)),
        ] {
            if let Some(d) = duration {
                metrics.push((name, Unit::Milliseconds, d.as_secs_f64() * 1000.0));
            }
        }
        for (name, n) in &self.counts {
            metrics.push((name, Unit::Count, *n as f64));
        }
        let mut docs = vec![document(
            timestamp_ms,
            &[&[ENVIRONMENT], &[ENVIRONMENT, VERDICT]],
            &[(ENVIRONMENT, env), (VERDICT, self.verdict.as_str())],
            &metrics,
            &properties,
        )];
        for (verb, c) in &self.effects {
            docs.push(document(
                timestamp_ms,
                &[&[ENVIRONMENT, EFFECT]],
                &[(ENVIRONMENT, env), (EFFECT, verb)],
                &[
                    (EFFECTS_DONE, Unit::Count, c.done as f64),
                    (EFFECTS_DONE_EARLIER, Unit::Count, c.done_earlier as f64),
                    (EFFECTS_SKIPPED, Unit::Count, c.skipped as f64),
                    (EFFECTS_PREVIEWED, Unit::Count, c.previewed as f64),
                    (EFFECTS_FAILED, Unit::Count, c.failed as f64),
                    (EFFECTS_BLOCKED, Unit::Count, c.blocked as f64),
                ],
                &properties,
            ));
        }
        for (code, n) in &self.failures {
            docs.push(document(
                timestamp_ms,
                &[&[ENVIRONMENT, PROBLEM_CODE]],
                &[(ENVIRONMENT, env), (PROBLEM_CODE, code)],
                &[(FILE_FAILURES, Unit::Count, *n as f64)],
                &properties,
            ));
        }
        docs
    }
}

/// The names of the metrics and dimensions (the contract).
pub const EVENTS: &str = "Events";
pub const KEYS_REFUSED: &str = "KeysRefused";
pub const RECORDS_IGNORED: &str = "RecordsIgnored";
pub const UPLOADS: &str = "Uploads";
pub const UPLOADS_FAILED: &str = "UploadsFailed";
pub const FILES: &str = "Files";
pub const FILES_FAILED: &str = "FilesFailed";
pub const ROWS: &str = "Rows";
pub const CHECK_TIME: &str = "CheckTime";
pub const EFFECTS_TIME: &str = "EffectsTime";
pub const UPLOAD_TIME: &str = "UploadTime";
/// An upload accepted by staff override (see `crate::staff_override`).
pub const OVERRIDES: &str = "Overrides";
pub const EFFECTS_DONE: &str = "EffectsDone";
pub const EFFECTS_DONE_EARLIER: &str = "EffectsDoneEarlier";
pub const EFFECTS_SKIPPED: &str = "EffectsSkipped";
pub const EFFECTS_PREVIEWED: &str = "EffectsPreviewed";
pub const EFFECTS_FAILED: &str = "EffectsFailed";
pub const EFFECTS_BLOCKED: &str = "EffectsBlocked";
pub const FILE_FAILURES: &str = "FileFailures";
pub const ENVIRONMENT: &str = "Environment";
pub const VERDICT: &str = "Verdict";
pub const EFFECT: &str = "Effect";
pub const PROBLEM_CODE: &str = "ProblemCode";

#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: a directive naming the dimension sets and metrics, and their values.
fn document(
    timestamp_ms: u64,
    dimension_sets: &[&[&str]],
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Unit, f64)],
    properties: &Map<String, Value>,
) -> Value {
    debug_assert!(metrics.len() <= MAX_METRICS);
    debug_assert!(dimension_sets.iter().all(|s| s.len() <= MAX_DIMENSIONS));
    let mut root = properties.clone();
    for (name, value) in dimensions {
        root.insert((*name).into(), dimension_value(value).into());
    }
    for (name, unit, value) in metrics {
        // Counts print as integers; durations keep their fraction of a millisecond.
        let value = match unit {
            Unit::Count => json!(*value as u64),
            Unit::Milliseconds => json!(value),
        };
        root.insert((*name).into(), value);
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

/// A dimension value as CloudWatch takes it: printable ASCII, not blank, bounded.
fn dimension_value(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_DIMENSION_CHARS)
        .collect();
    match cleaned.trim() {
        "" => "unknown".into(),
        trimmed => trimmed.into(),
    }
}

/// A problem code as a dimension: ours are short, lower-case words with hyphens; anything else
/// (a code read back from an old report) is `other`, so the number of metrics stays bounded.
fn problem_code(code: &str) -> String {
    let ours = !code.is_empty()
        && code.len() <= 40
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ours {
        code.to_owned()
    } else {
        "other".to_owned()
    }
}

/// What every document of a run carries: the environment (a dimension) and the Lambda request
/// id (a property).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub environment: String,
    pub request_id: Option<String>,
}

impl Context {
    fn properties(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        if let Some(id) = &self.request_id {
            properties.insert("request_id".into(), id.clone().into());
        }
        properties
    }
}

/// The EMF documents of one event: the event's, then each upload's.
pub fn event_documents(outcome: &EventOutcome, context: &Context, timestamp_ms: u64) -> Vec<Value> {
    let mut docs = vec![document(
        timestamp_ms,
        &[&[ENVIRONMENT]],
        &[(ENVIRONMENT, &context.environment)],
        &[
            (EVENTS, Unit::Count, 1.0),
            (KEYS_REFUSED, Unit::Count, outcome.refused.len() as f64),
            (RECORDS_IGNORED, Unit::Count, outcome.ignored.len() as f64),
        ],
        &context.properties(),
    )];
    for upload in &outcome.uploads {
        docs.extend(UploadMetrics::from_outcome(upload).documents(context, timestamp_ms));
    }
    docs
}

/// Where the documents go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sink {
    /// Not emitted (the command line without `--metrics`).
    #[default]
    Off,
    /// Lambda mode: CloudWatch Logs reads stdout and extracts the metrics.
    Stdout,
    /// The command line with `--metrics`: stdout keeps the command's output.
    Stderr,
}

/// Prints the metrics of each event handled, if turned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitter {
    pub sink: Sink,
    environment: String,
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `work` with `id` as the request id of the metrics it emits (a Lambda invocation's).
pub async fn with_request_id<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

impl Emitter {
    /// Off until a sink is chosen; the environment is `SERVER_ENVIRONMENT`.
    pub fn new(settings: &Settings) -> Emitter {
        Emitter {
            sink: Sink::Off,
            environment: settings
                .server_environment
                .as_deref()
                .map(dimension_value)
                .unwrap_or_else(|| NO_ENVIRONMENT.into()),
        }
    }

    /// Prints the event's documents, one per line, in one write (so no log line comes between).
    pub fn emit_event(&self, outcome: &EventOutcome) {
        if self.sink == Sink::Off {
            return;
        }
        let context = Context {
            environment: self.environment.clone(),
            request_id: REQUEST_ID.try_with(Clone::clone).ok(),
        };
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut text = String::new();
        for doc in event_documents(outcome, &context, timestamp_ms) {
            text.push_str(&doc.to_string());
            text.push('\n');
        }
        let written = match self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout => write_all(&mut std::io::stdout().lock(), &text),
            Sink::Stderr => write_all(&mut std::io::stderr().lock(), &text),
        };
        if let Err(e) = written {
            tracing::warn!("cannot write the metrics: {e}");
        }
    }
}

fn write_all(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_values_are_printable_ascii_and_bounded() {
        assert_eq!(dimension_value("production"), "production");
        assert_eq!(dimension_value("pro\nd\u{e9}"), "pro_d_");
        assert_eq!(dimension_value("   "), "unknown");
        assert_eq!(dimension_value(&"x".repeat(500)).len(), MAX_DIMENSION_CHARS);
    }

    #[test]
    fn only_our_problem_codes_become_dimensions() {
        assert_eq!(problem_code("incomplete-row"), "incomplete-row");
        assert_eq!(problem_code("Forged Code!"), "other");
        assert_eq!(problem_code(&"a".repeat(64)), "other");
        assert_eq!(problem_code(""), "other");
    }

    fn outcome(files: Vec<wdiv_checks::FileReport>) -> UploadOutcome {
        UploadOutcome {
            prefix: "X01/2024-05-02/2024-04-01T10:11:12".into(),
            report: Some(crate::report::UploadReport {
                gss: "X01".into(),
                council_name: "Somewhere".into(),
                timestamp: "2024-04-01T10:11:12".into(),
                election_date: "2024-05-02".into(),
                github_issue: String::new(),
                file_set: files,
                extra: Default::default(),
            }),
            plan: None,
            results: Vec::new(),
            error: None,
            timings: Timings::default(),
        }
    }

    #[test]
    fn problem_codes_are_bounded_per_upload() {
        use wdiv_checks::Code;
        use wdiv_checks::{FileReport, Problem};
        let files = (0..30)
            .map(|n| {
                let mut file = FileReport::new(format!("f{n}.csv"));
                file.problems.push(Problem::error(Code::ALL[n], "bad"));
                file.problems
                    .push(Problem::error(Code::ALL[n], "bad again"));
                file
            })
            .collect();
        let metrics = UploadMetrics::from_outcome(&outcome(files));
        assert_eq!(metrics.verdict, Verdict::Invalid);
        assert_eq!(metrics.failures.len(), MAX_PROBLEM_CODES + 1);
        assert_eq!(
            metrics.failures[Code::ALL[0].as_str()],
            1,
            "a file counts once per code"
        );
        assert_eq!(metrics.failures["other"], 10);
    }

    #[test]
    fn another_upload_count_joins_the_upload_document() {
        let mut metrics = UploadMetrics::from_outcome(&outcome(vec![]));
        metrics.count("Overrides", 1);
        let context = Context {
            environment: "test".into(),
            request_id: Some("req-1".into()),
        };
        let docs = metrics.documents(&context, 1_700_000_000_000);
        let upload = &docs[0];
        assert_eq!(upload["Overrides"], 1);
        assert_eq!(upload["request_id"], "req-1");
        assert_eq!(upload["council"], "X01");
        let names: Vec<&str> = upload["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"Overrides"), "{names:?}");
        assert!(
            !names.contains(&EFFECTS_TIME),
            "no effects were carried out"
        );
    }

    #[test]
    fn a_document_names_every_metric_it_holds() {
        let doc = document(
            1_700_000_000_000,
            &[&[ENVIRONMENT]],
            &[(ENVIRONMENT, "test")],
            &[(UPLOADS, Unit::Count, 1.0)],
            &Map::new(),
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "Uploads", "Unit": "Count"})
        );
        assert_eq!(doc["Uploads"], 1.0);
        assert_eq!(doc["Environment"], "test");
    }
}
