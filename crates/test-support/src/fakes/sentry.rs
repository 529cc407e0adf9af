//! A fake Sentry ingestion endpoint for tests.
//!
//! The `sentry` crate's HTTP transports `POST` each envelope to `/api/{project_id}/envelope/`
//! with an `X-Sentry-Auth` header and an uncompressed body: one JSON header line, then per
//! item a JSON header line (`{"type":"event","length":N}`) and the payload. This server records
//! every envelope, splits it into items, and exposes the parsed events.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::server::{read_whole, Server};

/// The public key in `dsn()`; envelopes must carry it (`X-Sentry-Auth` or `?sentry_key=`).
pub const PUBLIC_KEY: &str = "publickey";
/// The project id in `dsn()`.
pub const PROJECT_ID: &str = "42";
const ENVELOPE_ROUTE: &str = "POST /api/{project_id}/envelope/";

/// A running fake Sentry server. Stops when dropped.
pub struct FakeSentry {
    server: Server,
    shared: Arc<Mutex<State>>,
}

/// One accepted envelope.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub project_id: String,
    /// The `X-Sentry-Auth` header, if sent.
    pub auth: Option<String>,
    /// The envelope header line (`event_id`, `sent_at`, `dsn`, `sdk`, ...).
    pub headers: Value,
    pub items: Vec<Item>,
}

/// One envelope item.
#[derive(Clone, Debug)]
pub struct Item {
    /// The item header's `type`: "event", "transaction", "session", "attachment", ...
    pub ty: String,
    pub headers: Value,
    pub payload: Vec<u8>,
}

impl Item {
    /// The payload parsed as JSON (None for attachments and other non-JSON payloads).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// A request the fake refused, with the reason it gave.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub path: String,
    pub status: u16,
    pub reason: String,
}

#[derive(Default)]
struct State {
    envelopes: Vec<Envelope>,
    rejections: Vec<Rejection>,
    /// (status, remaining) for `fail_next`.
    failure: Option<(u16, usize)>,
}

impl FakeSentry {
    /// Starts the server on 127.0.0.1:0 on its own thread with its own tokio runtime.
    pub fn start() -> FakeSentry {
        let shared = Arc::new(Mutex::new(State::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = Server::start("fake-sentry", app);
        FakeSentry { server, shared }
    }

    /// e.g. "http://127.0.0.1:41234"
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// e.g. "http://publickey@127.0.0.1:41234/42"
    pub fn dsn(&self) -> String {
        format!("http://{PUBLIC_KEY}@{}/{PROJECT_ID}", self.server.addr())
    }

    /// The payloads of every item of type "event", parsed, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.items("event").iter().filter_map(Item::json).collect()
    }

    /// Waits until at least `n` events arrived (or `timeout` passed); returns all events.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events();
            if events.len() >= n || Instant::now() >= deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many envelopes were accepted.
    pub fn envelopes(&self) -> usize {
        self.state().envelopes.len()
    }

    /// Every accepted envelope, in order.
    pub fn envelope_list(&self) -> Vec<Envelope> {
        self.state().envelopes.clone()
    }

    /// Every item of type `ty` ("event", "transaction", "session", ...), in order.
    pub fn items(&self, ty: &str) -> Vec<Item> {
        let st = self.state();
        let items = st.envelopes.iter().flat_map(|e| e.items.iter());
        items.filter(|i| i.ty == ty).cloned().collect()
    }

    /// Requests refused (bad path, wrong key, compressed or malformed body, injected failure).
    pub fn rejections(&self) -> Vec<Rejection> {
        self.state().rejections.clone()
    }

    /// The next `count` envelope posts get `status` (e.g. 429 or 503) and are not recorded
    /// as envelopes (they appear in `rejections`).
    pub fn fail_next(&self, status: u16, count: usize) {
        self.state().failure = Some((status, count));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    AxumState(shared): AxumState<Arc<Mutex<State>>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = read_whole(req).await;
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("");
    let result = accept(&parts.method, &path, query, &parts.headers, &body, &shared);
    match result {
        Ok(envelope) => {
            let id = envelope
                .headers
                .get("event_id")
                .cloned()
                .unwrap_or(Value::Null);
            lock(&shared).envelopes.push(envelope);
            respond(StatusCode::OK, &json!({ "id": id }))
        }
        Err((status, reason)) => {
            lock(&shared).rejections.push(Rejection {
                path,
                status: status.as_u16(),
                reason: reason.clone(),
            });
            respond(status, &json!({ "detail": reason }))
        }
    }
}

type Refusal = (StatusCode, String);

fn accept(
    method: &axum::http::Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    shared: &Mutex<State>,
) -> Result<Envelope, Refusal> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let project_id = match segs.as_slice() {
        ["api", project, "envelope"] if method == axum::http::Method::POST => project.to_string(),
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("FakeSentry only implements {ENVELOPE_ROUTE}, not {method} {path}"),
            ))
        }
    };
    {
        let mut st = lock(shared);
        if let Some((status, remaining)) = st.failure.as_mut() {
            if *remaining > 0 {
                *remaining -= 1;
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return Err((status, "injected failure from FakeSentry::fail_next".into()));
            }
        }
    }
    let auth = headers
        .get("x-sentry-auth")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let key_in_header = auth
        .as_deref()
        .is_some_and(|a| a.contains(&format!("sentry_key={PUBLIC_KEY}")));
    let key_in_query = query
        .split('&')
        .any(|p| p == format!("sentry_key={PUBLIC_KEY}"));
    if !key_in_header && !key_in_query {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing or unknown sentry_key".into(),
        ));
    }
    if let Some(enc) = headers.get("content-encoding") {
        let enc = String::from_utf8_lossy(enc.as_bytes()).into_owned();
        if !enc.trim().eq_ignore_ascii_case("identity") {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "FakeSentry does not decode Content-Encoding: {enc}; \
                     send the envelope uncompressed"
                ),
            ));
        }
    }
    let (headers, items) = parse_envelope(body).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    Ok(Envelope {
        project_id,
        auth,
        headers,
        items,
    })
}

/// Splits an envelope into its header and items. An item with a `length` takes exactly that
/// many bytes (then an optional newline); without one, its payload runs to the next newline.
pub fn parse_envelope(body: &[u8]) -> Result<(Value, Vec<Item>), String> {
    let (first, mut rest) = split_line(body);
    let headers: Value = if first.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(first).map_err(|e| format!("bad envelope header: {e}"))?
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        if line.iter().all(u8::is_ascii_whitespace) {
            rest = after; // blank line between items / trailing newline
            continue;
        }
        let item_headers: Value =
            serde_json::from_slice(line).map_err(|e| format!("bad item header: {e}"))?;
        let ty = item_headers
            .get("type")
            .and_then(Value::as_str)
            .ok_or("item header without a \"type\"")?
            .to_string();
        let payload;
        match item_headers.get("length") {
            Some(len) => {
                let len = len.as_u64().ok_or("item \"length\" is not an integer")? as usize;
                if after.len() < len {
                    return Err(format!(
                        "item of type {ty} claims length {len} but only {} bytes remain",
                        after.len()
                    ));
                }
                payload = after[..len].to_vec();
                let tail = &after[len..];
                rest = tail.strip_prefix(b"\n").unwrap_or(tail);
            }
            None => {
                let (line, tail) = split_line(after);
                payload = line.to_vec();
                rest = tail;
            }
        }
        items.push(Item {
            ty,
            headers: item_headers,
            payload,
        });
    }
    Ok((headers, items))
}

/// (line without its newline, the rest after it).
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn respond(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}
