#![allow(dead_code)]
//! A fake of the two WhereDoIVote endpoints the program calls: council names
//! (`GET {api}/councils/{id}.json`) and the upload webhook (`POST {api}/beta/uploads/`), which
//! keeps every body it accepts. Unlike wiremock it takes a [`Hook`], so a test can kill the
//! program between the post and its answer (tests/crash.rs) and count only what was accepted.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

// A crate that includes several fakes (tests/common) includes this once per fake.
#[allow(clippy::duplicate_mod)]
#[path = "server.rs"]
mod server;
pub use server::Hook;
use server::Server;

/// One webhook post the fake accepted: its JSON body and its Authorization header.
#[derive(Clone, Debug)]
pub struct Post {
    pub body: Value,
    pub authorization: String,
}

#[derive(Default)]
struct Shared {
    posts: Vec<Post>,
    council_name: String,
}

/// A running fake WDIV. Stops when dropped.
pub struct FakeWdiv {
    server: Server,
    shared: Arc<Mutex<Shared>>,
}

impl FakeWdiv {
    /// Every council is called `council_name`.
    pub fn start(council_name: &str) -> FakeWdiv {
        let shared = Arc::new(Mutex::new(Shared {
            posts: Vec::new(),
            council_name: council_name.to_owned(),
        }));
        let app = axum::Router::new()
            .route("/api/councils/{file}", axum::routing::get(council))
            .route("/api/beta/uploads/", axum::routing::post(upload))
            .with_state(shared.clone());
        // A few workers: the load test posts from 8 programs at once.
        let server = Server::start_multi_thread("fake-wdiv", 2, app);
        FakeWdiv { server, shared }
    }

    /// `WDIV_API_URL`
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.server.addr())
    }

    /// `WDIV_WEBHOOK_URL`
    pub fn webhook_url(&self) -> String {
        format!("http://{}/api/beta/uploads/", self.server.addr())
    }

    /// Every post accepted, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.shared.lock().unwrap().posts.clone()
    }

    /// Puts `hook` between every later request and the fake (see [`Hook`]).
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.server.set_hook(hook);
    }
}

async fn council(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(file): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let id = file.strip_suffix(".json").ok_or(StatusCode::NOT_FOUND)?;
    let name = shared.lock().unwrap().council_name.clone();
    Ok(Json(json!({"council_id": id, "name": name})))
}

async fn upload(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, StatusCode> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.lock().unwrap().posts.push(Post {
        body,
        authorization,
    });
    Ok(Json(json!({"ok": true})))
}
