//! Load: many uploads through the whole pipeline at once, each a `run -` of the real binary (one
//! Lambda invocation) against the in-process fakes, 8 at a time. Every upload must get exactly
//! its effects — none lost, none doubled — and the run prints uploads per second, p50 and p99
//! latency (one invocation, from process start to exit) and the peak RSS of the program's
//! processes.
//!
//! `WDIV_LOAD_UPLOADS` (default 40 in `cargo test`; `scripts/load.sh` runs 200) and
//! `WDIV_LOAD_JOBS` (default 8).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wdiv_test_support::harness::{env_number, skipped_on_emulator, Lab};

use crate::S3Events;

const DATE: &str = "2024-05-02";
const TIMESTAMP: &str = "2024-04-01T10:11:12.123456";
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// One Xpress DC file: issue, copy, report, invalidation, webhook.
    Valid,
    /// One failing file: email, webhook.
    Invalid,
    /// A Democracy Counts pair, one event with both records: the valid effects for two files.
    Pair,
}

struct Upload {
    council: String,
    prefix: String,
    kind: Kind,
    keys: Vec<String>,
    event: Value,
}

/// Upload `i`: its own council (so its own issue title); 7 in 10 valid, 1.5 failing, 1.5 pairs.
fn kind_of(i: usize) -> Kind {
    match i % 20 {
        0..=13 => Kind::Valid,
        14..=16 => Kind::Invalid,
        _ => Kind::Pair,
    }
}

async fn stage(lab: &Lab, i: usize) -> Upload {
    let world = &lab.world;
    let council = format!("E{:08}", 7_000_000 + i);
    let prefix = format!("{council}/{DATE}/{TIMESTAMP}");
    let kind = kind_of(i);
    let keys = match kind {
        Kind::Valid => vec![world.upload_xpress(&prefix).await],
        Kind::Invalid => vec![world.upload_invalid(&prefix).await],
        Kind::Pair => {
            let (stations, districts) = world.upload_dc_pair(&prefix).await;
            vec![districts, stations]
        }
    };
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let event = world.event_for(&refs).await;
    Upload {
        council,
        prefix,
        kind,
        keys,
        event,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_eight_at_once_each_get_exactly_their_effects() {
    if skipped_on_emulator() {
        return;
    }
    let count = env_number("WDIV_LOAD_UPLOADS", 40) as usize;
    let jobs = env_number("WDIV_LOAD_JOBS", 8).max(1) as usize;
    let lab = Arc::new(Lab::new().await);
    let mut uploads = Vec::with_capacity(count);
    for i in 0..count {
        uploads.push(Arc::new(stage(&lab, i).await));
    }

    let permits = Arc::new(tokio::sync::Semaphore::new(jobs));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for upload in &uploads {
        let (lab, upload, permits) = (lab.clone(), upload.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let ended = lab.run(&upload.event, None, LIMIT).await;
            (upload, ended)
        });
    }
    let mut latencies = Vec::with_capacity(count);
    let mut peak_rss_kb = 0;
    let mut cpu = Duration::ZERO;
    while let Some(joined) = tasks.join_next().await {
        let (upload, ended) = joined.unwrap();
        assert_eq!(
            ended.code,
            Some(0),
            "{} ({:?}):\n{}",
            upload.prefix,
            upload.kind,
            ended.stderr()
        );
        latencies.push(ended.elapsed);
        cpu += ended.cpu;
        peak_rss_kb = peak_rss_kb.max(ended.max_rss_kb);
    }
    let wall = started.elapsed();
    latencies.sort();

    // Exactly its effects, for every upload.
    let world = &lab.world;
    let issues = world.github.issues();
    let emails = world.sent_emails().await;
    let invalidations = world.invalidations().await;
    let posts = lab.world.wdiv.posts();
    let finals = world.keys(&world.final_bucket).await;
    let mut problems = Vec::new();
    for upload in &uploads {
        let title = format!(
            "TEST Import {}-{} for {DATE}",
            upload.council,
            wdiv_test_support::COUNCIL_NAME
        );
        let valid = upload.kind != Kind::Invalid;
        let mine_issues: Vec<_> = issues.iter().filter(|i| i.title == title).collect();
        let mine_emails = emails
            .iter()
            .filter(|e| e.subject.contains(&format!("council {}-", upload.council)))
            .count();
        let mine_invalidations = invalidations
            .iter()
            .filter(|i| i.paths == [format!("/{}/*", upload.prefix)])
            .count();
        let mine_posts: Vec<_> = posts
            .iter()
            .filter(|p| p.body["gss"] == upload.council.as_str())
            .collect();
        let mut expected_finals: Vec<String> = Vec::new();
        if valid {
            expected_finals = upload.keys.clone();
            expected_finals.push(format!("{}/report.json", upload.prefix));
            expected_finals.sort();
        }
        let mine_finals: Vec<String> = finals
            .iter()
            .filter(|k| k.starts_with(&format!("{}/", upload.prefix)))
            .cloned()
            .collect();
        let found = (
            mine_issues.len(),
            mine_emails,
            mine_invalidations,
            mine_posts.len(),
        );
        let expected = (
            usize::from(valid),
            usize::from(!valid),
            usize::from(valid),
            1,
        );
        if found != expected || mine_finals != expected_finals {
            problems.push(format!(
                "{} ({:?}): (issues, emails, invalidations, webhooks) {found:?}, expected \
                 {expected:?}; final bucket {mine_finals:?}, expected {expected_finals:?}",
                upload.prefix, upload.kind
            ));
            continue;
        }
        if valid {
            let report = world.report_json(&upload.prefix).await.unwrap_or_default();
            let issue = &mine_issues[0];
            if report["github_issue"] != issue.html_url.as_str()
                || !issue.comments.is_empty()
                || mine_posts[0].body["file_set"] != report["file_set"]
            {
                problems.push(format!(
                    "{}: report.json, the issue and the webhook disagree: {report}",
                    upload.prefix
                ));
            }
        }
    }
    let total_issues: usize = uploads.iter().filter(|u| u.kind != Kind::Invalid).count();
    if issues.len() != total_issues || posts.len() != count {
        problems.push(format!(
            "{} issues and {} webhook posts in all, expected {total_issues} and {count}",
            issues.len(),
            posts.len()
        ));
    }
    let kinds: BTreeMap<Kind, usize> = uploads.iter().fold(BTreeMap::new(), |mut m, u| {
        *m.entry(u.kind).or_default() += 1;
        m
    });
    eprintln!(
        "load: {count} uploads ({kinds:?}), {jobs} at once: {:.1} s, {:.1} uploads/s, latency p50 \
         {} ms, p99 {} ms, max {} ms; CPU per run {} ms; peak RSS of a run {:.1} MB; effects: {} issues, {} emails, \
         {} invalidations, {} webhook posts, {} problems",
        wall.as_secs_f64(),
        count as f64 / wall.as_secs_f64(),
        percentile(&latencies, 50.0).as_millis(),
        percentile(&latencies, 99.0).as_millis(),
        latencies.last().copied().unwrap_or_default().as_millis(),
        (cpu / count.max(1) as u32).as_millis(),
        peak_rss_kb as f64 / 1024.0,
        issues.len(),
        emails.len(),
        invalidations.len(),
        posts.len(),
        problems.len(),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
