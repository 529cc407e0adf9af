//! Lambda mode: the binary, started as Lambda starts it (`AWS_LAMBDA_RUNTIME_API` set), polls a
//! fake Lambda Runtime API for events and answers each one.

use std::time::Duration;

use wdiv_test_support::fakes::lambda_runtime::{self, FakeLambdaRuntime, Outcome};
use wdiv_test_support::World;

use crate::{done, S3Events};

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_are_answered_with_a_response_or_an_error() {
    let world = World::new().await;
    let key = world.upload_idox(PREFIX).await;
    let runtime = FakeLambdaRuntime::start();
    let ok = runtime.push_event(world.event_for(&[&key]).await);
    let not_s3 = runtime.push_event(serde_json::json!({"hello": "world"}));
    let traversal = runtime.push_event(wdiv_s3_trigger::object_created(
        &world.temp,
        "E07000223/2024-05-02/../../secrets.csv",
        1,
        "x",
    ));

    let child = world.start_lambda(&runtime);

    let invocations = runtime.wait_in_place(3, Duration::from_secs(30));
    let outcome = |id: &str| lambda_runtime::outcome(&invocations, id);

    match outcome(&ok) {
        Outcome::Response(body) => {
            assert_eq!(body["uploads"][0]["prefix"], PREFIX);
            assert_eq!(body["uploads"][0]["valid"], true);
            let done = done(&body["uploads"][0]["actions"]);
            assert_eq!(done, ["copy", "write report", "post webhook"], "{body:#}");
        }
        other => panic!("expected a response, got {other:?}"),
    }
    match outcome(&not_s3) {
        Outcome::Error { error_message, .. } => {
            assert!(
                error_message.contains("the event has no records")
                    || error_message.contains("not an S3 event"),
                "{error_message}"
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
    match outcome(&traversal) {
        Outcome::Error {
            error_message,
            error_type,
            ..
        } => {
            assert_eq!(error_type, "UploadNotHandled");
            assert!(error_message.contains("secrets.csv"), "{error_message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(runtime.protocol_violations().is_empty());
    assert!(runtime.init_errors().is_empty());

    // The effects happened, once.
    assert!(world.get(&world.final_bucket, &key).await.is_some());
    assert_eq!(world.webhook_posts().await.len(), 1);

    // Logs are JSON lines carrying the request id.
    let mut child = child;
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains(&format!("\"request_id\":\"{ok}\""))),
        "no log line names {ok}:\n{stdout}"
    );
    assert!(!stdout.contains(wdiv_test_support::WDIV_TOKEN));
}
