//! The function's role, proved on an emulator that enforces IAM: moto's server, with the S3
//! statements of `deploy/template.yaml`'s role policy.
//!
//! Each scenario makes an IAM user whose only policy is the role's policy, rendered for the
//! scenario's buckets, and runs the binary with that user's keys. The pipeline's scenarios — a
//! valid upload, an invalid one, a redelivered event, a Democracy Counts pair — all pass with it.
//! Then, for each S3 statement, the policy without it makes some scenario fail: each is needed.
//!
//! moto checks IAM only once its `INITIAL_NO_AUTH_ACTION_COUNT` is spent; `POST
//! /moto-api/reset-auth` sets it (moto's own server-mode switch). Buckets, uploads and IAM
//! users are set up, and results read back, with enforcement off; it is on only while the binary
//! runs. So the scenarios run one at a time, and need a moto server of their own for the
//! while: `.ci/run` runs this test after the other moto tests, with
//! `WDIV_TEST_S3_ENDPOINT=<moto> WDIV_TEST_IAM_ENFORCEMENT=1`. Without both it is skipped.
//!
//! moto authorises SES and CloudFront against the resource `*` only, so those two effects are
//! off here (their statements are absent, as the template makes them without their settings);
//! `tests/deploy_template.rs` checks their ARNs.

use std::io::{Read, Write};

use serde_json::Value;
use wdiv_test_support::template::{actions, sid, statements, Template};
use wdiv_test_support::{fixture, Run, World, GITHUB_REPO};

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";

/// S3 statements that no scenario on moto can show needed, and why. Each is checked to be
/// still unprovable, so this list cannot go stale unnoticed.
const NEEDED_ONLY_ON_AWS: &[(&str, &str)] = &[(
    "ListFinalBucket",
    "without s3:ListBucket, S3 answers 403 rather than 404 to a GetObject or HeadObject of a \
     key that does not exist (a report.json not yet written); moto answers 404 either way. \
     The comparison with the last import lists the final bucket too, but a failure to look is \
     only a logged note, never a failed upload, so no scenario can show it",
)];

/// One scenario at a time: IAM enforcement is switched for the whole server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn moto_endpoint() -> Option<String> {
    let enforced = std::env::var("WDIV_TEST_IAM_ENFORCEMENT").is_ok_and(|v| v == "1");
    let endpoint = std::env::var("WDIV_TEST_S3_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    match (enforced, endpoint) {
        (true, Some(url)) => Some(url),
        _ => {
            eprintln!(
                "skipped: the IAM-enforced scenarios need moto's server \
                 (WDIV_TEST_S3_ENDPOINT=<moto> WDIV_TEST_IAM_ENFORCEMENT=1; .ci/run does this)"
            );
            None
        }
    }
}

/// `POST /moto-api/reset-auth`: enforcement after `count` more requests ("0": at once;
/// "inf": never). Blocking, so that it can run in `Drop`.
fn reset_auth(endpoint: &str, count: &str) {
    let addr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr)
        .unwrap_or_else(|e| panic!("connect to moto at {addr}: {e}"));
    write!(
        stream,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{count}",
        count.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "moto's reset-auth answered: {answer}"
    );
}

/// IAM enforcement on while it lives.
struct Enforced<'a>(&'a str);

impl<'a> Enforced<'a> {
    fn on(endpoint: &'a str) -> Enforced<'a> {
        reset_auth(endpoint, "0");
        Enforced(endpoint)
    }
}

impl Drop for Enforced<'_> {
    fn drop(&mut self) {
        reset_auth(self.0, "inf");
    }
}

/// An IAM Query API call to moto (enforcement off, so the signature is not checked; the
/// credential scope tells moto's server which service it is for).
async fn iam(endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut form = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let answer = reqwest::Client::new()
        .post(endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("IAM {params:?}: {e}"));
    let status = answer.status();
    let body = answer.text().await.unwrap();
    assert!(status.is_success(), "IAM {:?}: {status}\n{body}", params[0]);
    body
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("{tag} in {xml}")) + open.len();
    let end = xml[start..].find('<').unwrap() + start;
    &xml[start..end]
}

/// The role's policy for this world's buckets, with SES and CloudFront off and no secret read
/// from SSM (the settings come from the world).
fn role_policy(world: &World) -> Value {
    Template::load()
        .with(&[
            ("TempBucketName", &world.temp),
            ("FinalBucketName", &world.final_bucket),
            ("CloudFrontDistributionId", ""),
            ("ErrorReportEmailParameter", ""),
            ("SuccessReportEmail", ""),
            ("GitHubApiKeyParameter", ""),
            ("SentryDsnParameter", ""),
        ])
        .role_policy()
}

fn without(policy: &Value, removed: &str) -> Value {
    let mut p = policy.clone();
    let kept: Vec<Value> = statements(policy)
        .into_iter()
        .filter(|s| sid(s) != removed)
        .collect();
    assert_ne!(
        kept.len(),
        statements(policy).len(),
        "no statement {removed}"
    );
    p["Statement"] = Value::Array(kept);
    p
}

fn s3_statements(policy: &Value) -> Vec<String> {
    statements(policy)
        .iter()
        .filter(|s| actions(s).iter().any(|a| a.starts_with("s3:")))
        .map(|s| sid(s).to_owned())
        .collect()
}

/// A world whose binary runs as an IAM user with exactly `policy`.
async fn world_as(endpoint: &str, policy: impl Fn(&World) -> Value) -> World {
    let mut world = World::new().await;
    let user = format!("wdiv-fn-{}", world.temp);
    iam(endpoint, &[("Action", "CreateUser"), ("UserName", &user)]).await;
    let document = policy(&world).to_string();
    iam(
        endpoint,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", &user),
            ("PolicyName", "wdiv-s3-trigger"),
            ("PolicyDocument", &document),
        ],
    )
    .await;
    let key = iam(
        endpoint,
        &[("Action", "CreateAccessKey"), ("UserName", &user)],
    )
    .await;
    world.set("AWS_ACCESS_KEY_ID", xml_field(&key, "AccessKeyId"));
    world.set("AWS_SECRET_ACCESS_KEY", xml_field(&key, "SecretAccessKey"));
    // The effects that are not AWS's: GitHub and the webhook (fakes). Sentry off: a failure
    // is the point of half of these runs.
    world.set("GITHUB_API_URL", &world.github.url());
    world.set("GITHUB_REPO", GITHUB_REPO);
    world.set("SENTRY_DSN", "");
    world.set("LEASE_SECONDS", "4");
    world
}

/// The binary, for the event S3 sends for `keys`, with IAM enforced.
async fn run_enforced(endpoint: &str, world: &World, keys: &[&str]) -> Run {
    let event = world
        .event_with(keys, wdiv_s3_trigger::object_created)
        .await;
    let _on = Enforced::on(endpoint);
    world.run_event(&event, &[]).await
}

type Outcome = Result<(), String>;

fn check(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// Exit 0, or why not: the line that says access was denied, if one does.
fn exit_0(run: &Run) -> Outcome {
    check(run.code == 0, || {
        let all = run.all();
        match all.lines().find(|l| l.contains(DENIED)) {
            Some(line) => format!("exit {}: {}", run.code, line.trim()),
            None => format!(
                "exit {}\n--- stdout\n{}\n--- stderr\n{}",
                run.code, run.stdout, run.stderr
            ),
        }
    })
}

/// How the program says S3 refused it (`StorageError::AccessDenied`).
const DENIED: &str = "was denied";

async fn valid_upload(endpoint: &str, world: &World) -> Outcome {
    let key = world.upload_xpress(PREFIX).await;
    exit_0(&run_enforced(endpoint, world, &[&key]).await)?;
    let copied = world.get(&world.final_bucket, &key).await;
    check(copied == Some(fixture("uploads/ems/xpress-dc.csv")), || {
        "the file is not in the final bucket".into()
    })?;
    let report = world.report_json(PREFIX).await.ok_or("no report.json")?;
    check(report["file_set"][0]["csv_valid"] == true, || {
        format!("report.json: {report}")
    })?;
    check(world.github.issues().len() == 1, || "no issue".into())?;
    check(world.webhook_posts().await.len() == 1, || {
        "no webhook".into()
    })
}

async fn invalid_upload(endpoint: &str, world: &World) -> Outcome {
    let key = world.upload_invalid(PREFIX).await;
    exit_0(&run_enforced(endpoint, world, &[&key]).await)?;
    let published = world.keys(&world.final_bucket).await;
    check(published.is_empty(), || format!("published: {published:?}"))?;
    let posts = world.webhook_posts().await;
    check(
        posts.len() == 1 && posts[0].0["file_set"][0]["csv_valid"] == false,
        || format!("webhook posts: {posts:?}"),
    )
}

async fn redelivery(endpoint: &str, world: &World) -> Outcome {
    let key = world.upload_xpress(PREFIX).await;
    for _ in 0..3 {
        exit_0(&run_enforced(endpoint, world, &[&key]).await)?;
    }
    let published = world.keys(&world.final_bucket).await;
    check(
        published == [format!("{PREFIX}/report.json"), key.clone()],
        || format!("published: {published:?}"),
    )?;
    let issues = world.github.issues().len();
    let posts = world.webhook_posts().await.len();
    check(issues == 1 && posts == 1, || {
        format!("{issues} issues and {posts} webhook posts for one upload delivered 3 times")
    })
}

async fn democracy_counts_pair(endpoint: &str, world: &World) -> Outcome {
    let (stations, districts) = world.upload_dc_pair(PREFIX).await;
    exit_0(&run_enforced(endpoint, world, &[&stations]).await)?;
    exit_0(&run_enforced(endpoint, world, &[&districts]).await)?;
    let report = world.report_json(PREFIX).await.ok_or("no report.json")?;
    let files = report["file_set"].as_array().map_or(0, Vec::len);
    check(files == 2, || format!("report.json: {report}"))?;
    for key in [&stations, &districts] {
        check(world.get(&world.final_bucket, key).await.is_some(), || {
            format!("{key} is not in the final bucket")
        })?;
    }
    Ok(())
}

const SCENARIOS: &[&str] = &[
    "a valid upload",
    "an invalid upload",
    "a redelivered event",
    "a Democracy Counts pair",
];

/// Runs the scenarios, each in a world of its own whose binary has `policy`; stops at the
/// first that fails, and says which and why.
async fn scenarios(endpoint: &str, policy: impl Fn(&World) -> Value + Copy) -> Outcome {
    for name in SCENARIOS {
        let world = world_as(endpoint, policy).await;
        let outcome = match *name {
            "a valid upload" => valid_upload(endpoint, &world).await,
            "an invalid upload" => invalid_upload(endpoint, &world).await,
            "a redelivered event" => redelivery(endpoint, &world).await,
            _ => democracy_counts_pair(endpoint, &world).await,
        };
        outcome.map_err(|why| format!("{name}: {why}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn the_role_policy_is_enough_for_every_scenario() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    // Enforcement is real: the test's own keys, unknown to IAM, are refused while it is on.
    let world = World::new().await;
    {
        let _on = Enforced::on(&endpoint);
        let refused = world
            .client
            .list_objects_v2()
            .bucket(&world.temp)
            .send()
            .await;
        assert!(refused.is_err(), "moto let an unknown key list a bucket");
    }
    if let Err(why) = scenarios(&endpoint, role_policy).await {
        panic!("with exactly the role's policy, {why}");
    }
}

#[tokio::test]
async fn each_s3_statement_is_needed_by_some_scenario() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let world = World::new().await;
    let sids = s3_statements(&role_policy(&world));
    assert!(sids.len() >= 4, "S3 statements: {sids:?}");
    for (only_on_aws, _) in NEEDED_ONLY_ON_AWS {
        assert!(
            sids.iter().any(|s| s == only_on_aws),
            "no statement {only_on_aws}"
        );
    }
    for removed in &sids {
        let outcome = scenarios(&endpoint, |w: &World| without(&role_policy(w), removed)).await;
        match NEEDED_ONLY_ON_AWS.iter().find(|(s, _)| s == removed) {
            None => {
                let why = outcome.expect_err(&format!(
                    "every scenario passed without {removed}: it is not needed, or a scenario \
                     is missing"
                ));
                // Refused by IAM, not failing for another reason.
                assert!(why.contains(DENIED), "without {removed}: {why}");
                eprintln!("without {removed}: {why}");
            }
            Some((_, reason)) => assert!(
                outcome.is_ok(),
                "without {removed}, a scenario now fails on moto: take it off NEEDED_ONLY_ON_AWS \
                 ({reason})\n{outcome:?}"
            ),
        }
    }
}
