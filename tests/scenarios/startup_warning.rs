//! A production function with an effect turned off says so when it starts: the binary, started
//! as Lambda starts it, logs one warning per effect that staff or councils rely on (the GitHub
//! issue, the webhook to WDIV, the failure email) and that its settings leave off, naming the
//! settings missing. A deploy that forgot a parameter shows in the first log lines rather than
//! in a council's silence. Other environments start without it.

use std::time::Duration;

use serde_json::Value;
use wdiv_test_support::fakes::lambda_runtime::FakeLambdaRuntime;
use wdiv_test_support::World;

use crate::S3Events;

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
const WARNING: &str = "SERVER_ENVIRONMENT is production";

/// The warnings about production the function logs from start-up to its first invocation's answer.
/// The run is a dry run: only start-up is looked at, and no effect is attempted.
async fn startup_warnings(world: &mut World) -> Vec<String> {
    world.set("DRY_RUN", "true");
    let key = world.upload_idox(PREFIX).await;
    let runtime = FakeLambdaRuntime::start();
    runtime.push_event(world.event_for(&[&key]).await);
    let mut child = world.start_lambda(&runtime);
    let answered = runtime.wait_in_place(1, Duration::from_secs(30));
    assert_eq!(
        answered.len(),
        1,
        "the function did not answer: {answered:?}"
    );
    assert!(runtime.init_errors().is_empty());
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|l| l.to_string().contains(WARNING))
        .map(|l| {
            assert_eq!(l["level"], "WARN", "{l}");
            l["fields"]["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_github_or_the_failure_email_warns_at_start_up_naming_them() {
    // The test world has the webhook (URL and key) and GITHUB_API_KEY, but no GITHUB_REPO and
    // no ERROR_REPORT_EMAIL.
    let mut world = World::new().await;
    world.set("SERVER_ENVIRONMENT", "production");
    let warnings = startup_warnings(&mut world).await;
    assert_eq!(
        warnings,
        [
            "SERVER_ENVIRONMENT is production, but the GitHub issue is off: GITHUB_REPO is not set",
            "SERVER_ENVIRONMENT is production, but the failure email is off: ERROR_REPORT_EMAIL \
             is not set",
        ]
    );

    // The webhook off too, by both its settings.
    let mut world = World::new().await;
    world.set("SERVER_ENVIRONMENT", "production");
    world.set("GITHUB_REPO", wdiv_test_support::GITHUB_REPO);
    world.set("ERROR_REPORT_EMAIL", "staff@example.org");
    world.set("WDIV_WEBHOOK_URL", "");
    world.set("WDIV_API_KEY", "");
    let warnings = startup_warnings(&mut world).await;
    assert_eq!(
        warnings,
        [
            "SERVER_ENVIRONMENT is production, but the webhook to WDIV is off: WDIV_WEBHOOK_URL \
             and WDIV_API_KEY are not set"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_starts_without_the_warning() {
    let mut world = World::new().await;
    world.set("SERVER_ENVIRONMENT", "staging");
    assert!(startup_warnings(&mut world).await.is_empty());
}
