//! The WhereDoIVote fake: the two endpoints the program calls, council names
//! (`GET {api}/councils/{id}.json`) and the upload webhook (`POST {api}/beta/uploads/`), which
//! keeps every body it accepts. Every request that reaches it is recorded. A test can put
//! answers of its own ahead of these ([`Answer`]: a status, a body, a delay, for a number of
//! requests), make the webhook answer as the real site does ([`Site`]), or put a [`Hook`]
//! between the program and the fake, to kill the program between the post and its answer
//! (tests/scenarios/crash.rs) and count only what was accepted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub use super::server::Hook;
use super::server::Server;

/// One webhook post the fake accepted: its JSON body and its Authorization header.
#[derive(Clone, Debug)]
pub struct Post {
    pub body: Value,
    pub authorization: String,
}

/// One request that reached the fake, whatever it answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    /// Its Authorization header, or "".
    pub fn authorization(&self) -> String {
        header(&self.headers, "authorization")
    }
}

/// An answer the fake gives ahead of its own, to the requests it matches, for as many of them
/// as [`Answer::times`] says (or all). The first answer added that matches a request answers it.
#[derive(Clone)]
pub struct Answer {
    method: Method,
    path_prefix: String,
    reply: Reply,
    delay: Duration,
    times: Option<usize>,
}

#[derive(Clone)]
enum Reply {
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    },
    /// As the real site answers a webhook post.
    Site(Arc<Site>),
}

impl Answer {
    /// `status` with an empty body, to every `method` request.
    pub fn new(method: &str, status: u16) -> Answer {
        Answer {
            method: method.parse().expect("an HTTP method"),
            path_prefix: String::new(),
            reply: Reply::Fixed {
                status,
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            },
            delay: Duration::ZERO,
            times: None,
        }
    }

    /// Only to requests for the council names (`GET {api}/councils/{id}.json`).
    pub fn council_names(status: u16) -> Answer {
        Answer::new("GET", status).on_paths_under("/api/councils/")
    }

    /// Only to requests whose path starts with `prefix`.
    pub fn on_paths_under(mut self, prefix: &str) -> Answer {
        self.path_prefix = prefix.to_owned();
        self
    }

    /// With this body.
    pub fn body(mut self, bytes: impl Into<bytes::Bytes>) -> Answer {
        if let Reply::Fixed { body, .. } = &mut self.reply {
            *body = bytes.into();
        }
        self
    }

    /// With this JSON body.
    pub fn json(self, value: &Value) -> Answer {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// With this header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        if let Reply::Fixed { headers, .. } = &mut self.reply {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// After waiting this long.
    pub fn delay(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    /// To the first `n` requests it matches only.
    pub fn times(mut self, n: usize) -> Answer {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times != Some(0) && self.method == method && path.starts_with(&self.path_prefix)
    }
}

#[derive(Default)]
struct Shared {
    posts: Vec<Post>,
    requests: Vec<Request>,
    answers: Vec<Answer>,
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
            council_name: council_name.to_owned(),
            ..Shared::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        // A few workers: the load test posts from 8 programs at once.
        let server = Server::start_multi_thread("fake-wdiv", 2, app);
        FakeWdiv { server, shared }
    }

    /// `http://127.0.0.1:port`, the fake's origin.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `WDIV_API_URL`
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    /// `WDIV_WEBHOOK_URL`
    pub fn webhook_url(&self) -> String {
        format!("{}/api/beta/uploads/", self.url())
    }

    /// Every council is called `name` from now on.
    pub fn set_council_name(&self, name: &str) {
        self.lock().council_name = name.to_owned();
    }

    /// Every post the fake's own webhook accepted, oldest first (not those an [`Answer`] or
    /// the [`Site`] answered).
    pub fn posts(&self) -> Vec<Post> {
        self.lock().posts.clone()
    }

    /// Every request that reached the fake, oldest first, whoever answered it.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Gives `answer` ahead of the fake's own answers (and of those added after it).
    pub fn answer(&self, answer: Answer) {
        self.lock().answers.push(answer);
    }

    /// Answers webhook posts as `site` does, ahead of the fake's own answers.
    pub fn answer_as(&self, site: Arc<Site>) {
        self.answer(Answer {
            method: Method::POST,
            path_prefix: "/api/beta/uploads/".to_owned(),
            reply: Reply::Site(site),
            delay: Duration::ZERO,
            times: None,
        });
    }

    /// Puts `hook` between every later request and the fake (see [`Hook`]).
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.server.set_hook(hook);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (answer, council_name) = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.requests.push(Request {
            method: method.to_string(),
            path: path.clone(),
            headers: headers.clone(),
            body: body.to_vec(),
        });
        let answer = shared
            .answers
            .iter_mut()
            .find(|a| a.matches(&method, &path))
            .map(|a| {
                a.times = a.times.map(|n| n - 1);
                a.clone()
            });
        (answer, shared.council_name.clone())
    };
    if let Some(answer) = answer {
        tokio::time::sleep(answer.delay).await;
        return match answer.reply {
            Reply::Fixed {
                status,
                headers,
                body,
            } => {
                let mut response = (status_code(status), body).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(
                        HeaderName::try_from(name).expect("a header name"),
                        HeaderValue::try_from(value).expect("a header value"),
                    );
                }
                response
            }
            Reply::Site(site) => {
                let status = site.answer(&body);
                let text = if status == 500 {
                    "<h1>Server Error (500)</h1>"
                } else {
                    ""
                };
                (status_code(status), text).into_response()
            }
        };
    }
    if method == Method::GET {
        if let Some(id) = council_id(&path) {
            return axum::Json(json!({"council_id": id, "name": council_name})).into_response();
        }
    }
    if method == Method::POST && path == "/api/beta/uploads/" {
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let authorization = header(&headers, "authorization");
        shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .posts
            .push(Post {
                body,
                authorization,
            });
        return axum::Json(json!({"ok": true})).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The council id of `/api/councils/{id}.json`, when the id is letters, digits and dashes.
fn council_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/api/councils/")?.strip_suffix(".json")?;
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then_some(id)
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).expect("an HTTP status")
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
