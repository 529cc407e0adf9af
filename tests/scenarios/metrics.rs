//! Metrics: the CloudWatch Embedded Metric Format (EMF) lines the binary prints for each event,
//! read back as CloudWatch Logs would read them. Lambda mode prints them on stdout among its JSON
//! logs; `run --metrics` on stderr, leaving stdout to the command's output. Each document must be
//! valid EMF (every metric a directive names is a number at the top level, every dimension a
//! string, a Timestamp in milliseconds, at most 100 metrics and 30 dimensions), keep council ids
//! and prefixes out of the dimensions, and count what happened: the verdict, the rows, the
//! failures by problem code, and each effect done, done earlier, skipped, previewed or failed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use wdiv_test_support::fakes::lambda_runtime::{FakeLambdaRuntime, Outcome};
use wdiv_test_support::{fixture, World};

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const COUNCIL: &str = "E07000223";
const NAMESPACE: &str = "WDIV/S3Trigger";
/// The dimensions there are; anything else (a council, a prefix) would multiply the metrics.
const DIMENSIONS: [&str; 4] = ["Environment", "Verdict", "Effect", "ProblemCode"];
const UNITS: [&str; 2] = ["Count", "Milliseconds"];

/// The EMF documents among `text`'s lines, each checked against the specification. Lines that
/// are not EMF (logs) are left out, but must not look like EMF either.
fn emf_documents(text: &str) -> Vec<Value> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut docs = Vec::new();
    for line in text.lines() {
        let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(line) else {
            assert!(
                !line.contains("_aws"),
                "an EMF line that is not JSON: {line}"
            );
            continue;
        };
        let Some(aws) = doc.get("_aws") else { continue };
        let timestamp = aws["Timestamp"]
            .as_u64()
            .unwrap_or_else(|| panic!("no Timestamp in {line}"));
        assert!(
            timestamp.abs_diff(now_ms) < 10 * 60 * 1000,
            "Timestamp {timestamp} is not now in milliseconds ({now_ms}): {line}"
        );
        let directives = aws["CloudWatchMetrics"].as_array().expect(line);
        assert!(!directives.is_empty(), "{line}");
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE, "{line}");
            let sets = directive["Dimensions"].as_array().expect(line);
            assert!(!sets.is_empty(), "{line}");
            for set in sets {
                let keys = set.as_array().expect(line);
                assert!(!keys.is_empty() && keys.len() <= 30, "{line}");
                for key in keys {
                    let key = key.as_str().expect(line);
                    assert!(DIMENSIONS.contains(&key), "dimension {key}: {line}");
                    let value = doc[key]
                        .as_str()
                        .unwrap_or_else(|| panic!("dimension {key} is not a string: {line}"));
                    assert!(
                        !value.trim().is_empty()
                            && value.len() <= 1024
                            && value.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                        "dimension value {value:?}: {line}"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().expect(line);
            assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
            for metric in metrics {
                let name = metric["Name"].as_str().expect(line);
                assert!(
                    UNITS.contains(&metric["Unit"].as_str().expect(line)),
                    "{line}"
                );
                assert!(
                    doc[name].as_f64().is_some_and(|v| v >= 0.0),
                    "metric {name} is not a number: {line}"
                );
                assert!(!DIMENSIONS.contains(&name), "{line}");
            }
        }
        docs.push(Value::Object(doc));
    }
    docs
}

/// The upload document of `prefix`.
fn upload_doc<'a>(docs: &'a [Value], prefix: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["prefix"] == prefix && d.get("Uploads").is_some())
        .unwrap_or_else(|| panic!("no upload document for {prefix}: {docs:#?}"))
}

/// The effect document of `effect`.
fn effect_doc<'a>(docs: &'a [Value], effect: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["Effect"] == effect)
        .unwrap_or_else(|| panic!("no document for effect {effect}: {docs:#?}"))
}

/// The dimension keys a document's directive names.
fn dimension_keys(doc: &Value) -> Vec<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|set| set.as_array().unwrap().iter())
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// (done, done earlier, skipped, previewed, failed, blocked) of an effect document.
fn effect_counts(doc: &Value) -> [u64; 6] {
    [
        "EffectsDone",
        "EffectsDoneEarlier",
        "EffectsSkipped",
        "EffectsPreviewed",
        "EffectsFailed",
        "EffectsBlocked",
    ]
    .map(|m| doc[m].as_f64().unwrap() as u64)
}

const DONE: [u64; 6] = [1, 0, 0, 0, 0, 0];
const DONE_EARLIER: [u64; 6] = [0, 1, 0, 0, 0, 0];
const SKIPPED: [u64; 6] = [0, 0, 1, 0, 0, 0];
const PREVIEWED: [u64; 6] = [0, 0, 0, 1, 0, 0];

/// The valid upload and its redelivery, in Lambda mode: the metrics are on stdout with the JSON
/// logs, carry the request id, and the second delivery counts every effect as done earlier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_mode_counts_a_valid_upload_then_its_redelivery_as_done_earlier() {
    let world = World::with_effects().await;
    let key = world.upload_xpress(PREFIX).await;
    let runtime = FakeLambdaRuntime::start();
    let event = world.event_for(&[&key]).await;
    let first = runtime.push_event(event.clone());
    let again = runtime.push_event(event);

    let mut child = world.start_lambda(&runtime);
    let invocations = runtime.wait_in_place(2, Duration::from_secs(60));
    for invocation in &invocations {
        assert!(
            matches!(invocation.outcome, Some(Outcome::Response(_))),
            "{invocation:?}"
        );
    }
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Logs and metrics share stdout, one JSON object per line, never mixed on a line.
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let docs = emf_documents(&stdout);
    let of = |id: &str| -> Vec<Value> {
        docs.iter()
            .filter(|d| d["request_id"] == id)
            .cloned()
            .collect()
    };
    let (first_docs, again_docs) = (of(&first), of(&again));
    assert!(!first_docs.is_empty() && !again_docs.is_empty(), "{stdout}");
    assert_eq!(first_docs.len() + again_docs.len(), docs.len(), "{stdout}");

    // The event, then the upload: one valid file, its rows as report.json says.
    let event_doc = &first_docs[0];
    assert_eq!(event_doc["Events"], 1.0);
    assert_eq!(event_doc["KeysRefused"], 0.0);
    let upload = upload_doc(&first_docs, PREFIX);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(upload["Environment"], "test");
    assert_eq!(upload["Verdict"], "valid");
    assert_eq!(upload["council"], COUNCIL);
    assert_eq!(upload["Uploads"], 1.0);
    assert_eq!(upload["UploadsFailed"], 0.0);
    assert_eq!(upload["Files"], 1.0);
    assert_eq!(upload["FilesFailed"], 0.0);
    assert_eq!(
        upload["Rows"].as_f64().unwrap() as u64,
        report["file_set"][0]["csv_rows"].as_u64().unwrap()
    );
    assert!(upload["Rows"].as_f64().unwrap() > 0.0);
    let (check, effects, total) = (
        upload["CheckTime"].as_f64().unwrap(),
        upload["EffectsTime"].as_f64().unwrap(),
        upload["UploadTime"].as_f64().unwrap(),
    );
    assert!(
        check > 0.0 && effects > 0.0 && total >= check + effects,
        "{upload}"
    );
    assert_eq!(
        dimension_keys(upload),
        ["Environment", "Environment", "Verdict"]
    );
    // Council ids and prefixes are properties, never dimensions.
    for doc in &docs {
        for key in dimension_keys(doc) {
            assert_ne!(doc[&key], COUNCIL);
            assert!(!doc[&key].as_str().unwrap().contains(PREFIX));
        }
    }
    // No failure, so no problem code.
    assert!(docs.iter().all(|d| d.get("ProblemCode").is_none()));

    // Every effect once, then done earlier on the redelivery.
    for effect in [
        "open issue",
        "copy",
        "write report",
        "invalidate",
        "post webhook",
    ] {
        assert_eq!(
            effect_counts(effect_doc(&first_docs, effect)),
            DONE,
            "{effect}"
        );
        assert_eq!(
            effect_counts(effect_doc(&again_docs, effect)),
            DONE_EARLIER,
            "{effect}"
        );
    }
    // No success email is configured: skipped both times.
    let email = first_docs
        .iter()
        .find(|d| d["Effect"].as_str().is_some_and(|e| e.starts_with("email")))
        .expect("an email document");
    assert_eq!(effect_counts(email), SKIPPED);
    // The effects happened once.
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert!(!stdout.contains(wdiv_test_support::WDIV_TOKEN));
}

/// An invalid upload of two files, through `run --metrics`: the metrics are on stderr, each
/// failing problem code is counted once per file, and the copies are skipped.
#[tokio::test]
async fn run_with_metrics_counts_an_invalid_upload_by_problem_code() {
    let world = World::new().await;
    let short = world.upload_invalid(PREFIX).await;
    let small = world
        .upload(
            PREFIX,
            "districts.csv",
            &fixture("uploads/size/under-1kb.csv"),
        )
        .await;
    let run = world
        .run_event(&world.event_for(&[&short, &small]).await, &["--metrics"])
        .await;
    run.assert_code(0);
    // stdout is the command's output, as without the flag.
    assert!(!run.stdout.contains("_aws"), "{}", run.stdout);
    assert!(run.stdout.contains("skipped: the upload failed its checks"));

    let docs = emf_documents(&run.stderr);
    let upload = upload_doc(&docs, PREFIX);
    assert_eq!(upload["Verdict"], "invalid");
    assert_eq!(upload["UploadsFailed"], 0.0, "the upload was handled");
    assert_eq!(upload["Files"], 2.0);
    assert_eq!(upload["FilesFailed"], 2.0);
    assert_eq!(
        upload["Rows"], 7.0,
        "7 in the short file, none in the small one"
    );
    let failures: Vec<(String, f64)> = docs
        .iter()
        .filter(|d| d.get("ProblemCode").is_some())
        .map(|d| {
            assert_eq!(dimension_keys(d), ["Environment", "ProblemCode"]);
            (
                d["ProblemCode"].as_str().unwrap().to_owned(),
                d["FileFailures"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("incomplete-row".to_owned(), 1.0),
            ("too-small".to_owned(), 1.0)
        ]
    );
    let copy = effect_doc(&docs, "copy");
    assert_eq!(
        effect_counts(copy),
        [0, 0, 2, 0, 0, 0],
        "both copies skipped"
    );
    assert_eq!(effect_counts(effect_doc(&docs, "post webhook")), DONE);
    assert_eq!(world.webhook_posts().await.len(), 1);
}

/// Without `--metrics` the command line prints no metrics at all; with it, a dry run counts what
/// it previews and took no time for effects.
#[tokio::test]
async fn the_command_line_prints_metrics_only_when_asked() {
    let world = World::new().await;
    let key = world.upload_xpress(PREFIX).await;
    let event = world.event_for(&[&key]).await;

    let plain = world.run_event(&event, &["--dry-run"]).await;
    plain.assert_code(0);
    assert!(!plain.all().contains("_aws"), "{}", plain.all());

    let with = world.run_event(&event, &["--dry-run", "--metrics"]).await;
    with.assert_code(0);
    assert_eq!(with.stdout, plain.stdout, "stdout does not change");
    let docs = emf_documents(&with.stderr);
    let upload = upload_doc(&docs, PREFIX);
    assert_eq!(upload["Verdict"], "valid");
    assert!(upload.get("CheckTime").is_some());
    assert!(
        upload.get("EffectsTime").is_none(),
        "a dry run does nothing"
    );
    assert!(upload.get("request_id").is_none());
    assert_eq!(effect_counts(effect_doc(&docs, "copy")), PREVIEWED);
    assert_eq!(effect_counts(effect_doc(&docs, "post webhook")), PREVIEWED);
    assert!(world.webhook_posts().await.is_empty());
}

/// GitHub down for longer than the retries: the issue fails, what waits for it is blocked, the
/// upload counts as failed; Lambda's retry does only what is left, and its metrics say so.
#[tokio::test]
async fn a_failed_effect_and_its_retry_are_counted() {
    let mut world = World::with_effects().await;
    world.set("SENTRY_DSN", "");
    let key = world.upload_xpress(PREFIX).await;
    world.github.fail_next("ListIssues", 503, 3);
    let failed = world
        .run_event(&world.event_for(&[&key]).await, &["--metrics"])
        .await;
    failed.assert_code(1);
    let docs = emf_documents(&failed.stderr);
    let upload = upload_doc(&docs, PREFIX);
    assert_eq!(upload["Verdict"], "valid");
    assert_eq!(upload["UploadsFailed"], 1.0);
    assert_eq!(
        effect_counts(effect_doc(&docs, "open issue")),
        [0, 0, 0, 0, 1, 0]
    );
    assert_eq!(effect_counts(effect_doc(&docs, "copy")), DONE);
    assert_eq!(
        effect_counts(effect_doc(&docs, "write report")),
        [0, 0, 0, 0, 0, 1]
    );
    assert_eq!(
        effect_counts(effect_doc(&docs, "invalidate")),
        [0, 0, 0, 0, 0, 1]
    );
    assert_eq!(effect_counts(effect_doc(&docs, "post webhook")), DONE);

    let retry = world
        .run_event(&world.event_for(&[&key]).await, &["--metrics"])
        .await;
    retry.assert_code(0);
    let docs = emf_documents(&retry.stderr);
    assert_eq!(upload_doc(&docs, PREFIX)["UploadsFailed"], 0.0);
    for (effect, counts) in [
        ("open issue", DONE),
        ("copy", DONE_EARLIER),
        ("write report", DONE),
        ("invalidate", DONE),
        ("post webhook", DONE_EARLIER),
    ] {
        assert_eq!(effect_counts(effect_doc(&docs, effect)), counts, "{effect}");
    }
}
