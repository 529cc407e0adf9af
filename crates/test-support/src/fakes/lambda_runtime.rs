//! In-process fake of the AWS Lambda Runtime API (version 2018-06-01), the HTTP API a custom
//! runtime such as the `lambda_runtime` crate polls for events and posts results to.
//!
//! Tests queue events with [`FakeLambdaRuntime::push_event`] / [`FakeLambdaRuntime::push_raw`],
//! point a runtime at [`FakeLambdaRuntime::address`] (via [`FakeLambdaRuntime::lambda_env`]),
//! and read the results back with [`FakeLambdaRuntime::wait_for_outcomes`].
//!
//! Like the real API, `GET /runtime/invocation/next` long-polls while the queue is empty. A caller
//! that gives up on such a poll leaves the server-side wait in place, and it may take the next
//! queued event, so do not abandon a poll and then expect a later one to see the next event.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::server::Server;

pub const FUNCTION_NAME: &str = "wdiv-s3-trigger";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-2:123456789012:function:wdiv-s3-trigger";

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The body posted to `/response`: parsed JSON, or `Value::String(raw)` if it is not JSON.
    Response(Value),
    /// The body posted to `/error`. `error_type` is the body's `errorType`, or failing that the
    /// `Lambda-Runtime-Function-Error-Type` header.
    Error {
        error_type: String,
        error_message: String,
        body: String,
    },
}

#[derive(Clone, Debug)]
pub struct Invocation {
    pub request_id: String,
    /// The queued event: parsed JSON, or `Value::String(raw)` for a raw body that is not JSON.
    pub event: Value,
    pub outcome: Option<Outcome>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Queued but not yet delivered: (request id, body).
    queue: VecDeque<(String, String)>,
    /// Every pushed invocation, in push order, with whether `/next` has delivered it.
    invocations: Vec<(Invocation, bool)>,
    init_errors: Vec<String>,
    violations: Vec<String>,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes long-polling `/next` requests when an event is queued.
    queued: Notify,
    /// Wakes `wait_for_outcomes` when an outcome is recorded.
    outcome: Condvar,
}

/// The outcome of the invocation `request_id` among `invocations`, or a panic naming them all.
pub fn outcome(invocations: &[Invocation], request_id: &str) -> Outcome {
    invocations
        .iter()
        .find(|i| i.request_id == request_id)
        .and_then(|i| i.outcome.clone())
        .unwrap_or_else(|| panic!("no outcome for {request_id}: {invocations:?}"))
}

pub struct FakeLambdaRuntime {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeLambdaRuntime {
    /// Starts on 127.0.0.1:0 on its own thread with its own tokio runtime; stops when dropped.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        // Dropping the server stops it without waiting for open long polls, which would never
        // finish on their own.
        let server = Server::start_multi_thread("fake-lambda-runtime", 2, app);
        FakeLambdaRuntime { server, shared }
    }

    /// "127.0.0.1:PORT", the value for `AWS_LAMBDA_RUNTIME_API` (no scheme).
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues an event; returns its request id.
    pub fn push_event(&self, event: Value) -> String {
        self.push(event.to_string(), event)
    }

    /// Queues a raw body that need not be JSON; returns its request id.
    pub fn push_raw(&self, body: &str) -> String {
        let event = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
        self.push(body.to_string(), event)
    }

    fn push(&self, body: String, event: Value) -> String {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.next_id += 1;
        let request_id = format!("req-{}", inner.next_id);
        inner.queue.push_back((request_id.clone(), body));
        let invocation = Invocation {
            request_id: request_id.clone(),
            event,
            outcome: None,
        };
        inner.invocations.push((invocation, false));
        drop(inner);
        self.shared.queued.notify_waiters();
        request_id
    }

    /// Blocks until `n` invocations have an outcome or `timeout` passes; returns all invocations
    /// so far, in push order. Call it from a test thread (or `spawn_blocking`), never async code.
    pub fn wait_for_outcomes(&self, n: usize, timeout: Duration) -> Vec<Invocation> {
        let inner = self.shared.inner.lock().unwrap();
        let (inner, _) = self
            .shared
            .outcome
            .wait_timeout_while(inner, timeout, |i| {
                i.invocations
                    .iter()
                    .filter(|(inv, _)| inv.outcome.is_some())
                    .count()
                    < n
            })
            .unwrap();
        inner
            .invocations
            .iter()
            .map(|(inv, _)| inv.clone())
            .collect()
    }

    /// [`FakeLambdaRuntime::wait_for_outcomes`] from a multi-thread tokio test, whose worker
    /// it blocks in place.
    pub fn wait_in_place(&self, n: usize, timeout: Duration) -> Vec<Invocation> {
        tokio::task::block_in_place(|| self.wait_for_outcomes(n, timeout))
    }

    /// Bodies posted to `/runtime/init/error`.
    pub fn init_errors(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().init_errors.clone()
    }

    /// Results posted for unknown, undelivered or already answered request ids.
    pub fn protocol_violations(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().violations.clone()
    }

    /// Env vars a process needs to run as a Lambda against this fake. `lambda_runtime` 1.x
    /// requires AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION and
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (an i32); the log names default to "" and AWS_REGION is
    /// for the AWS SDK.
    pub fn lambda_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2024/01/01/[$LATEST]0123456789abcdef".into(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{FUNCTION_NAME}"),
            ),
            ("AWS_REGION", "eu-west-2".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// `GET /runtime/invocation/next`: the next queued event, waiting for one if there is none.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let (request_id, body) = loop {
        // Created before the check, so a push between the check and the await still wakes us.
        let queued = shared.queued.notified();
        let popped = {
            let mut inner = shared.inner.lock().unwrap();
            let popped = inner.queue.pop_front();
            if let Some((id, _)) = &popped {
                let slot = inner
                    .invocations
                    .iter_mut()
                    .find(|(inv, _)| &inv.request_id == id);
                slot.expect("queued invocation is recorded").1 = true;
            }
            popped
        };
        match popped {
            Some(found) => break found,
            None => queued.await,
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let deadline_ms = now.as_millis() + 30_000;
    let n: u64 = request_id.trim_start_matches("req-").parse().unwrap_or(0);
    let trace_id = format!(
        "Root=1-{:08x}-{n:024x};Parent={n:016x};Sampled=0",
        now.as_secs()
    );
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", request_id),
        ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            FUNCTION_ARN.to_string(),
        ),
        ("Lambda-Runtime-Trace-Id", trace_id),
        ("Content-Type", "application/json".to_string()),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// `POST /runtime/invocation/{id}/response`.
async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let value = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
    record(&shared, &id, "response", Outcome::Response(value))
}

/// `POST /runtime/invocation/{id}/error`.
async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_string);
    let header = headers
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let error_type = field("errorType").or(header).unwrap_or_default();
    let error_message = field("errorMessage").unwrap_or_default();
    record(
        &shared,
        &id,
        "error",
        Outcome::Error {
            error_type,
            error_message,
            body,
        },
    )
}

/// `POST /runtime/init/error`.
async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    shared.inner.lock().unwrap().init_errors.push(body);
    accepted()
}

/// Records `outcome` for `id`, or a protocol violation (400) if `id` may not take one now.
fn record(shared: &Shared, id: &str, kind: &str, outcome: Outcome) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let slot = inner
        .invocations
        .iter_mut()
        .find(|(inv, _)| inv.request_id == id);
    let problem = match slot {
        None => "unknown request id",
        Some((_, false)) => "request id not delivered yet",
        Some((inv, true)) if inv.outcome.is_some() => "request id already has an outcome",
        Some((inv, true)) => {
            inv.outcome = Some(outcome);
            drop(inner);
            shared.outcome.notify_all();
            return accepted();
        }
    };
    inner.violations.push(format!("{kind} for {id}: {problem}"));
    let body = json!({"errorMessage": format!("Invalid request ID: {problem}"), "errorType": "InvalidRequestID"});
    (
        StatusCode::BAD_REQUEST,
        [("Content-Type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("Content-Type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}
