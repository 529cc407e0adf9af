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

/// WhereDoIVote's upload API as upstream's code answers a webhook post
/// (DemocracyClub/UK-Polling-Stations, `file_uploads/api.py` `UploadSerializer.create`, and the
/// field lengths of `file_uploads/models.py`), with the state it keeps: per upload, its stored
/// file rows and issue link, and the pull requests and emails it sets off.
#[derive(Default)]
pub struct Site {
    state: Mutex<SiteState>,
}

#[derive(Default)]
struct SiteState {
    /// Posts answered 500 before the upload's row exists (the webhook beat the site's own write).
    row_missing_posts: usize,
    /// Per upload (`gss`, `election_date`, `timestamp`): its file rows and `github_issue`.
    uploads: std::collections::HashMap<(String, String, String), (Vec<Value>, String)>,
    answers: Vec<u16>,
    pull_requests: usize,
    confirmation_emails: usize,
    error_emails: usize,
}

impl Site {
    /// A site where every upload's row exists before its first post, unless `row_missing_posts`
    /// says how many posts come first.
    pub fn new(row_missing_posts: usize) -> Site {
        Site {
            state: Mutex::new(SiteState {
                row_missing_posts,
                ..SiteState::default()
            }),
        }
    }

    /// Answers one post of `body` as upstream does.
    pub fn answer(&self, body: &[u8]) -> u16 {
        let mut state = self.state.lock().unwrap();
        let status = state.create(body);
        state.answers.push(status);
        status
    }

    /// The status of every post, oldest first.
    pub fn answers(&self) -> Vec<u16> {
        self.state.lock().unwrap().answers.clone()
    }

    /// The file rows the site holds for the upload at `prefix` (`{gss}/{date}/{timestamp}`).
    pub fn files(&self, prefix: &str) -> Vec<Value> {
        self.upload(prefix).0
    }

    /// The `github_issue` the site holds for the upload at `prefix`.
    pub fn github_issue(&self, prefix: &str) -> String {
        self.upload(prefix).1
    }

    fn upload(&self, prefix: &str) -> (Vec<Value>, String) {
        let mut parts = prefix.splitn(3, '/').map(str::to_owned);
        let key = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let state = self.state.lock().unwrap();
        state.uploads.get(&key).cloned().unwrap_or_default()
    }

    /// Pull requests opened (`upload.make_pull_request()`).
    pub fn pull_requests(&self) -> usize {
        self.state.lock().unwrap().pull_requests
    }
}

impl SiteState {
    fn create(&mut self, body: &[u8]) -> u16 {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return 400;
        };
        let text = |v: &Value, field: &str| v[field].as_str().map(str::to_owned);
        let Some(files) = body["file_set"].as_array() else {
            return 400;
        };
        // The serializer's validation: the model's field lengths.
        let too_long = |v: &Value, field: &str, max: usize| {
            text(v, field).is_none_or(|t| t.chars().count() > max)
        };
        if too_long(&body, "github_issue", 100)
            || files.iter().any(|f| {
                too_long(f, "key", 255) || too_long(f, "csv_encoding", 20) || too_long(f, "ems", 40)
            })
        {
            return 400;
        }
        let key = (
            text(&body, "gss").unwrap_or_default(),
            text(&body, "election_date").unwrap_or_default(),
            text(&body, "timestamp").unwrap_or_default(),
        );
        // `Upload.objects.get(...)` raises DoesNotExist: a 500.
        if self.row_missing_posts > 0 {
            self.row_missing_posts -= 1;
            return 500;
        }
        let (stored, github_issue) = self.uploads.entry(key).or_default();
        // Only a report with more files replaces the stored rows ("out-of-order delivery").
        if files.len() > stored.len() {
            *stored = files.clone();
        }
        if stored.is_empty() {
            self.error_emails += 1;
            return 201;
        }
        let first = &stored[0];
        let dc = first["ems"] == "Democracy Counts";
        let lone_dc = dc && stored.len() == 1 && first["errors"] == "Expected 2 files, found 1";
        // `check_files` raises for any stored file that is not valid, after storing them.
        if !lone_dc && stored.iter().any(|f| f["csv_valid"] != true) {
            return 500;
        }
        // Upstream: `(ems == "Democracy Counts" and count == 2) or ems != "Democracy Counts"`.
        if !dc || stored.len() == 2 {
            *github_issue = text(&body, "github_issue").unwrap_or_default();
            self.pull_requests += 1;
            self.confirmation_emails += 1;
        }
        201
    }
}

/// [`Site`] as a wiremock responder, for the scenario tests' WDIV mock server.
pub struct SiteResponder(pub Arc<Site>);

impl wiremock::Respond for SiteResponder {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let status = self.0.answer(&request.body);
        wiremock::ResponseTemplate::new(status).set_body_string(if status == 500 {
            "<h1>Server Error (500)</h1>"
        } else {
            ""
        })
    }
}
