//! The pipeline end to end: an S3 event in, and what a user sees out — the bytes in the final
//! bucket, `report.json`, the webhook's body, the exit code and the messages. The binary runs as
//! it would from the command line, against S3 over real HTTP (the in-process fake, or moto's
//! server in CI) and a WDIV fake.

use serde_json::Value;
use wdiv_test_support::fakes::wdiv::Answer;
use wdiv_test_support::{fixture, World, COUNCIL_NAME, GITHUB_TOKEN, SENTRY_DSN, WDIV_TOKEN};

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";

/// A file that passes every check, uploaded as the website would; returns its key.
async fn valid_upload(world: &World) -> String {
    world.upload_idox(PREFIX).await
}

/// Makes WDIV answer `status` to `method` requests (`times` times, or always), ahead of its
/// normal answers.
async fn wdiv_answers(world: &World, method: &str, status: u16, times: Option<u64>) {
    let answer = Answer::new(method, status).body("database down");
    world.wdiv.answer(match times {
        Some(n) => answer.times(n as usize),
        None => answer,
    });
}

fn file_entry<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["file_set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in {report:#}"))
}

#[tokio::test]
async fn a_valid_file_is_copied_and_reported_field_for_field() {
    let world = World::new().await;
    let bytes = fixture("uploads/ems/xpress-dc.csv");
    let key = world.upload(PREFIX, "polling stations.csv", &bytes).await;
    let event = world.event_for(&[&key]).await;

    let run = world.run_event(&event, &[]).await;
    run.assert_code(0);

    // The bytes, copied as they were.
    assert_eq!(world.get(&world.final_bucket, &key).await.unwrap(), bytes);
    // report.json: the contract's fields with their types.
    let report = world
        .report_json(PREFIX)
        .await
        .expect("report.json written");
    assert_eq!(report["gss"], "E07000223");
    assert_eq!(report["council_name"], COUNCIL_NAME);
    assert_eq!(report["timestamp"], "2024-04-01T10:11:12.123456");
    assert_eq!(report["election_date"], "2024-05-02");
    assert_eq!(report["github_issue"], "");
    let file = file_entry(&report, &key);
    assert_eq!(file["csv_valid"], true);
    assert_eq!(file["csv_rows"], 21);
    assert_eq!(file["csv_encoding"], "utf-8");
    assert_eq!(file["ems"], "Xpress DC");
    assert_eq!(file["errors"], "");
    // The webhook got the same report, with the token in the header.
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, report);
    assert_eq!(posts[0].1, format!("Token {WDIV_TOKEN}"));
    assert!(run.stdout.contains("✔ copy"), "{}", run.stdout);
}

#[tokio::test]
async fn an_invalid_file_is_not_copied_and_the_webhook_says_why() {
    let world = World::new().await;
    let key = world.upload_invalid(PREFIX).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    let file = file_entry(&posts[0].0, &key);
    assert_eq!(file["csv_valid"], false);
    assert_eq!(
        file["errors"],
        "Incomplete file: Expected 16 columns on row 7 found 9"
    );
    assert!(run.stdout.contains("skipped: the upload failed its checks"));
}

#[tokio::test]
async fn a_democracy_counts_pair_in_order() {
    let world = World::new().await;
    let stations = world.upload_dc_stations(PREFIX).await;
    // The first file's event runs before the second file exists: a lone file, no copy.
    world.run_for(&[&stations]).await.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    let first = &world.webhook_posts().await[0].0;
    assert_eq!(
        file_entry(first, &stations)["errors"],
        "Expected 2 files, found 1"
    );

    let districts = world.upload_dc_districts(PREFIX).await;
    world.run_for(&[&districts]).await.assert_code(0);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["file_set"].as_array().unwrap().len(), 2);
    assert_eq!(
        world.keys(&world.final_bucket).await,
        vec![
            districts.clone(),
            format!("{PREFIX}/report.json"),
            stations.clone()
        ]
    );
    assert_eq!(world.webhook_posts().await.len(), 2);
}

#[tokio::test]
async fn a_democracy_counts_pair_out_of_order_never_loses_a_file_from_the_report() {
    let world = World::new().await;
    let (stations, districts) = world.upload_dc_pair(PREFIX).await;
    // The second file's event first, then the first's: both see the pair.
    for key in [&districts, &stations] {
        world.run_for(&[key]).await.assert_code(0);
    }
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["file_set"].as_array().unwrap().len(), 2);

    // A late, stale run that sees one file only must not replace the two-file report.
    let other = "E07000223/2024-05-02/2024-04-02T00:00:00.000001";
    let xpress = world.upload_xpress(other).await;
    let two_file_report = world.report_json(PREFIX).await.unwrap();
    let mut seeded = two_file_report.clone();
    seeded["timestamp"] = "2024-04-02T00:00:00.000001".into();
    // A real report of that upload: its files are the upload's and are in the final bucket.
    for file in seeded["file_set"].as_array_mut().unwrap() {
        let key = file["key"].as_str().unwrap().replace(PREFIX, other);
        world
            .put(&world.final_bucket, &key, b"copied earlier")
            .await;
        file["key"] = key.into();
    }
    world
        .put(
            &world.final_bucket,
            &format!("{other}/report.json"),
            seeded.to_string().as_bytes(),
        )
        .await;
    let run = world.run_for(&[&xpress]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("kept the existing report, which lists 2 files"),
        "{}",
        run.stdout
    );
    assert_eq!(world.report_json(other).await.unwrap(), seeded);
}

#[tokio::test]
async fn a_lone_democracy_counts_file_fails_without_a_copy() {
    let world = World::new().await;
    let key = world.upload_dc_districts(PREFIX).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let file = file_entry(&posts[0].0, &key);
    assert_eq!(file["csv_valid"], false);
    assert_eq!(file["errors"], "Expected 2 files, found 1");
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_names_every_action() {
    let world = World::new().await;
    let key = valid_upload(&world).await;
    let temp_before = world.keys(&world.temp).await;
    let run = world
        .run_event(&world.event_for(&[&key]).await, &["--dry-run"])
        .await;
    run.assert_code(0);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert_eq!(world.keys(&world.temp).await, temp_before);
    assert!(world.webhook_posts().await.is_empty());
    let out = &run.stdout;
    assert!(
        out.contains("Dry run: nothing is written anywhere."),
        "{out}"
    );
    for line in [
        format!(
            "copy          s3://{}/{key} -> s3://{}/{key}",
            world.temp, world.final_bucket
        ),
        format!(
            "write report  s3://{}/{PREFIX}/report.json",
            world.final_bucket
        ),
        format!(
            "post webhook  POST {} (Authorization: Token ****)",
            world.webhook_url()
        ),
    ] {
        assert!(out.contains(&line), "{line:?} missing from:\n{out}");
    }
    assert_eq!(out.matches("[would do: dry run]").count(), 3, "{out}");

    // DRY_RUN=true in the settings does the same.
    let mut world = world;
    world.set("DRY_RUN", "true");
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.webhook_posts().await.is_empty());
}

#[tokio::test]
async fn the_webhook_is_skipped_with_its_reason_when_its_settings_are_absent() {
    let mut world = World::new().await;
    let key = valid_upload(&world).await;
    world.set("WDIV_API_KEY", "");
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("skipped: WDIV_API_KEY not set"),
        "{}",
        run.stdout
    );
    world.set("WDIV_WEBHOOK_URL", "");
    let run = world.run_for(&[&key]).await;
    assert!(run.stdout.contains("skipped: WDIV_WEBHOOK_URL not set"));
    assert!(world.webhook_posts().await.is_empty());
    // The copy still happened.
    assert!(world.get(&world.final_bucket, &key).await.is_some());
}

#[tokio::test]
async fn malformed_events_are_refused_with_a_clear_message_and_no_side_effect() {
    let world = World::new().await;
    let not_json = world.cli(&["run", "-"], b"this is not json").await;
    not_json.assert_code(2);
    assert!(not_json.stderr.contains("the event is not an S3 event"));

    let empty = world.cli(&["run", "-"], br#"{"Records": []}"#).await;
    empty.assert_code(2);
    assert!(empty.stderr.contains("the event has no records"));

    let traversal = wdiv_s3_trigger::object_created(
        &world.temp,
        "E07000223/2024-05-02/../../../etc/passwd",
        10,
        "x",
    );
    let run = world.run_event(&traversal, &[]).await;
    run.assert_code(1);
    assert!(run.all().contains("etc/passwd"), "{}", run.all());
    assert!(run.all().contains("'..' part"));

    let shape = wdiv_s3_trigger::object_created(&world.temp, "just/a-file.csv", 10, "x");
    let run = world.run_event(&shape, &[]).await;
    run.assert_code(1);
    assert!(run
        .all()
        .contains("does not have the form council_id/YYYY-MM-DD/timestamp/file"));

    // The object was deleted between the event and the run.
    let missing =
        wdiv_s3_trigger::object_created(&world.temp, &format!("{PREFIX}/gone.csv"), 10, "x");
    let run = world.run_event(&missing, &[]).await;
    run.assert_code(1);
    assert!(
        run.all()
            .contains(&format!("s3://{}/{PREFIX}/gone.csv", world.temp)),
        "{}",
        run.all()
    );
    assert!(run.all().contains("deleted after the event"));

    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.webhook_posts().await.is_empty());
}

#[tokio::test]
async fn events_about_our_own_writes_are_ignored() {
    let world = World::new().await;
    let mut event =
        wdiv_s3_trigger::object_created(&world.temp, &format!("{PREFIX}/report.json"), 10, "x");
    let removed = {
        let mut e = event.clone();
        e["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
        e["Records"][0]["s3"]["object"]["key"] = format!("{PREFIX}/a.csv").into();
        e["Records"][0].clone()
    };
    event["Records"].as_array_mut().unwrap().push(removed);
    let run = world.run_event(&event, &[]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("a report written by this program"));
    assert!(run.stdout.contains("not an ObjectCreated event"));
    assert!(world.webhook_posts().await.is_empty());
}

#[tokio::test]
async fn settings_problems_are_listed_at_once() {
    let mut world = World::new().await;
    world.set("TEMP_BUCKET_NAME", "");
    world.set("WDIV_WEBHOOK_URL", "not a url");
    world.set("DRY_RUN", "maybe");
    let run = world
        .run_event(&serde_json::json!({"Records": []}), &[])
        .await;
    run.assert_code(2);
    for expected in [
        "TEMP_BUCKET_NAME is not set",
        "WDIV_WEBHOOK_URL \"not a url\"",
        "DRY_RUN \"maybe\"",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_output() {
    let mut world = World::new().await;
    let key = valid_upload(&world).await;
    let event = world.event_for(&[&key]).await;
    let mut outputs = Vec::new();
    outputs.push(
        world
            .cli(&["-v", "run", "-"], event.to_string().as_bytes())
            .await,
    );
    outputs.push(
        world
            .cli(
                &["-v", "run", "--dry-run", "--json", "-"],
                event.to_string().as_bytes(),
            )
            .await,
    );
    world.set("WDIV_WEBHOOK_URL", "ftp://bad");
    outputs.push(
        world
            .cli(&["-v", "run", "-"], event.to_string().as_bytes())
            .await,
    );
    for run in &outputs {
        let all = run.all();
        for secret in [WDIV_TOKEN, GITHUB_TOKEN, SENTRY_DSN, "sentrykey-s3cr3t"] {
            assert!(!all.contains(secret), "{secret} leaked:\n{all}");
        }
    }
    // The verbose runs did log the settings, masked.
    assert!(
        outputs[0].stderr.contains("Secret(****)"),
        "{}",
        outputs[0].stderr
    );
}

#[tokio::test]
async fn the_webhook_is_retried_on_a_server_error() {
    let world = World::new().await;
    wdiv_answers(&world, "POST", 503, Some(1)).await;
    let key = valid_upload(&world).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert_eq!(world.webhook_posts().await.len(), 2);
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_fails_the_run_after_the_copy() {
    let world = World::new().await;
    wdiv_answers(&world, "POST", 500, None).await;
    let key = valid_upload(&world).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("answered HTTP 500: database down"),
        "{}",
        run.stderr
    );
    assert_eq!(
        world.webhook_posts().await.len(),
        wdiv_s3_trigger::HTTP_ATTEMPTS as usize
    );
    assert!(world.report_json(PREFIX).await.is_some());
}

#[tokio::test]
async fn the_council_id_stands_in_when_wdiv_cannot_name_the_council() {
    let world = World::new().await;
    wdiv_answers(&world, "GET", 404, None).await;
    let key = valid_upload(&world).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(run.stderr.contains("using the council id as its name"));
    assert_eq!(
        world.webhook_posts().await[0].0["council_name"],
        "E07000223"
    );
}

// Faults S3 itself cannot be asked for: these need the in-process fake.

#[tokio::test]
async fn s3_throttling_is_retried_and_a_denied_copy_fails_cleanly() {
    let world = World::new().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: fault injection needs the in-process S3 fake");
        return;
    };
    let key = valid_upload(&world).await;
    fake.fail_next("GetObject", 503, "SlowDown", 1);
    fake.fail_next("ListObjectsV2", 500, "InternalError", 1);
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(world.get(&world.final_bucket, &key).await.is_some());

    let world = World::new().await;
    let fake = world.fake().unwrap();
    let key = valid_upload(&world).await;
    fake.fail_next("CopyObject", 403, "AccessDenied", 1);
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "access to s3://{}/{key} was denied (CopyObject)",
            world.temp
        )),
        "{}",
        run.stderr
    );
    // No partial result: no copy, no report; the council still hears the verdict.
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(run.stdout.contains("not attempted: a file was not copied"));
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn a_file_changed_after_its_check_is_not_copied() {
    let world = World::new().await;
    if world.fake().is_none() {
        eprintln!("skipped: needs the in-process S3 fake");
        return;
    }
    let key = valid_upload(&world).await;
    // The council replaces the file between its check and its copy (the fake holds the copy
    // back long enough for that).
    let fake = world.fake().unwrap();
    let event = world.event_for(&[&key]).await;
    let endpoint = world.endpoint();
    let replace = async {
        // Wait until the file has been read, then replace it.
        for _ in 0..200 {
            if fake.requests().iter().any(|r| r.op == "GetObject") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let client = wdiv_test_support::sdk_client(&endpoint).await;
        client
            .put_object()
            .bucket(&world.temp)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(fixture(
                "uploads/ems/xpress-dc.csv",
            )))
            .send()
            .await
            .unwrap();
    };
    fake.delay("CopyObject", std::time::Duration::from_millis(400));
    let (run, ()) = tokio::join!(world.run_event(&event, &[]), replace);
    run.assert_code(1);
    assert!(
        run.stderr.contains("changed after it was checked"),
        "{}",
        run.stderr
    );
    assert!(world.get(&world.final_bucket, &key).await.is_none());
}

#[tokio::test]
async fn listing_pages_are_followed() {
    let world = World::new().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: needs the in-process S3 fake");
        return;
    };
    fake.set_page_size(1);
    let (stations, _) = world.upload_dc_pair(PREFIX).await;
    world.run_for(&[&stations]).await.assert_code(0);
    assert_eq!(
        world.report_json(PREFIX).await.unwrap()["file_set"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
