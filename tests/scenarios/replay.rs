//! `replay`, through the binary: an upload run again from its prefix in the temp bucket, sent to
//! the deployed function (a fake Lambda API), or taken from the OnFailure queue (a fake SQS),
//! each driven by the real SDK clients. Exactly-once: a replay does only what is left, so the
//! fakes see no second issue, email or webhook.

use serde_json::{json, Value};

use wdiv_s3_trigger::{eventbridge_object_created, object_created};
use wdiv_test_support::fakes::lambda_api;
use wdiv_test_support::fakes::sqs;
use wdiv_test_support::{fixture, World};

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const FUNCTION: &str = "wdiv-s3-trigger";

/// What the effects have done so far, as the fakes saw it.
async fn effects_seen(world: &World) -> (usize, usize, usize, usize) {
    (
        world.github.issues().len(),
        world.sent_emails().await.len(),
        world.webhook_posts().await.len(),
        world.invalidations().await.len(),
    )
}

/// The record Lambda puts in an OnFailure destination after its retries.
fn on_failure(payload: &Value) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2024-04-01T10:12:00.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-4b1e-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:eu-west-2:000000000000:function:wdiv-s3-trigger:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "UploadNotHandled", "errorMessage": "webhook: 503"}
    })
    .to_string()
}

#[tokio::test]
async fn replay_by_prefix_handles_the_upload_once_and_a_second_replay_does_nothing_new() {
    let world = World::with_effects().await;
    let bytes = fixture("uploads/ems/xpress-dc.csv");
    let key = world
        .upload(PREFIX, "polling stations+50%é.csv", &bytes)
        .await;
    let location = format!("s3://{}/{PREFIX}/", world.temp);

    let first = world.cli(&["replay", &location], b"").await;
    first.assert_code(0);
    assert_eq!(world.get(&world.final_bucket, &key).await, Some(bytes));
    let report = world
        .report_json(PREFIX)
        .await
        .expect("report.json written");
    assert_eq!(report["file_set"][0]["key"], key);
    let after_first = effects_seen(&world).await;
    assert_eq!(after_first.0, 1, "one issue");
    assert_eq!(after_first.2, 1, "one webhook post");

    let second = world.cli(&["replay", &location], b"").await;
    second.assert_code(0);
    assert!(second.stdout.contains("done earlier"), "{}", second.stdout);
    assert_eq!(effects_seen(&world).await, after_first);
}

#[tokio::test]
async fn replay_names_what_is_not_an_upload_and_an_empty_upload() {
    let world = World::new().await;
    let cases = [
        (
            format!("s3://{}/E07000223/2024-05-02", world.temp),
            "is not an upload in the temp bucket",
        ),
        (
            format!("s3://other-bucket/{PREFIX}"),
            "is not the temp bucket",
        ),
        (
            format!("s3://{}/E07000223/2024-13-02/t", world.temp),
            "is not an upload in the temp bucket",
        ),
        (
            format!("s3://{}/{PREFIX}", world.temp),
            "holds no file of an upload: nothing to replay",
        ),
    ];
    for (given, expected) in cases {
        let run = world.cli(&["replay", &given], b"").await;
        run.assert_code(2);
        assert!(run.stderr.contains(expected), "{given}: {}", run.stderr);
    }
    let run = world.cli(&["replay"], b"").await;
    run.assert_code(2);
}

#[tokio::test]
async fn replay_invoke_sends_the_notification_to_the_function_asynchronously() {
    let mut world = World::new().await;
    let lambda = lambda_api::FakeLambda::start(&[FUNCTION]);
    world.set("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint());
    let key = world
        .upload(
            PREFIX,
            "polling stations.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await;
    let location = format!("s3://{}/{PREFIX}", world.temp);

    let dry = world
        .cli(
            &["replay", "--dry-run", "--invoke", FUNCTION, &location],
            b"",
        )
        .await;
    dry.assert_code(0);
    assert!(lambda.invocations().is_empty());

    let run = world
        .cli(&["replay", "--invoke", FUNCTION, &location], b"")
        .await;
    run.assert_code(0);
    let sent = lambda.invocations();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].function, FUNCTION);
    assert_eq!(sent[0].invocation_type, "Event");
    let record = &sent[0].payload["Records"][0];
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    assert_eq!(record["s3"]["bucket"]["name"], world.temp);
    assert_eq!(
        record["s3"]["object"]["key"],
        format!("{PREFIX}/polling+stations.csv").replace(':', "%3A")
    );
    // Sent, not run here.
    assert!(world.get(&world.final_bucket, &key).await.is_none());

    let unknown = world
        .cli(&["replay", "--invoke", "no-such-function", &location], b"")
        .await;
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("no such function"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn replay_from_queue_deletes_each_message_only_when_its_replay_succeeded() {
    let mut world = World::new().await;
    let queue = sqs::FakeSqs::start();
    world.set("AWS_ENDPOINT_URL_SQS", &queue.endpoint());
    let bytes = fixture("uploads/ems/xpress-dc.csv");
    let a = world.upload(PREFIX, "a.csv", &bytes).await;
    let other = "E07000223/2024-05-02/2024-04-02T09:00:00.000000";
    let b = world.upload(other, "b + c.csv", &bytes).await;
    let etag = world.etag(&world.temp, &b).await;

    let from_notification = queue.send(&on_failure(&world.event_for(&[&a]).await));
    let from_eventbridge = queue.send(&on_failure(&eventbridge_object_created(
        &world.temp,
        &b,
        10,
        &etag,
    )));
    let not_a_record = queue.send(r#"{"hello": "world"}"#);
    let gone = queue.send(&on_failure(&object_created(
        &world.temp,
        &format!("{PREFIX}/gone.csv"),
        10,
        "e",
    )));

    let dry = world
        .cli(
            &["replay", "--dry-run", "--from-queue", &queue.queue_url()],
            b"",
        )
        .await;
    dry.assert_code(0);
    assert!(queue.deleted().is_empty());
    assert!(world.keys(&world.final_bucket).await.is_empty());

    let run = world
        .cli(&["replay", "--from-queue", &queue.queue_url()], b"")
        .await;
    run.assert_code(1);
    let out = &run.stdout;
    for line in [
        format!("message {from_notification} (RetriesExhausted): replayed, deleted from the queue"),
        format!("message {from_eventbridge} (RetriesExhausted): replayed, deleted from the queue"),
        format!("message {not_a_record} (no condition): kept in the queue: it is not a Lambda OnFailure record"),
        format!("message {gone} (RetriesExhausted): kept in the queue: the replay failed"),
        "4 message(s): 2 replayed and deleted, 2 kept.".to_owned(),
    ] {
        assert!(out.contains(&line), "{line}\n--- stdout\n{out}");
    }
    assert_eq!(queue.deleted(), vec![from_notification, from_eventbridge]);
    assert_eq!(queue.remaining(), vec![not_a_record, gone]);
    assert_eq!(
        world.get(&world.final_bucket, &a).await,
        Some(bytes.clone())
    );
    assert_eq!(world.get(&world.final_bucket, &b).await, Some(bytes));
}

#[tokio::test]
async fn replay_from_queue_after_a_completed_run_does_nothing_new() {
    let mut world = World::with_effects().await;
    let queue = sqs::FakeSqs::start();
    world.set("AWS_ENDPOINT_URL_SQS", &queue.endpoint());
    let key = world.upload_xpress(PREFIX).await;
    world.run_for(&[&key]).await.assert_code(0);
    let before = effects_seen(&world).await;
    assert_eq!(before.0, 1, "one issue");

    // The run succeeded in the end, but an earlier attempt's record is still in the queue.
    let id = queue.send(&on_failure(&world.event_for(&[&key]).await));
    let run = world
        .cli(&["replay", "--from-queue", &queue.queue_url()], b"")
        .await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("message {id} (RetriesExhausted): replayed")),
        "{}",
        run.stdout
    );
    assert_eq!(effects_seen(&world).await, before);
    assert!(queue.remaining().is_empty());
}
