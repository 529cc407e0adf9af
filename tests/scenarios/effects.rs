//! The effects on the outside world — the GitHub issue, the CloudFront invalidation, the SES
//! email, the webhook — each exactly once per upload content, through redelivery, concurrency,
//! crashes and faults. The binary runs against stateful fakes that record every call or, with
//! `WDIV_TEST_S3_ENDPOINT` set, against that emulator (moto's server in CI) for S3, SES v2 and
//! CloudFront; GitHub, WDIV and Sentry are always fakes. Scenarios that need fault injection in
//! AWS (failures, delays, request counts) run only on the in-process fake.

use std::time::Duration;

use wdiv_test_support::fakes::wdiv::Answer;
use wdiv_test_support::{fixture, World, GITHUB_REPO, STAFF};

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const TITLE: &str = "TEST Import E07000223-Testshire District Council for 2024-05-02";

async fn world() -> World {
    World::with_effects().await
}

async fn valid_upload(world: &World) -> String {
    world.upload_xpress(PREFIX).await
}

#[tokio::test]
async fn a_valid_upload_opens_one_issue_with_the_exact_title_labels_and_body() {
    let world = world().await;
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);

    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].title, TITLE);
    assert_eq!(issues[0].labels, ["Data Import", "ready"]);
    // What staff see, then the content's hidden marker (so a retry knows the issue is its own).
    let (visible, hidden) = issues[0].body.split_once("\n<!-- ").unwrap();
    assert_eq!(visible, format!("EMS: Xpress DC\nFiles:\n- `{key}`\n"));
    assert!(
        hidden.starts_with("wdiv-s3-trigger:") && hidden.ends_with(" -->\n"),
        "{hidden}"
    );
    // Its URL, without a fragment, in report.json and the webhook.
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["github_issue"], issues[0].html_url);
    assert!(!issues[0].html_url.contains('#'));
    assert_eq!(
        world.webhook_posts().await[0].0["github_issue"],
        issues[0].html_url
    );
    // One invalidation, one wildcard path for the upload.
    let invalidations = world.invalidations().await;
    assert_eq!(invalidations.len(), 1);
    assert_eq!(invalidations[0].distribution_id, world.distribution);
    assert_eq!(invalidations[0].paths, [format!("/{PREFIX}/*")]);
    // No email for a success unless asked for.
    assert!(world.sent_emails().await.is_empty());
}

#[tokio::test]
async fn an_open_issue_with_the_same_title_gets_one_comment() {
    let world = world().await;
    let existing = world.github.seed_issue(
        TITLE,
        "EMS: Xpress DC\nFiles:\n- `old.csv`\n",
        &["Data Import", "ready"],
        "open",
    );
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);

    let issues = world.github.issues();
    assert_eq!(issues.len(), 1, "no second issue");
    let issue = world.github.issue(existing).unwrap();
    assert_eq!(issue.comments.len(), 1);
    assert!(
        issue.comments[0].starts_with("Updated"),
        "{}",
        issue.comments[0]
    );
    assert!(issue.comments[0].contains(&key));
    assert_eq!(
        world.report_json(PREFIX).await.unwrap()["github_issue"],
        issue.html_url
    );
}

#[tokio::test]
async fn an_invalid_upload_sends_one_email_naming_the_failing_row() {
    let world = world().await;
    let key = world.upload_invalid(PREFIX).await;
    world.run_for(&[&key]).await.assert_code(0);

    let emails = world.sent_emails().await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].from, world.sender);
    assert_eq!(emails[0].to, [STAFF]);
    assert_eq!(
        emails[0].subject,
        "**NB triggered from test instance** Error with data for council \
         E07000223-Testshire District Council"
    );
    let text = &emails[0].text;
    assert!(
        text.contains(&format!(
            "File: {key}\nEMS: Xpress WebLookup, 7 rows read\nErrors:\n  \
             - Incomplete file: Expected 16 columns on row 7 found 9\n"
        )),
        "{text}"
    );
    assert!(emails[0].text.contains("What to do next"));
    assert!(world.github.issues().is_empty());
    assert!(world.invalidations().await.is_empty());
}

#[tokio::test]
async fn a_lone_democracy_counts_file_sends_no_email() {
    let world = world().await;
    let key = world.upload_dc_districts(PREFIX).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    assert!(run
        .stdout
        .contains("no email for a lone file whose partner is on its way"));
    assert!(world.sent_emails().await.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn the_same_event_delivered_three_times_has_each_effect_once() {
    let world = world().await;
    let key = valid_upload(&world).await;
    let event = world.event_for(&[&key]).await;
    for _ in 0..3 {
        world.run_event(&event, &[]).await.assert_code(0);
    }
    assert_eq!(world.github.issues().len(), 1);
    assert!(world.github.issues()[0].comments.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert_eq!(world.invalidations().await.len(), 1);
    if let Some(fake) = world.fake() {
        let copies = fake
            .requests()
            .iter()
            .filter(|r| r.op == "CopyObject")
            .count();
        assert_eq!(copies, 1);
    }
    let last = world.run_event(&event, &[]).await;
    assert!(last.stdout.contains("done earlier"), "{}", last.stdout);
}

#[tokio::test]
async fn both_democracy_counts_events_at_once_open_one_issue() {
    let world = world().await;
    let (stations, districts) = world.upload_dc_pair(PREFIX).await;
    let (a, b) = (
        world.event_for(&[&stations]).await,
        world.event_for(&[&districts]).await,
    );
    let (first, second) = tokio::join!(world.run_event(&a, &[]), world.run_event(&b, &[]));
    first.assert_code(0);
    second.assert_code(0);

    let issues = world.github.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].comments.is_empty());
    assert!(issues[0].body.contains(&stations) && issues[0].body.contains(&districts));
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert_eq!(world.invalidations().await.len(), 1);
}

#[tokio::test]
async fn a_run_that_crashes_after_the_copy_is_finished_by_the_retry_once() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: needs the in-process fake to hold the run after the copy");
        return;
    };
    let key = valid_upload(&world).await;
    let event = world.event_for(&[&key]).await;
    // The run is held at the invalidation (after the issue, the copy and the report) and killed.
    fake.delay("CreateInvalidation", Duration::from_secs(30));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wdiv-s3-trigger"));
    command
        .args(["run", "-"])
        .current_dir(world.dir.path())
        .env_clear()
        .env("HOME", world.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in world.settings() {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(event.to_string().as_bytes()).await.unwrap();
    }
    for _ in 0..300 {
        if fake.requests().iter().any(|r| r.op == "CreateInvalidation") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    assert!(
        world.report_json(PREFIX).await.is_some(),
        "the copy happened"
    );
    assert!(world.webhook_posts().await.is_empty());
    fake.delay("CreateInvalidation", Duration::ZERO);

    // Lambda's retry: the lease of the dead run expires (LEASE_SECONDS=4), then the rest is done.
    let retry = world.run_event(&event, &[]).await;
    retry.assert_code(0);
    assert_eq!(world.github.issues().len(), 1);
    assert!(world.github.issues()[0].comments.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert_eq!(world.invalidations().await.len(), 1);
    assert!(retry.stdout.contains("done earlier"), "{}", retry.stdout);
}

#[tokio::test]
async fn transient_failures_are_retried_and_each_effect_happens_once() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: fault injection needs the in-process fake");
        return;
    };
    world.github.fail_next("CreateIssue", 502, 1);
    world.github.fail_next("ListIssues", 503, 1);
    fake.fail_next(
        "CreateInvalidation",
        400,
        "TooManyInvalidationsInProgress",
        2,
    );
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(world.invalidations().await.len(), 1);

    let invalid = "E07000223/2024-05-02/2024-04-09T00:00:00.000001";
    let bad = world.upload_invalid(invalid).await;
    fake.fail_next("SendEmail", 429, "TooManyRequestsException", 1);
    world.run_for(&[&bad]).await.assert_code(0);
    assert_eq!(world.sent_emails().await.len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_stops_only_what_depends_on_it_and_the_retry_does_the_rest() {
    let mut world = world().await;
    let sentry = wdiv_test_support::fakes::sentry::FakeSentry::start();
    world.set("SENTRY_DSN", &sentry.dsn());
    let key = valid_upload(&world).await;
    // GitHub is down for longer than our retries.
    world.github.fail_next("ListIssues", 503, 3);
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("GitHub list issues"), "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    // The files were copied and the council heard the verdict; report.json waits for the issue.
    assert!(world.get(&world.final_bucket, &key).await.is_some());
    assert!(world.report_json(PREFIX).await.is_none());
    assert_eq!(world.webhook_posts().await.len(), 1);
    // The webhook waited for the issue step (it carries the link), then went without it.
    assert_eq!(world.webhook_posts().await[0].0["github_issue"], "");
    assert!(
        run.stdout
            .contains("posted without the GitHub issue's link, as the issue step did not succeed"),
        "{}",
        run.stdout
    );
    assert!(world.github.issues().is_empty());
    // Sentry heard of it, with the effect and council as tags.
    let events =
        tokio::task::spawn_blocking(move || sentry.wait_for_events(1, Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(!events.is_empty(), "no Sentry event");
    assert_eq!(events[0]["tags"]["effect"], "open issue");
    assert_eq!(events[0]["tags"]["council"], "E07000223");
    assert_eq!(events[0]["environment"], "test");
    assert!(!events[0]
        .to_string()
        .contains(wdiv_test_support::GITHUB_TOKEN));

    // Lambda retries: GitHub is back; only what is left is done.
    world.set("SENTRY_DSN", "");
    let retry = world.run_for(&[&key]).await;
    retry.assert_code(0);
    assert_eq!(world.github.issues().len(), 1);
    let report = world.report_json(PREFIX).await.unwrap();
    assert_eq!(report["github_issue"], world.github.issues()[0].html_url);
    assert_eq!(
        world.webhook_posts().await.len(),
        1,
        "the webhook is not posted twice"
    );
    if let Some(fake) = world.fake() {
        let copies = fake
            .requests()
            .iter()
            .filter(|r| r.op == "CopyObject")
            .count();
        assert_eq!(copies, 1);
    }
}

#[tokio::test]
async fn a_failed_email_does_not_block_the_webhook_and_is_sent_on_the_retry() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: fault injection needs the in-process fake");
        return;
    };
    let key = world.upload_invalid(PREFIX).await;
    fake.fail_next("SendEmail", 400, "MessageRejected", 1);
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("MessageRejected"), "{}", run.stderr);
    assert_eq!(world.webhook_posts().await.len(), 1);
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(world.sent_emails().await.len(), 1);
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_names_every_effect_with_its_target() {
    let mut world = world().await;
    world.set("SUCCESS_REPORT_EMAIL", STAFF);
    let key = valid_upload(&world).await;
    let run = world
        .run_event(&world.event_for(&[&key]).await, &["--dry-run"])
        .await;
    run.assert_code(0);
    let out = &run.stdout;
    for line in [
        format!(
            "~ open issue    {GITHUB_REPO}: {TITLE:?} [Data Import, ready]  [would do: dry run]"
        ),
        format!(
            "~ invalidate    distribution {}: /{PREFIX}/*  [would do: dry run]",
            world.distribution
        ),
        format!(
            "~ email success to {STAFF}: \"**NB triggered from test instance** Data received for \
             council E07000223-Testshire District Council\"  [would do: dry run]"
        ),
    ] {
        assert!(out.contains(&line), "{line}\nmissing from:\n{out}");
    }
    assert!(world.github.issues().is_empty());
    assert!(world.sent_emails().await.is_empty());
    assert!(world.invalidations().await.is_empty());
    assert!(world.webhook_posts().await.is_empty());
}

#[tokio::test]
async fn each_effect_is_skipped_with_its_reason_when_its_setting_is_absent() {
    let mut world = world().await;
    for name in [
        "GITHUB_API_KEY",
        "CLOUDFRONT_DISTRIBUTION_ID",
        "ERROR_REPORT_EMAIL",
        "WDIV_API_KEY",
    ] {
        world.set(name, "");
    }
    let key = valid_upload(&world).await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);
    for reason in [
        "skipped: GITHUB_API_KEY not set",
        "skipped: CLOUDFRONT_DISTRIBUTION_ID not set",
        "skipped: no confirmation: SUCCESS_REPORT_EMAIL not set",
        "skipped: WDIV_API_KEY not set",
    ] {
        assert!(run.stdout.contains(reason), "{reason}\n{}", run.stdout);
    }
    assert!(world.github.issues().is_empty());
    assert!(world.invalidations().await.is_empty());
    // The copy does not depend on any of them.
    assert!(world.report_json(PREFIX).await.is_some());
}

#[tokio::test]
async fn a_cloudfront_failure_keeps_the_copy_and_the_webhook_and_the_retry_invalidates_once() {
    let world = world().await;
    let Some(fake) = world.fake() else {
        eprintln!("skipped: fault injection needs the in-process fake");
        return;
    };
    let key = valid_upload(&world).await;
    fake.fail_next("CreateInvalidation", 403, "AccessDenied", 1);
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("CloudFront invalidation on distribution"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("AccessDenied"), "{}", run.stderr);
    assert!(world.report_json(PREFIX).await.is_some());
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert!(world.invalidations().await.is_empty());

    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(world.invalidations().await.len(), 1);
    assert_eq!(world.github.issues().len(), 1);
    assert!(world.github.issues()[0].comments.is_empty());
    assert_eq!(world.webhook_posts().await.len(), 1);
}

#[tokio::test]
async fn a_webhook_down_for_good_is_posted_once_by_the_retry() {
    let world = world().await;
    let key = valid_upload(&world).await;
    // WDIV answers 500 to our three attempts, then recovers.
    world
        .wdiv
        .answer(Answer::new("POST", 500).times(wdiv_s3_trigger::HTTP_ATTEMPTS as usize));
    let run = world.run_for(&[&key]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("webhook"), "{}", run.stderr);
    let failed_posts = world.webhook_posts().await.len();
    assert_eq!(failed_posts, wdiv_s3_trigger::HTTP_ATTEMPTS as usize);

    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(world.webhook_posts().await.len(), failed_posts + 1);
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(world.invalidations().await.len(), 1);
}

// WhereDoIVote's own answers (crates/test-support/src/fakes/wdiv.rs `Site`, upstream's `UploadSerializer.create`):
// it stores a failing report's files, then answers 500.

#[tokio::test]
async fn an_invalid_upload_is_posted_once_in_three_runs_though_the_site_answers_500() {
    let world = world().await;
    let site = world.answer_as_the_site(0).await;
    let key = world.upload_invalid(PREFIX).await;
    let first = world.run_for(&[&key]).await;
    first.assert_code(0);
    assert!(
        first.stdout.contains("HTTP 500, taken as delivered"),
        "{}",
        first.stdout
    );
    // The event redelivered, and Lambda's retry: nothing more is posted.
    world.run_for(&[&key]).await.assert_code(0);
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(site.answers(), [500]);
    assert_eq!(world.webhook_posts().await.len(), 1);
    // The site stored the failing file, which the officer sees; staff got one email.
    let files = site.files(PREFIX);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["csv_valid"], false);
    assert_eq!(world.sent_emails().await.len(), 1);
    assert_eq!(site.pull_requests(), 0);
}

#[tokio::test]
async fn a_passing_report_answered_500_while_the_sites_row_is_missing_is_retried_until_stored() {
    let world = world().await;
    let site = world.answer_as_the_site(2).await;
    let key = valid_upload(&world).await;
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(site.answers(), [500, 500, 201]);
    assert_eq!(site.files(PREFIX).len(), 1);
    assert_eq!(site.github_issue(PREFIX), world.github.issues()[0].html_url);
    assert_eq!(site.pull_requests(), 1);
}

#[tokio::test]
async fn a_lone_democracy_counts_file_is_answered_201_by_the_site_and_a_500_is_retried() {
    let world = world().await;
    let site = world.answer_as_the_site(1).await;
    let key = world.upload_dc_districts(PREFIX).await;
    world.run_for(&[&key]).await.assert_code(0);
    // Its only error is the missing partner: upstream stores it and answers 201, so a 500
    // means the row was missing, and the post is tried again.
    assert_eq!(site.answers(), [500, 201]);
    assert_eq!(site.files(PREFIX)[0]["errors"], "Expected 2 files, found 1");
}

#[tokio::test]
async fn a_file_name_the_site_cannot_store_is_refused_and_its_report_still_reaches_the_site() {
    let world = world().await;
    let site = world.answer_as_the_site(0).await;
    // The prefix and its slash take 48 of the site's 255 characters: 207 are left.
    assert_eq!(PREFIX.len() + 1, 48);
    let name = format!("{}.csv", "Polling stations ".repeat(13).replace(' ', "_"));
    assert_eq!(name.len(), 225);
    let long = format!("{}{}.csv", "x".repeat(3), &name[..name.len() - 4]);
    assert_eq!(long.len(), 228);
    let key = world
        .upload(PREFIX, &long, &fixture("uploads/ems/xpress-dc.csv"))
        .await;
    let run = world.run_for(&[&key]).await;
    run.assert_code(0);

    // The officer is told the longest name this upload allows; the file is never copied.
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    let file = &posts[0].0["file_set"][0];
    let errors = file["errors"].as_str().unwrap();
    assert!(errors.contains("is 228 characters long"), "{errors}");
    assert!(errors.contains("at most 207 characters"), "{errors}");
    assert_eq!(file["csv_valid"], false);
    assert!(world.keys(&world.final_bucket).await.is_empty());
    // On the wire only, the key is cut to what the site stores, its start and end kept.
    let wire_key = file["key"].as_str().unwrap();
    assert_eq!(wire_key.chars().count(), 255);
    assert!(wire_key.starts_with(&format!("{PREFIX}/xxx")), "{wire_key}");
    assert!(
        wire_key.contains('…') && wire_key.ends_with("_.csv"),
        "{wire_key}"
    );
    // The site stored the row, so the upload shows the error instead of staying pending.
    assert_eq!(site.answers(), [500]);
    assert_eq!(site.files(PREFIX)[0]["key"], wire_key);
    // Staff's email names the full key.
    let emails = world.sent_emails().await;
    assert!(emails[0].text.contains(&key), "{}", emails[0].text);
}

#[tokio::test]
async fn a_run_stops_at_its_deadline_and_the_retry_does_what_is_left_once() {
    let mut world = world().await;
    // GitHub answers its issue search after 10 s; the run has 3.
    world.github.delay("ListIssues", Duration::from_secs(10));
    world.set("RUN_DEADLINE_SECONDS", "3");
    let key = valid_upload(&world).await;
    let started = std::time::Instant::now();
    let run = world.run_for(&[&key]).await;
    let took = started.elapsed();
    run.assert_code(1);
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    // The issue step was stopped, and no later step started: each says so, and is retryable.
    assert!(
        run.stdout
            .contains("stopped at the run's deadline before it finished"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("not attempted: the run's deadline passed before it could start"),
        "{}",
        run.stdout
    );
    assert!(world.webhook_posts().await.is_empty());

    // Lambda's retry, GitHub quick again: everything once.
    world.github.delay("ListIssues", Duration::ZERO);
    world.set("RUN_DEADLINE_SECONDS", "");
    world.run_for(&[&key]).await.assert_code(0);
    assert_eq!(world.github.issues().len(), 1);
    assert_eq!(world.webhook_posts().await.len(), 1);
    assert_eq!(
        world.webhook_posts().await[0].0["github_issue"],
        world.github.issues()[0].html_url
    );
    assert!(world.report_json(PREFIX).await.is_some());
}
