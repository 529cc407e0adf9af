//! Untrusted uploads: what an uploader writes — file names, cell values, extra objects under the
//! prefix — and what the program reads back from buckets others can write, never reach staff's
//! tools unescaped, are never served, and are never trusted as they are. Each scenario runs the
//! real binary against the fakes (or moto's server for AWS) and asserts what staff, the council
//! and the buckets would see.

use std::time::{Duration, Instant};

use serde_json::Value;
use wdiv_test_support::fakes::wdiv::{Answer, FakeWdiv};
use wdiv_test_support::{fixture, World, COUNCIL_NAME};

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const HOSTILE: &str = "b`x\n## Injected heading\n@octocat.csv";

async fn world() -> World {
    World::with_effects().await
}

async fn valid_upload(world: &World) -> String {
    world.upload_xpress(PREFIX).await
}

/// Every text that leaves the program for people: the webhook bodies, the emails, the issues.
async fn everything_sent(world: &World) -> String {
    let mut all = String::new();
    for (body, _) in world.webhook_posts().await {
        all += &body.to_string();
    }
    for email in world.sent_emails().await {
        all += &format!("{}\n{}\n", email.subject, email.text);
    }
    for issue in world.github.issues() {
        all += &format!("{}\n{}\n", issue.title, issue.body);
        for comment in issue.comments {
            all += &comment;
        }
    }
    all
}

fn file<'a>(body: &'a Value, ends_with: &str) -> &'a Value {
    body["file_set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"].as_str().unwrap().ends_with(ends_with))
        .unwrap_or_else(|| panic!("no file ending {ends_with:?} in {body}"))
}

#[tokio::test]
async fn a_sibling_with_a_hostile_name_fails_the_upload_and_is_shown_escaped() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world.upload(PREFIX, HOSTILE, b"a,b,c\n1,2,3\n").await;
    world.run_for(&[&key]).await.assert_code(0);

    // Nothing copied, no issue.
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.github.issues().is_empty());
    // The council hears it, with the file named as it can be read.
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    let refused = file(&posts[0].0, "@octocat.csv");
    assert_eq!(
        refused["key"],
        format!("{PREFIX}/b`x\\n## Injected heading\\n@octocat.csv")
    );
    assert_eq!(refused["csv_valid"], false);
    let errors = refused["errors"].as_str().unwrap();
    assert!(
        errors.contains("contains a control character or a line break"),
        "{errors}"
    );
    assert!(errors.contains("Rename the file"), "{errors}");
    assert_eq!(errors.lines().count(), 1);
    // So does staff, and no line of the email was forged.
    let emails = world.sent_emails().await;
    assert_eq!(emails.len(), 1);
    let text = &emails[0].text;
    assert!(
        !text.lines().any(|l| l.starts_with("## Injected")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "File: {PREFIX}/b`x\\n## Injected heading\\n@octocat.csv\n"
        )),
        "{text}"
    );
    assert!(!everything_sent(&world).await.contains("\n## Injected"));
}

#[tokio::test]
async fn a_right_to_left_override_in_a_name_never_passes_through() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world
        .upload(PREFIX, "evil\u{202e}vsc.csv", b"a,b,c\n1,2,3\n")
        .await;
    world.run_for(&[&key]).await.assert_code(0);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    let sent = everything_sent(&world).await;
    assert!(!sent.contains('\u{202e}'), "a raw U+202E was sent");
    let posts = world.webhook_posts().await;
    let refused = file(&posts[0].0, "vsc.csv");
    assert_eq!(refused["key"], format!("{PREFIX}/evil\\u{{202e}}vsc.csv"));
    assert!(refused["errors"]
        .as_str()
        .unwrap()
        .contains("invisible formatting character (such as a right-to-left override)"));
    assert!(world.sent_emails().await[0]
        .text
        .contains("evil\\u{202e}vsc.csv"));
}

#[tokio::test]
async fn a_key_in_a_folder_inside_the_upload_is_not_copied() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world
        .upload(
            PREFIX,
            "sub/nested.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await;
    world.run_for(&[&key]).await.assert_code(0);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let nested = file(&posts[0].0, "sub/nested.csv");
    assert!(nested["errors"]
        .as_str()
        .unwrap()
        .contains("is in a folder (sub) inside the upload"));
}

#[tokio::test]
async fn a_page_is_never_served_and_copies_carry_their_own_metadata() {
    let world = world().await;
    let key = valid_upload(&world).await;
    let page = world
        .upload(
            PREFIX,
            "page.html",
            b"<html><script>alert(1)</script>,a,b,c\n1,2,3,4\n",
        )
        .await;
    world.run_for(&[&key]).await.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let refused = file(&posts[0].0, "page.html");
    assert!(refused["errors"]
        .as_str()
        .unwrap()
        .starts_with("Files of type .html are not accepted"));

    // Without the page, the upload passes; its copy is served as data, for download.
    world
        .client
        .delete_object()
        .bucket(&world.temp)
        .key(&page)
        .send()
        .await
        .unwrap();
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(
        world.keys(&world.final_bucket).await,
        [format!("{PREFIX}/report.json"), key.clone()]
    );
    let head = |k: String| {
        let client = world.client.clone();
        let bucket = world.final_bucket.clone();
        async move {
            let out = client
                .head_object()
                .bucket(bucket)
                .key(k)
                .send()
                .await
                .unwrap();
            (
                out.content_type().unwrap_or_default().to_owned(),
                out.content_disposition().unwrap_or_default().to_owned(),
            )
        }
    };
    assert_eq!(
        head(key.clone()).await,
        ("text/csv".to_owned(), "attachment".to_owned())
    );
    assert_eq!(
        head(format!("{PREFIX}/report.json")).await.0,
        "application/json"
    );
}

#[tokio::test]
async fn a_name_that_is_only_awkward_is_shown_in_a_code_span_it_cannot_break() {
    let world = world().await;
    let key = world
        .upload(
            PREFIX,
            "Stations [draft] *v2* @team #1.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await;
    world.run_for(&[&key]).await.assert_code(0);
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    // What staff see, then the content's hidden marker (so a retry knows the issue is its own).
    let (visible, hidden) = issues[0].body.split_once("\n<!-- ").unwrap();
    assert_eq!(visible, format!("EMS: Xpress DC\nFiles:\n- `{key}`\n"));
    assert!(
        hidden.starts_with("wdiv-s3-trigger:") && hidden.ends_with(" -->\n"),
        "{hidden}"
    );
}

/// An FCS snapshot whose one station has no properties and a long name that tries to forge
/// lines in the email and the webhook.
fn forged_snapshot() -> Vec<u8> {
    let forged = "Hall\nFile: X01/forged.csv\nErrors: none\n".repeat(250);
    let station = |name: &str, properties: &str| {
        serde_json::json!({
            "id": 1, "stationId": 2, "name": name, "addressLine1": "Church Lane",
            "addressLine2": "", "addressLine3": "", "addressLine4": "", "addressLine5": "",
            "addressPostCode": "LS29 4PA", "addressUprn": 0, "latitude": 0.0, "longitude": 0.0,
            "defaultStationId": 65,
            "properties": serde_json::from_str::<Value>(properties).unwrap(),
            "pollingDistricts": [{"x": [1, 2]}]
        })
    };
    let padding = "p".repeat(2000);
    let snapshot = serde_json::json!([
        station(
            "Good Hall",
            &format!(r#"[{{"addressLine1": "{padding}"}}]"#)
        ),
        station(&forged, "null"),
    ]);
    serde_json::to_vec_pretty(&snapshot).unwrap()
}

#[tokio::test]
async fn a_quoted_value_cannot_forge_lines_in_the_email_or_the_webhook() {
    let world = world().await;
    let key = world
        .upload(PREFIX, "snapshot.json", &forged_snapshot())
        .await;
    world.run_for(&[&key]).await.assert_code(0);

    let posts = world.webhook_posts().await;
    let errors = file(&posts[0].0, "snapshot.json")["errors"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        errors.lines().count(),
        1,
        "{}",
        &errors[..errors.len().min(300)]
    );
    assert!(errors.len() <= 1024);
    assert!(!errors.contains("File: X01/forged.csv\nErrors"));
    let text = &world.sent_emails().await[0].text;
    assert!(
        !text.lines().any(|l| l.starts_with("File: X01/forged.csv")),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("File: ")).count(),
        1,
        "{text}"
    );
}

async fn council_answers(world: &World, body: Value, delay: Duration) {
    world
        .wdiv
        .answer(Answer::council_names(200).json(&body).delay(delay));
}

#[tokio::test]
async fn a_council_name_with_markdown_newlines_and_bidi_is_cleaned_and_bounded() {
    let world = world().await;
    let name = format!(
        "Testshire\n## Heading @octocat\u{202e} [x](http://evil.example) {}",
        "n".repeat(10_000)
    );
    council_answers(&world, serde_json::json!({"name": name}), Duration::ZERO).await;
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);

    let issues = world.github.issues();
    let title = &issues[0].title;
    assert!(
        title.starts_with("TEST Import E07000223-Testshire ## Heading ＠octocat [x] (http"),
        "{title}"
    );
    assert!(!title.contains('\n') && !title.contains('\u{202e}'));
    assert!(title.chars().count() < 260, "{}", title.chars().count());
    let report = world.report_json(PREFIX).await.unwrap();
    let council = report["council_name"].as_str().unwrap();
    assert_eq!(council.chars().count(), 200);
    assert!(!council.contains('\n'));
}

#[tokio::test]
async fn a_huge_council_name_is_not_read_and_the_id_stands_in() {
    let world = world().await;
    council_answers(
        &world,
        serde_json::json!({"name": "n".repeat(10 * 1024 * 1024)}),
        Duration::ZERO,
    )
    .await;
    let key = valid_upload(&world).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(
        run.stderr.contains("larger than 65536 bytes"),
        "{}",
        run.stderr
    );
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["council_name"], "E07000223");
}

#[tokio::test]
async fn a_slow_council_lookup_gives_up_within_its_budget() {
    let mut world = world().await;
    world.set("COUNCIL_NAME_TIMEOUT_SECONDS", "1");
    council_answers(
        &world,
        serde_json::json!({"name": COUNCIL_NAME}),
        Duration::from_secs(15),
    )
    .await;
    let key = valid_upload(&world).await;
    let started = Instant::now();
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("no answer within 1s"), "{}", run.stderr);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["council_name"], "E07000223");
}

/// The effects record of the upload's one run, as stored in the temp bucket.
async fn effects_record(world: &World) -> (String, Value) {
    let keys = world.keys(&world.temp).await;
    let key = keys
        .into_iter()
        .find(|k| k.starts_with(".wdiv-s3-trigger/effects/"))
        .expect("an effects record");
    let bytes = world.get(&world.temp, &key).await.unwrap();
    (key, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_planted_issue_url_in_the_effects_record_is_not_used() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);
    let real = world.github.issues()[0].html_url.clone();

    // Someone with write access to the temp bucket plants a phishing link, and makes the report
    // and the webhook look undone so they are redone with it.
    let (record_key, mut record) = effects_record(&world).await;
    record["done"]["open-issue"]["output"] = "https://evil.example/phish".into();
    let done = record["done"].as_object_mut().unwrap();
    done.remove("write-report");
    done.remove("post-webhook");
    world
        .put(&world.temp, &record_key, record.to_string().as_bytes())
        .await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);

    assert!(!everything_sent(&world).await.contains("evil.example"));
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["github_issue"], real);
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].0["github_issue"], real);
    assert_eq!(world.github.issues().len(), 1, "no second issue");
}

#[tokio::test]
async fn an_effects_record_of_another_upload_is_ignored() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);
    let (record_key, mut record) = effects_record(&world).await;
    // The record now claims another prefix: it is not this upload's, so it says nothing.
    record["prefix"] = "X99/2024-05-02/t".into();
    world
        .put(&world.temp, &record_key, record.to_string().as_bytes())
        .await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(
        run.stderr.contains("ignoring the effects record"),
        "{}",
        run.stderr
    );
    // Everything is done again, but the issue is found, not opened twice.
    assert_eq!(world.webhook_posts().await.len(), 2);
    assert_eq!(world.github.issues().len(), 1);
}

#[tokio::test]
async fn a_forged_report_in_the_final_bucket_is_replaced() {
    let world = world().await;
    let key = valid_upload(&world).await;
    let forged = serde_json::json!({
        "gss": "E07000223", "council_name": "Forged", "timestamp": "2024-04-01T10:11:12.123456",
        "election_date": "2024-05-02", "github_issue": "https://evil.example/phish",
        "file_set": [
            {"key": format!("{PREFIX}/a.csv"), "csv_valid": true, "csv_rows": 1,
             "csv_encoding": "utf-8", "ems": "Xpress DC", "errors": ""},
            {"key": format!("{PREFIX}/b.csv"), "csv_valid": true, "csv_rows": 1,
             "csv_encoding": "utf-8", "ems": "Xpress DC", "errors": ""},
            {"key": "elsewhere/c.csv", "csv_valid": true, "csv_rows": 1,
             "csv_encoding": "utf-8", "ems": "Xpress DC", "errors": ""}
        ]
    });
    world
        .put(
            &world.final_bucket,
            &format!("{PREFIX}/report.json"),
            forged.to_string().as_bytes(),
        )
        .await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["council_name"], COUNCIL_NAME);
    assert_eq!(report["file_set"].as_array().unwrap().len(), 1);
    assert!(run.stdout.contains("written (1 files)"), "{}", run.stdout);
}

#[tokio::test]
async fn an_oversized_report_in_the_final_bucket_is_replaced_not_retried_for_ever() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world
        .put(
            &world.final_bucket,
            &format!("{PREFIX}/report.json"),
            &vec![b' '; 17 * 1024 * 1024],
        )
        .await;
    world.run_for(&[&key]).await.assert_code(0);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["file_set"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_upload_over_the_file_limit_fails_unread_and_the_listing_stops_early() {
    let world = world().await;
    if let Some(fake) = world.fake() {
        fake.set_page_size(5);
    }
    let csv = fixture("uploads/ems/xpress-dc.csv");
    let mut keys = Vec::new();
    for i in 0..30 {
        keys.push(world.upload(PREFIX, &format!("f{i:02}.csv"), &csv).await);
    }
    let run = world.run_for(&[&keys[0]]).await;
    run.assert_code(0);

    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let files = posts[0].0["file_set"].as_array().unwrap();
    assert_eq!(files.len(), 11, "the limit and one more, no more");
    assert!(files[0]["errors"]
        .as_str()
        .unwrap()
        .contains("more than 10 files"));
    assert_eq!(world.sent_emails().await.len(), 1);
    if let Some(fake) = world.fake() {
        let lists = fake
            .requests()
            .iter()
            .filter(|r| r.op == "ListObjectsV2" && r.bucket == world.temp)
            .count();
        assert!(lists <= 3, "{lists} pages listed for 11 keys of 30");
        let gets = fake
            .requests()
            .iter()
            .filter(|r| {
                r.op == "GetObject" && r.key.as_deref().is_some_and(|k| k.starts_with(PREFIX))
            })
            .count();
        assert_eq!(gets, 0, "no file was read");
    }
}

/// Issue 12: 10,000 objects under one prefix. The upload limits refuse it from the first page of
/// the listing: the other 9,000 keys are never listed, no file is read, and the verdict is fast.
#[tokio::test]
async fn ten_thousand_objects_under_one_prefix_are_refused_from_the_first_page() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: needs the in-process fake to hold 10,000 objects and count listings");
        return;
    };
    let key = valid_upload(&world).await;
    let csv = fixture("uploads/ems/xpress-dc.csv");
    let others = (0..10_000).map(|i| format!("{PREFIX}/f{i:05}.csv"));
    fake.insert_objects(&world.temp, others, &csv);
    let started = Instant::now();
    let run = world.run_for(&[&key]).await;
    let took = started.elapsed();
    run.assert_code(0);
    eprintln!("10,000 objects: verdict in {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The run's peak memory is not asserted here: `World` does not expose its child's rusage, and
    // RUSAGE_CHILDREN mixes in the other tests' children. Alone, it measured 38 MB.

    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let files = posts[0].0["file_set"].as_array().unwrap();
    assert_eq!(files.len(), 11, "the limit and one more, no more");
    let errors = files[0]["errors"].as_str().unwrap();
    assert!(errors.contains("more than 10 files"), "{errors}");
    let lists = fake
        .requests()
        .iter()
        .filter(|r| r.op == "ListObjectsV2" && r.bucket == world.temp)
        .count();
    assert_eq!(lists, 1, "pages listed for 10,001 keys of 1,000 a page");
    let gets = fake
        .requests()
        .iter()
        .filter(|r| r.op == "GetObject" && r.key.as_deref().is_some_and(|k| k.starts_with(PREFIX)))
        .count();
    assert_eq!(gets, 0, "no file was read");
}

#[tokio::test]
async fn an_upload_over_the_byte_limit_fails_unread() {
    let mut world = world().await;
    world.set("MAX_UPLOAD_BYTES", "5000");
    let key = valid_upload(&world).await;
    world
        .upload(PREFIX, "second.csv", &fixture("uploads/ems/xpress-dc.csv"))
        .await;
    world.run_for(&[&key]).await.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    let posts = world.webhook_posts().await;
    let errors = posts[0].0["file_set"][0]["errors"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(errors.contains("over the limit of 5.0 KB"), "{errors}");
}

/// Local buckets never follow symlinks: a link in the temp bucket is not read, and a linked
/// folder in the final bucket is not written through.
#[test]
fn local_buckets_do_not_follow_symlinks() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("local-buckets");
    let upload = root.join("wdiv-temp").join(PREFIX);
    std::fs::create_dir_all(&upload).unwrap();
    std::fs::create_dir_all(root.join("wdiv-final")).unwrap();
    std::fs::write(
        upload.join("stations.csv"),
        fixture("uploads/ems/xpress-dc.csv"),
    )
    .unwrap();
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "secret,data,here\n1,2,3\n").unwrap();
    symlink(&secret, upload.join("evil.csv")).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    symlink(&outside, root.join("wdiv-final").join("E07000223")).unwrap();

    let key = format!("{PREFIX}/stations.csv");
    let event = wdiv_s3_trigger::object_created("wdiv-temp", &key, 0, "e");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wdiv-s3-trigger"))
        .args(["run", "--json", "-"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOCAL_BUCKETS_DIR", &root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(event.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The copy is refused, so the run fails; nothing was written outside the bucket.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    assert!(stdout.contains("symlink"), "{stdout}\n{stderr}");
    // The linked file was neither listed nor read.
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    let files = outcome[0]["uploads"][0]["report"]["file_set"]
        .as_array()
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(files.len(), 1, "{stdout}");
    assert!(files[0]["key"].as_str().unwrap().ends_with("stations.csv"));
}

#[tokio::test]
async fn log_lines_show_control_and_format_characters_escaped() {
    let world = World::new().await;
    // A record of another bucket is ignored, and logged with its key as the event has it.
    let mut ignored =
        wdiv_s3_trigger::object_created("other-bucket", "X01/2024-05-02/t/a.csv", 0, "e");
    ignored["Records"][0]["s3"]["object"]["key"] = "\u{1b}[2J\u{1b}[1;1HPASS\nforged line".into();
    // A key with a right-to-left override that is not in the bucket: the error names it.
    let missing = wdiv_s3_trigger::object_created(
        &world.temp,
        &format!("{PREFIX}/evil\u{202e}vsc.csv"),
        0,
        "e",
    );
    let event = serde_json::json!({
        "Records": [ignored["Records"][0].clone(), missing["Records"][0].clone()]
    });
    let run = world
        .cli(&["-v", "run", "-"], event.to_string().as_bytes())
        .await;
    assert!(run.stderr.contains("ignored"), "{}", run.stderr);
    assert!(run.stderr.contains("vsc.csv"), "{}", run.stderr);
    for raw in ['\u{1b}', '\u{202e}'] {
        assert!(!run.stderr.contains(raw), "{raw:?} in {:?}", run.stderr);
    }
    assert!(
        run.stderr.contains("evil\\u{202e}vsc.csv"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("\nforged line"), "{}", run.stderr);
}

#[tokio::test]
async fn an_event_of_a_thousand_records_is_one_upload_handled_once() {
    let world = world().await;
    let key = world
        .upload(
            PREFIX,
            "Polling Stations+100% café.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await;
    let one = world.event_for(&[&key]).await;
    let records: Vec<Value> = (0..1000).map(|_| one["Records"][0].clone()).collect();
    let event = serde_json::json!({ "Records": records });
    let started = Instant::now();
    let run = world.run_event(&event, &["--json"]).await;
    run.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome[0]["uploads"].as_array().unwrap().len(), 1);
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(
        world.keys(&world.final_bucket).await,
        [
            format!("{PREFIX}/Polling Stations+100% café.csv"),
            format!("{PREFIX}/report.json")
        ]
    );
}

#[tokio::test]
async fn an_object_over_the_ceiling_is_refused_from_its_listed_size_unread() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: needs the in-process fake to count GetObject requests");
        return;
    };
    let big = vec![b'a'; 150_000_001];
    let key = world.upload(PREFIX, "stations.csv", &big).await;
    drop(big);
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    let posts = world.webhook_posts().await;
    assert_eq!(
        posts[0].0["file_set"][0]["errors"],
        "Expected file to be under 150MB"
    );
    let gets = fake
        .requests()
        .iter()
        .filter(|r| r.op == "GetObject" && r.key.as_deref() == Some(key.as_str()))
        .count();
    assert_eq!(gets, 0, "the object was not downloaded");
    assert!(world.keys(&world.final_bucket).await.is_empty());
}

// What WDIV's API sends back is bounded like any other input: an error answer is read only as
// far as a message shows it (4 KB), and a redirect is never followed.

/// The most memory a run may take while a service answers with a huge body.
const MAX_PEAK_RSS_KB: u64 = 64 * 1024;
const HUGE: usize = 200 * 1024 * 1024;

#[tokio::test]
async fn a_council_name_error_with_a_200_mb_body_is_read_only_as_far_as_its_message() {
    let world = world().await;
    world
        .wdiv
        .answer(Answer::council_names(404).body(vec![b'x'; HUGE]));
    let key = valid_upload(&world).await;
    let (run, rss) = world.run_measured(&[&key]).await;
    eprintln!("council name 404 with a 200 MB body: peak RSS {rss} KB");
    run.assert_code(0);
    assert!(rss < MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
    assert!(
        run.stderr.contains("answered HTTP 404: xxx"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.len() < 64 * 1024,
        "{} bytes of log",
        run.stderr.len()
    );
    assert_eq!(
        world.report_json(PREFIX).await.unwrap()["council_name"],
        "E07000223"
    );
}

#[tokio::test]
async fn a_webhook_error_with_a_200_mb_body_is_read_only_as_far_as_its_message() {
    let world = world().await;
    world
        .wdiv
        .answer(Answer::new("POST", 400).body(vec![b'y'; HUGE]));
    let key = valid_upload(&world).await;
    let (run, rss) = world.run_measured(&[&key]).await;
    eprintln!("webhook 400 with a 200 MB body: peak RSS {rss} KB");
    run.assert_code(1);
    assert!(rss < MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
    let message = format!("answered HTTP 400: {}…", "y".repeat(199));
    assert!(run.stderr.contains(&message), "{}", run.stderr);
    assert!(!run.stderr.contains(&"y".repeat(201)));
    // A 4xx is permanent: one post.
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn the_webhook_follows_no_redirect_and_names_where_it_pointed() {
    for status in [302, 307] {
        let world = world().await;
        let elsewhere = FakeWdiv::start("elsewhere");
        world.wdiv.answer(
            Answer::new("POST", status)
                .header("Location", &format!("{}/stolen?token=x", elsewhere.url())),
        );
        let key = valid_upload(&world).await;
        let run = world.run_for(&[&key]).await;
        // A permanent failure, naming the Location (its query masked), after one post.
        run.assert_code(1);
        let named = format!(
            "answered HTTP {status}, a redirect to {}/stolen?****; redirects are not followed",
            elsewhere.url()
        );
        assert!(run.stderr.contains(&named), "{}", run.stderr);
        assert_eq!(world.webhook_posts().await.len(), 1, "{status}");
        let requests = world.wdiv.requests();
        assert!(requests
            .iter()
            .all(|r| r.method != "GET" || r.path.starts_with("/api/councils/")));
        // Nothing reached the other origin: neither the report (307) nor a GET (302).
        assert!(elsewhere.requests().is_empty(), "{status}");
    }
}

/// Issue 25: with `CLOUDFRONT_PATHS=files`, a `*` inside a file name went to CloudFront as it
/// is, a wildcard where CloudFront allows one only at the end. It is percent-encoded; the
/// prefix's own wildcard stays.
#[tokio::test]
async fn a_star_in_a_file_name_is_not_a_cloudfront_wildcard() {
    let mut world = world().await;
    world.set("CLOUDFRONT_PATHS", "files");
    let key = world
        .upload(
            PREFIX,
            "stations*.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await;
    world.run_for(&[&key]).await.assert_code(0);
    let invalidations = world.invalidations().await;
    assert_eq!(invalidations.len(), 1);
    assert_eq!(
        invalidations[0].paths,
        [
            format!("/{PREFIX}/stations%2A.csv"),
            format!("/{PREFIX}/report.json")
        ]
    );
}
