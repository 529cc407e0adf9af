//! Changes against the last import: a passing upload is compared with the council's newest
//! earlier upload in the final bucket. Each scenario first imports an earlier upload through the
//! binary, as production would have, then checks what staff see for the next one: the report's
//! warnings and `history`, the issue comment and the confirmation email.

use serde_json::{json, Value};
use wdiv_test_support::{fixture, World, STAFF};

use crate::S3Events;

const EARLIER: &str = "E07000223/2024-05-02/2024-03-01T09:00:00.000000";
const LATER: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";

fn ten_rows() -> Vec<u8> {
    fixture("history/xpress-dc-10-rows.csv")
}

/// Imports the Xpress DC fixture (21 rows) under `prefix`; returns its key.
async fn import_earlier(world: &World, prefix: &str) -> String {
    let key = world.upload_xpress(prefix).await;
    world.run_for(&[&key]).await.assert_code(0);
    assert!(world.report_json(prefix).await.is_some());
    key
}

fn warnings(report: &Value) -> Vec<String> {
    report["file_set"][0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_file_that_lost_half_its_rows_is_warned_about_in_the_report_issue_and_email() {
    let mut world = World::with_effects().await;
    world.set("SUCCESS_REPORT_EMAIL", STAFF);
    let earlier_key = import_earlier(&world, EARLIER).await;
    let key = world.upload(LATER, "stations.csv", &ten_rows()).await;
    world.run_for(&[&key]).await.assert_code(0);

    let report = world.report_json(LATER).await.unwrap();
    let warning = "Row count changed from 21 in the upload of 2024-03-01 to 11 (down 48%, more \
                   than 30%): check that the file is complete";
    // A warning, not an error: the upload passes and its wire fields are as before.
    assert_eq!(report["file_set"][0]["csv_valid"], true);
    assert_eq!(report["file_set"][0]["errors"], "");
    assert!(
        warnings(&report).contains(&warning.to_owned()),
        "{report:#}"
    );
    assert_eq!(
        report["history"],
        json!({
            "earlier": EARLIER,
            "earlier_date": "2024-03-01",
            "files": [{"key": key, "earlier_key": earlier_key, "rows": 11, "earlier_rows": 21,
                       "identical": false, "warning": warning}],
        })
    );
    // The webhook carries the same report.
    assert_eq!(world.webhook_posts().await.last().unwrap().0, report);

    // The open issue of the earlier import gets a comment that says it.
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].comments.len(), 1);
    let comment = &issues[0].comments[0];
    let expected = format!(
        "EMS: Xpress DC\nFiles:\n- `{key}`\n\nCompared with the last import, uploaded \
         2024-03-01 (`{EARLIER}`):\n- `{key}`: {warning}\n"
    );
    assert!(comment.contains(&expected), "{comment}");

    let emails = world.sent_emails().await;
    assert_eq!(emails.len(), 2, "a confirmation per import");
    assert!(
        emails[1].text.ends_with(&format!(
            "Compared with the last import, uploaded 2024-03-01 ({EARLIER}):\n  - {key}: \
             {warning}\n"
        )),
        "{}",
        emails[1].text
    );
}

#[tokio::test]
async fn the_same_file_uploaded_again_is_warned_about() {
    let world = World::new().await;
    import_earlier(&world, EARLIER).await;
    let key = world.upload_xpress(LATER).await;
    world.run_for(&[&key]).await.assert_code(0);

    let report = world.report_json(LATER).await.unwrap();
    assert_eq!(report["file_set"][0]["csv_valid"], true);
    assert!(
        warnings(&report).contains(
            &"This file is the same as the one uploaded on 2024-03-01 (same size and ETag)"
                .to_owned()
        ),
        "{report:#}"
    );
    assert_eq!(report["history"]["files"][0]["identical"], true);
}

#[tokio::test]
async fn with_no_earlier_import_there_is_nothing_to_compare() {
    let world = World::new().await;
    let key = world.upload(LATER, "stations.csv", &ten_rows()).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    let report = world.report_json(LATER).await.unwrap();
    assert!(report.get("history").is_none(), "{report:#}");
    // The fixture's own warnings only (its ElectionDate is another election's).
    assert!(
        warnings(&report)
            .iter()
            .all(|w| !w.contains("the upload of") && !w.contains("the same as")),
        "{report:#}"
    );
    assert!(run
        .stderr
        .contains("no earlier import of this council to compare with"));

    // An upload with an earlier timestamp, handled after it, is not compared with it: only
    // earlier uploads count, so a redelivery never compares an upload with itself or a later one.
    let older = world.upload_xpress(EARLIER).await;
    world.run_for(&[&older]).await.assert_code(0);
    let report = world.report_json(EARLIER).await.unwrap();
    assert!(report.get("history").is_none(), "{report:#}");
}

#[tokio::test]
async fn an_unreadable_earlier_report_is_a_note_and_the_upload_still_passes() {
    let world = World::new().await;
    // An earlier import whose report.json is not a report.
    world
        .put(
            &world.final_bucket,
            &format!("{EARLIER}/report.json"),
            b"{\"gss\": \"truncat",
        )
        .await;
    let key = world.upload(LATER, "stations.csv", &ten_rows()).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);

    let report = world.report_json(LATER).await.unwrap();
    assert_eq!(report["file_set"][0]["csv_valid"], true);
    assert!(report.get("history").is_none(), "{report:#}");
    assert_eq!(
        world.get(&world.final_bucket, &key).await.unwrap(),
        ten_rows()
    );
    assert!(
        run.stderr.contains(&format!(
            "could not compare with the last import: s3://{}/{EARLIER}/report.json is not a \
             report of that upload",
            world.final_bucket
        )),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn the_last_import_for_the_same_election_is_preferred() {
    let world = World::new().await;
    // The same election's import, and a newer one for another election with fewer rows.
    import_earlier(&world, EARLIER).await;
    let other = "E07000223/2023-05-04/2024-03-20T09:00:00.000000";
    let other_key = world.upload(other, "stations.csv", &ten_rows()).await;
    world.run_for(&[&other_key]).await.assert_code(0);

    let key = world.upload_xpress(LATER).await;
    world.run_for(&[&key]).await.assert_code(0);
    let report = world.report_json(LATER).await.unwrap();
    assert_eq!(report["history"]["earlier"], EARLIER, "{report:#}");
    assert_eq!(report["history"]["files"][0]["identical"], true);

    // For an election with no earlier import, the newest of any election is taken.
    let next = "E07000223/2025-05-01/2024-04-02T08:00:00.000000";
    let next_key = world.upload(next, "stations.csv", &ten_rows()).await;
    world.run_for(&[&next_key]).await.assert_code(0);
    let report = world.report_json(next).await.unwrap();
    assert_eq!(report["history"]["earlier"], LATER, "{report:#}");
    assert_eq!(report["history"]["files"][0]["earlier_rows"], 21);
}

#[tokio::test]
async fn local_folders_are_compared_too() {
    let world = World::new().await;
    let buckets = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "LOCAL_BUCKETS_DIR".to_owned(),
            buckets.path().display().to_string(),
        ),
        ("TEMP_BUCKET_NAME".to_owned(), "temp".to_owned()),
        ("FINAL_BUCKET_NAME".to_owned(), "final".to_owned()),
        ("DRY_RUN".to_owned(), "false".to_owned()),
    ];
    let simulate = |date: &str, file: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(file)
            .display()
            .to_string();
        vec![
            "simulate".to_owned(),
            "--council".to_owned(),
            "E07000223".to_owned(),
            "--election-date".to_owned(),
            date.to_owned(),
            path,
        ]
    };
    for file in ["uploads/ems/xpress-dc.csv", "history/xpress-dc-10-rows.csv"] {
        let args = simulate("2024-05-02", file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        world.cli_with(&args, b"", &env).await.assert_code(0);
    }
    let reports: Vec<Value> = walk(&buckets.path().join("final"))
        .into_iter()
        .filter(|p| p.ends_with("report.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    let later = reports
        .iter()
        .find(|r| r.get("history").is_some())
        .expect("the second upload was compared with the first");
    assert_eq!(later["history"]["files"][0]["earlier_rows"], 21);
    assert_eq!(later["history"]["files"][0]["rows"], 11);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
