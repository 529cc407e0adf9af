//! Staff override: an upload that fails its checks is accepted by staff, from the command line
//! or a direct Lambda invocation, and takes the success path once — whatever the retries.

use std::time::Duration;

use serde_json::{json, Value};
use wdiv_test_support::fakes::lambda_runtime;
use wdiv_test_support::fakes::wdiv::Answer;
use wdiv_test_support::{fixture, World, STAFF};

use crate::{done, S3Events};

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const REASON: &str = "Row 7 is a known short row; the rest checked by hand";
const BY: &str = "Jane Staff";
const ERROR: &str = "Incomplete file: Expected 16 columns on row 7 found 9";
const SUBJECT: &str =
    "**NB triggered from test instance** Data received for council E07000223-Testshire District Council";

fn failing_bytes() -> Vec<u8> {
    fixture("uploads/records/short-row-in-middle.csv")
}

/// A file that fails its checks, uploaded and handled as its S3 event would be; returns its key.
async fn failed_upload(world: &World) -> String {
    let key = world.upload(PREFIX, "stations.csv", &failing_bytes()).await;
    world.run_for(&[&key]).await.assert_code(0);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    key
}

fn target(world: &World, prefix: &str) -> String {
    format!("s3://{}/{prefix}", world.temp)
}

async fn override_cli(world: &World, extra: &[&str]) -> wdiv_test_support::Run {
    let target = target(world, PREFIX);
    let mut args = vec!["override", &target, "--reason", REASON, "--by", BY];
    args.extend_from_slice(extra);
    world.cli(&args, b"").await
}

#[tokio::test]
async fn an_override_takes_the_success_path_and_says_who_and_why_once() {
    let mut world = World::with_effects().await;
    world.set("SUCCESS_REPORT_EMAIL", STAFF);
    let key = failed_upload(&world).await;

    let run = override_cli(&world, &[]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("Accepted by staff override by {BY} at ")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("[overridden] {ERROR}")));
    assert!(run
        .stderr
        .contains("staff override: accepting an upload that fails its checks"));

    // The bytes, copied as they were.
    assert_eq!(
        world.get(&world.final_bucket, &key).await.unwrap(),
        failing_bytes()
    );
    // report.json: accepted, every error kept and marked, who, why and when.
    let report = world.report_json(PREFIX).await.unwrap();
    let at = report["override"]["at"].as_str().unwrap().to_owned();
    assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at}");
    assert_eq!(
        report["override"],
        json!({"by": BY, "reason": REASON, "at": at})
    );
    let file = &report["file_set"][0];
    assert_eq!(file["csv_valid"], true);
    assert_eq!(file["errors"], ERROR);
    assert_eq!(file["problems"][0]["message"], ERROR);
    assert_eq!(file["problems"][0]["overridden"], true);

    // The issue states the override.
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    // What staff see, then the content's hidden marker.
    let (visible, hidden) = issues[0].body.split_once("\n<!-- ").unwrap();
    assert_eq!(
        visible,
        format!(
            "EMS: Xpress WebLookup\nFiles:\n- `{key}`\n\n**Accepted by staff override**: {BY}, {at}\n\
             Reason: {REASON}\nErrors overridden:\n- `{key}`: {ERROR}\n"
        )
    );
    assert!(hidden.starts_with("wdiv-s3-trigger:"), "{hidden}");
    assert_eq!(report["github_issue"], issues[0].html_url);
    // The webhook: first the failure, then the accepted report.
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].0["file_set"][0]["csv_valid"], false);
    assert_eq!(posts[1].0, report);
    assert_eq!(world.invalidations().await.len(), 1);
    // The failure email, then the confirmation that names the override.
    let emails = world.sent_emails().await;
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[1].subject, SUBJECT);
    assert!(
        emails[1].text.starts_with(&format!(
            "Testshire District Council (E07000223) uploaded data for the election on \
             2024-05-02. It failed\nthe checks, and staff accepted it: {BY}, {at}.\nReason: \
             {REASON}\n"
        )),
        "{}",
        emails[1].text
    );
    assert!(emails[1]
        .text
        .contains(&format!("Errors overridden:\n  - {key}: {ERROR}\n")));

    // Retried: nothing new happens, and the override keeps its time.
    let again = override_cli(&world, &[]).await;
    again.assert_code(0);
    assert!(again.stdout.contains("done earlier"), "{}", again.stdout);
    assert_eq!(world.report_json(PREFIX).await.unwrap(), report);
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].comments.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 2);
    assert_eq!(world.invalidations().await.len(), 1);
    assert_eq!(world.sent_emails().await.len(), 2);
}

#[tokio::test]
async fn refusals_say_what_to_fix_and_change_nothing() {
    let world = World::with_effects().await;
    failed_upload(&world).await;
    let temp = target(&world, PREFIX);
    let empty = target(&world, "E07000223/2024-05-02/2024-04-02T00:00:00.000000");
    let short = target(&world, "E07000223/2024-05-02");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["override", &temp, "--by", BY],
            "refused: an override needs a reason, saying why the upload may go through",
        ),
        (
            vec!["override", &temp, "--reason", "  ", "--by", BY],
            "refused: an override needs a reason",
        ),
        (
            vec!["override", &temp, "--reason", REASON, "--by", ""],
            "refused: an override needs the name of whoever decides it (--by NAME",
        ),
        (
            vec!["override", &empty, "--reason", REASON, "--by", BY],
            "holds no files, so it is not an upload (check the prefix)",
        ),
        (
            vec!["override", &short, "--reason", REASON, "--by", BY],
            "is not an upload: it does not have the form COUNCIL_ID/YYYY-MM-DD/TIMESTAMP",
        ),
        (
            vec![
                "override",
                "s3://elsewhere/E07000223/2024-05-02/t",
                "--reason",
                REASON,
                "--by",
                BY,
            ],
            "uploads are in the temp bucket",
        ),
    ];
    for (args, message) in cases {
        let run = world.cli(&args, b"").await;
        run.assert_code(2);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    // An upload that passes needs no override.
    let passing = "E07000223/2024-05-02/2024-04-03T00:00:00.000000";
    world.upload_xpress(passing).await;
    let run = world
        .cli(
            &[
                "override",
                &target(&world, passing),
                "--reason",
                REASON,
                "--by",
                BY,
            ],
            b"",
        )
        .await;
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!(
            "refused: {passing} already passes its checks; there is nothing to override"
        )),
        "{}",
        run.stderr
    );
    // Nothing was done: only the failed upload's webhook post.
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.github.issues().is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_previews_the_override_and_writes_nothing() {
    let world = World::with_effects().await;
    let key = failed_upload(&world).await;
    let run = override_cli(&world, &["--dry-run"]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("Accepted by staff override by {BY} at ")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("Plan for {PREFIX} (checks passed), 6 actions:")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "copy          s3://{}/{key} -> s3://{}/{key}  [would do: dry run]",
        world.temp, world.final_bucket
    )));
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert!(world.github.issues().is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
    // Not even the override's time is kept.
    let temp_keys = world.keys(&world.temp).await;
    assert!(
        !temp_keys.iter().any(|k| k.contains("overrides/")),
        "{temp_keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_lambda_invocation_overrides_or_refuses() {
    let world = World::new().await;
    let key = failed_upload(&world).await;
    let runtime = lambda_runtime::FakeLambdaRuntime::start();
    let refused = runtime.push_event(json!({"override": {"prefix": PREFIX, "by": BY}}));
    let accepted = runtime.push_event(
        json!({"override": {"prefix": target(&world, PREFIX), "reason": REASON, "by": BY}}),
    );
    let _child = world.start_lambda(&runtime);
    let invocations = runtime.wait_in_place(2, Duration::from_secs(30));
    let outcome = |id: &str| lambda_runtime::outcome(&invocations, id);
    match outcome(&refused) {
        lambda_runtime::Outcome::Error { error_message, .. } => {
            assert!(
                error_message.starts_with("refused: an override needs a reason"),
                "{error_message}"
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
    match outcome(&accepted) {
        lambda_runtime::Outcome::Response(body) => {
            assert_eq!(body["prefix"], PREFIX);
            assert_eq!(body["override"]["by"], BY);
            let done = done(&body["actions"]);
            assert_eq!(done, ["copy", "write report", "post webhook"], "{body:#}");
        }
        other => panic!("expected a response, got {other:?}"),
    }
    let report: Value = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["override"]["reason"], REASON);
    assert_eq!(report["file_set"][0]["key"], key);
    assert_eq!(report["file_set"][0]["csv_valid"], true);
}

#[tokio::test]
async fn an_override_after_the_site_stored_the_failing_report_is_posted_once_and_finishes() {
    let world = World::with_effects().await;
    let site = world.answer_as_the_site(0).await;
    let key = failed_upload(&world).await;
    assert_eq!(site.answers(), [500]);

    // The site keeps its failing rows (the override's report has no more files) and answers
    // 500: one post, taken as delivered, and every other step done.
    let run = override_cli(&world, &[]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("the site keeps its earlier verdict"),
        "{}",
        run.stdout
    );
    assert_eq!(site.answers(), [500, 500]);
    assert_eq!(site.files(PREFIX)[0]["csv_valid"], false);
    assert_eq!(site.pull_requests(), 0);
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(
        world.get(&world.final_bucket, &key).await.unwrap(),
        failing_bytes()
    );
    assert!(world.report_json(PREFIX).await.is_some());
    assert_eq!(world.invalidations().await.len(), 1);

    // The same override again posts nothing more.
    override_cli(&world, &[]).await.assert_code(0);
    assert_eq!(site.answers(), [500, 500]);
    assert_eq!(world.webhook_posts().await.len(), 2);
}

#[tokio::test]
async fn an_override_of_an_upload_holding_refused_files_is_refused_naming_them() {
    let world = World::with_effects().await;
    let key = world.upload(PREFIX, "stations.csv", &failing_bytes()).await;
    let page = world
        .upload(PREFIX, "index.html", b"<script>alert(1)</script>")
        .await;
    // In a folder: its own event is refused for its key, but the listing holds it.
    world
        .upload(PREFIX, "old/stations.csv", &failing_bytes())
        .await;
    world.run_for(&[&key, &page]).await.assert_code(0);

    let run = override_cli(&world, &[]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains(&format!(
            "refused: {PREFIX} holds files that no override can let through"
        )),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("\"index.html\" (Files of type .html are not accepted"));
    assert!(run.stderr.contains("\"old/stations.csv\" (The file"));
    assert!(run
        .stderr
        .contains("Ask the council to upload again without them"));
    // Nothing was done: no issue, no copy, only the original run's webhook post.
    assert!(world.github.issues().is_empty());
    assert!(world.keys(&world.final_bucket).await.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
}

/// Failing posts, each of them, then the override's accepted one: the site must never hear
/// "failed" after "accepted".
fn no_failing_post_after_the_accepted_one(posts: &[(Value, String)]) {
    let accepted = posts
        .iter()
        .position(|(body, _)| body["override"].is_object())
        .expect("the override's report was posted");
    for (body, _) in &posts[accepted + 1..] {
        assert_eq!(body["file_set"][0]["csv_valid"], true, "{body}");
    }
}

#[tokio::test]
async fn a_retry_of_the_original_event_after_an_override_sends_nothing() {
    let world = World::with_effects().await;
    // The site is down for the original run: its webhook fails, so Lambda will retry it.
    world
        .wdiv
        .answer(Answer::new("POST", 502).times(wdiv_s3_trigger::HTTP_ATTEMPTS as usize));
    let key = world.upload(PREFIX, "stations.csv", &failing_bytes()).await;
    world.run_for(&[&key]).await.assert_code(1);
    let emails = world.sent_emails().await.len();
    override_cli(&world, &[]).await.assert_code(0);
    let posts = world.webhook_posts().await.len();

    // Lambda's retry of the original event: a no-op that says why.
    let retry = world.run_for(&[&key]).await;
    retry.assert_code(0);
    assert!(
        retry
            .stdout
            .contains("staff accepted this upload by override (Jane Staff, "),
        "{}",
        retry.stdout
    );
    assert_eq!(world.webhook_posts().await.len(), posts);
    assert_eq!(world.sent_emails().await.len(), emails);
    no_failing_post_after_the_accepted_one(&world.webhook_posts().await);
}

#[tokio::test]
async fn an_override_and_a_run_of_the_original_content_at_once_end_with_the_accepted_report() {
    for _ in 0..3 {
        let world = World::with_effects().await;
        // A slow site, so that the two runs overlap.
        world.wdiv.answer(
            Answer::new("POST", 502)
                .delay(Duration::from_millis(300))
                .times(wdiv_s3_trigger::HTTP_ATTEMPTS as usize),
        );
        let key = world.upload(PREFIX, "stations.csv", &failing_bytes()).await;
        world.run_for(&[&key]).await.assert_code(1);
        let keys = [key.as_str()];
        let (retry, over) = tokio::join!(world.run_for(&keys), override_cli(&world, &[]));
        over.assert_code(0);
        retry.assert_code(0);
        no_failing_post_after_the_accepted_one(&world.webhook_posts().await);
        // And once more after both.
        world.run_for(&[&key]).await.assert_code(0);
        no_failing_post_after_the_accepted_one(&world.webhook_posts().await);
    }
}
