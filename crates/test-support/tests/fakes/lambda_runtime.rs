//! Self-test of the fake Lambda Runtime API in `src/fakes/lambda_runtime.rs`: first the HTTP
//! contract with a plain HTTP client, then the real `lambda_runtime` crate as the client.
//!
//! The `lambda_runtime` crate reads its Runtime API from the process environment, so
//! `real_lambda_runtime_client` runs it in a child process (this test binary again, with that
//! environment), never in the process the other tests share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wdiv_test_support::fakes::lambda_runtime::{
    FakeLambdaRuntime, Invocation, Outcome, FUNCTION_ARN,
};

/// `wait_for_outcomes` blocks, so async tests run it on the blocking pool.
async fn wait(fake: &Arc<FakeLambdaRuntime>, n: usize) -> Vec<Invocation> {
    let fake = fake.clone();
    tokio::task::spawn_blocking(move || fake.wait_for_outcomes(n, Duration::from_secs(10)))
        .await
        .unwrap()
}

#[tokio::test]
async fn runtime_api_protocol() {
    let fake = Arc::new(FakeLambdaRuntime::start());
    let base = format!("http://{}/2018-06-01/runtime", fake.address());
    let http = reqwest::Client::new();

    let first = fake.push_event(json!({"n": 1}));
    let second = fake.push_raw("{\"n\": 2}");
    assert_ne!(first, second);

    let mut ids = Vec::new();
    for expected in [json!({"n": 1}), json!({"n": 2})] {
        let resp = http
            .get(format!("{base}/invocation/next"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        let header = |name: &str| h.get(name).unwrap().to_str().unwrap().to_string();
        ids.push(header("lambda-runtime-aws-request-id"));
        assert_eq!(header("lambda-runtime-invoked-function-arn"), FUNCTION_ARN);
        assert_eq!(header("content-type"), "application/json");
        assert!(header("lambda-runtime-trace-id").starts_with("Root=1-"));
        let deadline: u128 = header("lambda-runtime-deadline-ms").parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(deadline > now.as_millis() + 25_000 && deadline <= now.as_millis() + 30_000);
        assert_eq!(resp.json::<Value>().await.unwrap(), expected);
    }
    assert_eq!(ids, [first.clone(), second.clone()]);

    let ok = http
        .post(format!("{base}/invocation/{first}/response"))
        .body(r#"{"result": "fine"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"status": "OK"}));
    let err = http
        .post(format!("{base}/invocation/{second}/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Unhandled")
        .body(r#"{"errorType": "Boom", "errorMessage": "it broke", "stackTrace": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(err.status(), 202);

    let invocations = wait(&fake, 2).await;
    assert_eq!(invocations.len(), 2);
    assert_eq!(invocations[0].request_id, first);
    assert_eq!(invocations[0].event, json!({"n": 1}));
    assert_eq!(
        invocations[0].outcome,
        Some(Outcome::Response(json!({"result": "fine"})))
    );
    match &invocations[1].outcome {
        Some(Outcome::Error {
            error_type,
            error_message,
            body,
        }) => {
            assert_eq!(error_type, "Boom");
            assert_eq!(error_message, "it broke");
            assert!(body.contains("stackTrace"));
        }
        other => panic!("expected an error outcome, got {other:?}"),
    }

    // Empty queue: /next long-polls.
    let poll = http.get(format!("{base}/invocation/next")).send();
    assert!(tokio::time::timeout(Duration::from_millis(300), poll)
        .await
        .is_err());

    // Unknown and repeated request ids are protocol violations.
    let unknown = http
        .post(format!("{base}/invocation/req-999/response"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errorType"], "InvalidRequestID");
    let again = http
        .post(format!("{base}/invocation/{first}/response"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let violations = fake.protocol_violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("req-999"), "{violations:?}");

    let init = http
        .post(format!("{base}/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .body(r#"{"errorType": "Init", "errorMessage": "no config"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 202);
    assert_eq!(fake.init_errors().len(), 1);
    assert!(fake.init_errors()[0].contains("no config"));
}

#[test]
fn works_from_a_plain_thread_and_times_out() {
    let fake = FakeLambdaRuntime::start();
    let id = fake.push_event(json!({"pending": true}));
    let started = Instant::now();
    let invocations = fake.wait_for_outcomes(1, Duration::from_millis(200));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].request_id, id);
    assert!(invocations[0].outcome.is_none());
    let env = fake.lambda_env();
    let runtime_api = env
        .iter()
        .find(|(k, _)| k == "AWS_LAMBDA_RUNTIME_API")
        .unwrap();
    assert_eq!(runtime_api.1, fake.address());
}

async fn handler(
    event: ::lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, ::lambda_runtime::Error> {
    if event.payload["ok"] == json!(true) {
        Ok(json!({"echo": event.payload}))
    } else {
        Err(format!("handler refused event {}", event.payload).into())
    }
}

/// Set (to anything) in the child that [`real_lambda_runtime_client`] starts.
const CHILD: &str = "WDIV_TEST_LAMBDA_RUNTIME_CLIENT";

#[tokio::test]
async fn real_lambda_runtime_client() {
    if std::env::var_os(CHILD).is_some() {
        // The child: the real client against the parent's fake, until the parent kills it.
        let _ = ::lambda_runtime::run(::lambda_runtime::service_fn(handler)).await;
        return;
    }
    let fake = Arc::new(FakeLambdaRuntime::start());
    let ok = fake.push_event(json!({"ok": true, "n": 1}));
    let bad = fake.push_event(json!({"ok": false}));
    let malformed = fake.push_raw("{not json");
    // This test, alone, in a child with the Lambda environment.
    let name = module_path!().split_once("::").map_or("", |(_, m)| m);
    let _lambda = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([&format!("{name}::real_lambda_runtime_client"), "--exact"])
        .envs(fake.lambda_env())
        .env(CHILD, "1")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let invocations = wait(&fake, 3).await;
    let outcome = |id: &str| {
        let inv = invocations.iter().find(|i| i.request_id == id).unwrap();
        inv.outcome
            .clone()
            .unwrap_or_else(|| panic!("no outcome for {id}: {invocations:?}"))
    };
    assert_eq!(
        outcome(&ok),
        Outcome::Response(json!({"echo": {"ok": true, "n": 1}}))
    );
    match outcome(&bad) {
        Outcome::Error { error_message, .. } => {
            assert!(
                error_message.contains("handler refused event"),
                "{error_message}"
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(outcome(&malformed), Outcome::Error { .. }));
    assert!(fake.protocol_violations().is_empty());
    assert!(fake.init_errors().is_empty());
}
