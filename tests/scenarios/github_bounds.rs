//! What GitHub (or whatever answers at `GITHUB_API_URL`) sends back is bounded, and what the
//! program sends it cannot render as code, references, mentions or links. Each scenario runs the
//! real binary against the GitHub fake (crates/test-support/src/fakes/github.rs, its `Fault`s
//! standing for a broken or hostile server) and the other loopback fakes, and measures the
//! child's peak memory and time as the harness (crates/test-support/src/harness.rs) does.

use std::time::Duration;

use serde_json::Value;
use wdiv_test_support::fakes::github::Fault;
use wdiv_test_support::harness::{Ended, Lab};
use wdiv_test_support::World;

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
/// The peak resident memory a whole run may use, whatever GitHub answers.
const MAX_PEAK_RSS_KB: u64 = 64 * 1024;
/// A body far over any bound (and over the 128 MB function's memory).
const HUGE: u64 = 300_000_000;
/// src/github.rs `MAX_PAGES` and `DEADLINE`.
const MAX_PAGES: usize = 10;
const DEADLINE: Duration = Duration::from_secs(30);

/// A lab (every effect on, the binary's peak memory measured) with a valid upload; its event.
async fn lab() -> (Lab, Value) {
    let lab = Lab::new().await;
    let key = lab.world.upload_xpress(PREFIX).await;
    let event = lab.world.event_for(&[&key]).await;
    (lab, event)
}

fn list_requests(lab: &Lab) -> usize {
    let requests = lab.world.github.requests();
    requests.iter().filter(|r| r.op == "ListIssues").count()
}

/// The issue step failed, of `kind`, for a reason that contains `why`; no issue was opened.
#[track_caller]
fn issue_step_failed(lab: &Lab, ended: &Ended, kind: &str, why: &str) {
    let log = ended.stderr();
    assert_eq!(ended.code, Some(1), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("action=\"open issue\"") && l.contains("failed"))
        .unwrap_or_else(|| panic!("no failed issue step in the log:\n{log}"));
    eprintln!("{line}");
    assert!(line.contains(&format!("kind={kind}")), "{line}");
    assert!(line.contains(why), "{line}");
    assert!(line.len() < 2048, "a short line: {} bytes", line.len());
    assert!(lab.world.github.issues().is_empty(), "no issue opened");
}

#[tokio::test]
async fn a_300_mb_list_answer_is_not_read_and_memory_stays_flat() {
    let (lab, event) = lab().await;
    lab.world.github.fault(
        "ListIssues",
        Fault::Huge {
            status: 200,
            bytes: HUGE,
        },
    );
    let ended = lab.run(&event, None, Duration::from_secs(120)).await;
    eprintln!(
        "GitHub 200 of {HUGE} bytes: peak RSS {} KB, {:.1} s",
        ended.max_rss_kb,
        ended.elapsed.as_secs_f64()
    );
    assert!(
        ended.max_rss_kb < MAX_PEAK_RSS_KB,
        "peak RSS {} KB",
        ended.max_rss_kb
    );
    // Transient: the list may be readable later, and whether the issue exists is unknown, so it
    // is neither "none" (a second issue) nor given up for good. Not retried at once.
    issue_step_failed(&lab, &ended, "Transient", "larger than 4194304 bytes");
    assert_eq!(list_requests(&lab), 1);
}

#[tokio::test]
async fn a_300_mb_error_answer_is_read_to_a_few_kb() {
    let (lab, event) = lab().await;
    lab.world.github.fault(
        "ListIssues",
        Fault::Huge {
            status: 404,
            bytes: HUGE,
        },
    );
    let ended = lab.run(&event, None, Duration::from_secs(120)).await;
    eprintln!(
        "GitHub 404 of {HUGE} bytes: peak RSS {} KB, {:.1} s",
        ended.max_rss_kb,
        ended.elapsed.as_secs_f64()
    );
    assert!(
        ended.max_rss_kb < MAX_PEAK_RSS_KB,
        "peak RSS {} KB",
        ended.max_rss_kb
    );
    // A 404 stays what it is (permanent: the repository or token is wrong); its body is not read.
    issue_step_failed(&lab, &ended, "Permanent", "HTTP 404");
}

#[tokio::test]
async fn an_endless_next_link_stops_at_the_page_cap_and_opens_no_issue() {
    let (lab, event) = lab().await;
    lab.world.github.fault("ListIssues", Fault::EndlessPages);
    let ended = lab.run(&event, None, Duration::from_secs(60)).await;
    eprintln!(
        "endless Link: next: {} list requests, {:.1} s",
        list_requests(&lab),
        ended.elapsed.as_secs_f64()
    );
    // Not "no such issue" (that would open a second one): a failure a later run retries.
    issue_step_failed(&lab, &ended, "Transient", "more than 10 pages");
    assert_eq!(list_requests(&lab), MAX_PAGES);
    let creates = lab.world.github.requests();
    assert!(!creates.iter().any(|r| r.op == "CreateIssue"));
}

#[tokio::test]
async fn an_answer_that_drips_ends_at_the_deadline() {
    let (lab, event) = lab().await;
    lab.world.github.fault(
        "ListIssues",
        Fault::Drip {
            every: Duration::from_secs(5),
        },
    );
    let ended = lab.run(&event, None, Duration::from_secs(150)).await;
    eprintln!(
        "GitHub 200 dripping a byte every 5 s: the run took {:.1} s",
        ended.elapsed.as_secs_f64()
    );
    issue_step_failed(&lab, &ended, "Transient", "did not finish within 30 s");
    assert!(ended.elapsed >= DEADLINE, "{:?}", ended.elapsed);
    assert!(
        ended.elapsed < DEADLINE + Duration::from_secs(10),
        "{:?}",
        ended.elapsed
    );
}

/// A world whose WDIV fake calls every council `name`.
async fn world_named(name: &str) -> World {
    let world = World::with_effects().await;
    world.wdiv.set_council_name(name);
    world
}

#[tokio::test]
async fn the_council_name_reaches_the_title_neutralised() {
    let name = "Tendring [click here](https://evil.example/x) @octocat `x` #1";
    let world = world_named(name).await;
    let key = world.upload_xpress(PREFIX).await;
    world.run_for(&[&key]).await.assert_code(0);
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].title,
        "TEST Import E07000223-Tendring [click here] (https://evil.example/x) ＠octocat 'x' \
         No.1 for 2024-05-02"
    );
}

#[tokio::test]
async fn an_issue_opened_before_the_title_was_neutralised_still_gets_the_update() {
    let name = "Tendring `x` #1";
    let world = world_named(name).await;
    let earlier = world.github.seed_issue(
        &format!("TEST Import E07000223-{name} for 2024-05-02"),
        "EMS: Xpress DC\nFiles:\n- `E07000223/2024-05-02/2024-03-01T09:00:00.000000/s.csv`\n",
        &["Data Import", "ready"],
        "open",
    );
    let key = world.upload_xpress(PREFIX).await;
    world.run_for(&[&key]).await.assert_code(0);
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1, "no second issue: {issues:?}");
    let comments = &world.github.issue(earlier).unwrap().comments;
    assert_eq!(comments.len(), 1);
    assert!(comments[0].starts_with("Updated"), "{comments:?}");
}
