//! What starts an invocation, through the binary: S3 events in both shapes they arrive in (an
//! S3 notification, and the EventBridge event of a rule on an existing bucket), hand-written
//! events, and the settings read from SSM at start-up. What a user sees: the bytes in the final
//! bucket, report.json, the webhook's header, the exit code and the messages.

use serde_json::json;

use wdiv_s3_trigger::{eventbridge_object_created, object_created};
use wdiv_test_support::fakes::ssm;
use wdiv_test_support::{fixture, World, WDIV_TOKEN};

use crate::S3Events;

/// A file name with what each shape encodes differently: a space, a `+`, a `%` and an `é`.
const HARD_NAME: &str = "polling stations+50%é.csv";

async fn assert_copied_and_reported(world: &World, prefix: &str, key: &str, bytes: &[u8]) {
    assert_eq!(
        world.get(&world.final_bucket, key).await.as_deref(),
        Some(bytes),
        "{key} copied as it was"
    );
    let report = world
        .report_json(prefix)
        .await
        .expect("report.json written");
    assert_eq!(report["file_set"][0]["key"], key);
    assert_eq!(report["file_set"][0]["csv_valid"], true);
}

#[tokio::test]
async fn both_shapes_of_an_s3_event_handle_a_key_with_space_plus_percent_and_accent() {
    let world = World::new().await;
    let bytes = fixture("uploads/ems/xpress-dc.csv");
    for (prefix, shape) in [
        (
            "E07000223/2024-05-02/2024-04-01T10:11:12.000001",
            "notification",
        ),
        (
            "E07000223/2024-05-02/2024-04-01T10:11:12.000002",
            "eventbridge",
        ),
    ] {
        let key = world.upload(prefix, HARD_NAME, &bytes).await;
        let etag = world.etag(&world.temp, &key).await;
        let event = match shape {
            "notification" => object_created(&world.temp, &key, 10, &etag),
            _ => eventbridge_object_created(&world.temp, &key, 10, &etag),
        };
        if shape == "notification" {
            // S3 writes the key URL-encoded, a space as `+`; EventBridge writes it as it is.
            let written = event["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
            assert!(
                written.ends_with("polling+stations%2B50%25%C3%A9.csv"),
                "{written}"
            );
        } else {
            assert_eq!(event["detail"]["object"]["key"], key);
        }
        world.run_event(&event, &[]).await.assert_code(0);
        assert_copied_and_reported(&world, prefix, &key, &bytes).await;
    }
    assert_eq!(world.webhook_posts().await.len(), 2);
}

#[tokio::test]
async fn eventbridge_events_for_own_writes_deletions_and_bad_keys_start_no_work() {
    let world = World::new().await;
    let prefix = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
    let report = eventbridge_object_created(&world.temp, &format!("{prefix}/report.json"), 10, "e");
    let run = world.run_event(&report, &[]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("a report written by this program"),
        "{}",
        run.stdout
    );

    let mut deleted = eventbridge_object_created(&world.temp, &format!("{prefix}/a.csv"), 10, "e");
    deleted["detail-type"] = "Object Deleted".into();
    deleted["detail"]["reason"] = "DeleteObject".into();
    let run = world.run_event(&deleted, &[]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("Object Deleted"), "{}", run.stdout);

    let traversal = eventbridge_object_created(
        &world.temp,
        "E07000223/2024-05-02/../../etc/passwd",
        10,
        "e",
    );
    let run = world.run_event(&traversal, &[]).await;
    run.assert_code(1);
    assert!(run.stdout.contains("refused"), "{}", run.stdout);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.webhook_posts().await.is_empty());
}

#[tokio::test]
async fn a_hand_written_event_with_only_bucket_and_key_is_accepted() {
    let world = World::new().await;
    let prefix = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
    let bytes = fixture("uploads/ems/xpress-dc.csv");
    let key = world.upload(prefix, "polling stations.csv", &bytes).await;
    // What an operator types: no eventName, eventTime, userIdentity, size or eTag.
    let event = json!({"Records": [{"s3": {
        "bucket": {"name": world.temp},
        "object": {"key": format!("{prefix}/polling+stations.csv")}
    }}]});
    world.run_event(&event, &[]).await.assert_code(0);
    assert_copied_and_reported(&world, prefix, &key, &bytes).await;
}

#[tokio::test]
async fn what_is_not_an_s3_event_is_named() {
    let world = World::new().await;
    let run = world.run_event(&json!({"foo": 1}), &[]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains("not an S3 event") && run.stderr.contains("found an object with foo"),
        "{}",
        run.stderr
    );
    let run = world
        .run_event(
            &json!({"Records": [{"s3": {"bucket": {"name": "b"}}}]}),
            &[],
        )
        .await;
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("record 1 of 1 cannot be read: missing field `object`"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn ssm_settings_are_read_once_at_start_up_and_their_values_never_shown() {
    let mut world = World::new().await;
    let fake = ssm::FakeSsm::start();
    fake.put_secure("/wdiv_s3_trigger/WDIV_API_KEY", WDIV_TOKEN);
    fake.put("/wdiv_s3_trigger/TEMP_BUCKET_NAME", "String", &world.temp);
    world.set("AWS_ENDPOINT_URL_SSM", &fake.endpoint());
    world.set("WDIV_API_KEY", "ssm:/wdiv_s3_trigger/WDIV_API_KEY");
    world.set("TEMP_BUCKET_NAME", "ssm:/wdiv_s3_trigger/TEMP_BUCKET_NAME");
    let prefix = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
    let key = world.upload_xpress(prefix).await;

    let run = world
        .cli(
            &["-v", "run", "-"],
            world.event_for(&[&key]).await.to_string().as_bytes(),
        )
        .await;
    run.assert_code(0);
    // The token read from SSM is the one WDIV got, and it is nowhere in the output.
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].1, format!("Token {WDIV_TOKEN}"));
    assert!(!run.all().contains(WDIV_TOKEN), "{}", run.all());
    let mut asked = fake.requests();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            ("/wdiv_s3_trigger/TEMP_BUCKET_NAME".to_owned(), true),
            ("/wdiv_s3_trigger/WDIV_API_KEY".to_owned(), true),
        ]
    );
}

#[tokio::test]
async fn a_missing_or_forbidden_parameter_is_a_settings_error_naming_setting_and_parameter() {
    let mut world = World::new().await;
    let fake = ssm::FakeSsm::start();
    fake.deny("/wdiv_s3_trigger/WDIV_API_KEY");
    fake.put_secure("/wdiv_s3_trigger/LEASE_SECONDS", "s3cr3t-not-a-number");
    world.set("AWS_ENDPOINT_URL_SSM", &fake.endpoint());
    world.set("WDIV_API_KEY", "ssm:/wdiv_s3_trigger/WDIV_API_KEY");
    world.set("GITHUB_API_KEY", "ssm:/wdiv_s3_trigger/GITHUB_API_KEY");
    world.set("LEASE_SECONDS", "ssm:/wdiv_s3_trigger/LEASE_SECONDS");
    world.set("AWS_REGION", "ssm:/wdiv_s3_trigger/AWS_REGION");

    let run = world.run_event(&json!({"Records": []}), &[]).await;
    run.assert_code(2);
    let err = &run.stderr;
    assert!(
        err.contains(
            "GITHUB_API_KEY (from environment variable) names the SSM parameter \
             \"/wdiv_s3_trigger/GITHUB_API_KEY\", which does not exist"
        ),
        "{err}"
    );
    assert!(
        err.contains("WDIV_API_KEY (from environment variable) names the SSM parameter \"/wdiv_s3_trigger/WDIV_API_KEY\", which this role may not read: allow ssm:GetParameter"),
        "{err}"
    );
    assert!(
        err.contains("AWS_REGION (from environment variable) cannot be read from SSM"),
        "{err}"
    );
    // A value from a SecureString is never quoted, even for a setting that is not a secret.
    assert!(
        err.contains("LEASE_SECONDS (from SSM SecureString parameter"),
        "{err}"
    );
    assert!(!run.all().contains("s3cr3t"), "{}", run.all());
}
