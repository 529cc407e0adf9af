//! A small, stateful, in-process fake of the GitHub REST API (the issue endpoints a bot uses).
//!
//! It serves real HTTP on a loopback port so `octocrab` (or `reqwest`) can be pointed at it
//! with `base_uri(fake.url())`. Bodies are shaped like api.github.com's, closely enough for
//! octocrab's models to deserialize them. State lives in memory, every request is recorded, and
//! failures or delays can be injected per operation, and so can answers no real GitHub gives
//! ([`Fault`]: a huge body, a body that drips, an endless `Link: next`).
//!
//! Endpoints (`{repo}` is `/repos/{owner}/{name}` or `/repositories/{id}`, the form GitHub
//! uses in its `Link` headers):
//! - `GET {repo}/issues` (`state`, `labels`, `sort`, `direction`, `per_page`, `page`): ListIssues
//! - `GET {repo}/issues/{n}`: GetIssue
//! - `POST {repo}/issues`: CreateIssue (labels are created on the fly)
//! - `PATCH {repo}/issues/{n}`: UpdateIssue (title, body, state, state_reason, labels)
//! - `GET {repo}/issues/{n}/comments`: ListComments
//! - `POST {repo}/issues/{n}/comments`: CreateComment
//! - `GET /search/issues?q=...`: SearchIssues (a loose subset of the search syntax)

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode};
use serde_json::{json, Value};

pub use super::server::Hook;
use super::server::{read_whole, Server, UNRESERVED};

/// Where user profiles' `html_url`s point (never fetched). Issues and comments point at the
/// fake's own address, as GitHub Enterprise's do at its host.
pub const HTML_BASE: &str = "https://github.example";
/// The login of the user every token authenticates as (author of every issue and comment).
pub const LOGIN: &str = "fake-bot";
const USER_ID: u64 = 1001;
const REPO_ID: u64 = 1_300_192;
const DOCS: &str = "https://docs.github.com/rest";
const RATE_LIMIT_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";
const SUPPORT: &str = "If you reach out to GitHub Support for help, please include the \
    request ID FAKE:0000:0000.";
const SECONDARY: &str = "You have exceeded a secondary rate limit. Please wait a few minutes \
    before you try again.";
const TIMEOUT: &str = "We couldn't respond to your request in time. Sorry about that. Please \
    try resubmitting your request and contact us if the problem persists.";

/// A running fake GitHub API server. Stops when dropped.
pub struct FakeGitHub {
    server: Server,
    shared: Arc<Mutex<State>>,
}

/// An answer no real GitHub gives, for one operation (see [`FakeGitHub::fault`]): what a broken
/// proxy or a hostile server in front of the API could send.
#[derive(Clone, Debug)]
pub enum Fault {
    /// `status` with a body of `bytes` bytes (a JSON array of spaces), made as it is sent, so
    /// the fake never holds it; no `Content-Length`, so the client cannot tell its size first.
    Huge { status: u16, bytes: u64 },
    /// 200 whose body (a JSON array) sends one byte every `every`, and never ends.
    Drip { every: Duration },
    /// The usual answer, with a `Link` header whose `next` is always one page further.
    EndlessPages,
}

/// An issue as the fake holds it.
#[derive(Clone, Debug)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub state: String,
    /// Comment bodies, oldest first.
    pub comments: Vec<String>,
    pub html_url: String,
}

/// One request as the fake received it (`path` and `query` raw, as sent).
#[derive(Clone, Debug)]
pub struct Request {
    pub op: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
}

struct IssueRec {
    number: u64,
    title: String,
    body: Option<String>,
    /// Canonical label names (as first created).
    labels: Vec<String>,
    state: String,
    state_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    /// Monotonic "last updated" order (timestamps only have second resolution).
    seq: u64,
}

struct CommentRec {
    id: u64,
    issue: u64,
    body: String,
    created_at: DateTime<Utc>,
}

struct LabelRec {
    id: u64,
    name: String,
    color: String,
}

struct Failure {
    op: String,
    status: u16,
    remaining: usize,
    /// Apply the operation, then fail the response anyway (a lost response).
    commit: bool,
}

struct State {
    token: String,
    owner: String,
    repo: String,
    /// "http://127.0.0.1:PORT"
    base: String,
    issues: BTreeMap<u64, IssueRec>,
    comments: Vec<CommentRec>,
    labels: Vec<LabelRec>,
    next_number: u64,
    next_comment_id: u64,
    seq: u64,
    requests: Vec<Request>,
    failures: Vec<Failure>,
    delays: HashMap<String, Duration>,
    faults: HashMap<String, Fault>,
}

impl FakeGitHub {
    /// Starts the server on 127.0.0.1:0 on its own thread with its own tokio runtime, so it
    /// works from both `#[test]` and `#[tokio::test]` functions; stops when dropped.
    /// `token` is the only accepted credential; `repo` ("owner/name") the only repository.
    pub fn start(token: &str, repo: &str) -> FakeGitHub {
        let (owner, name) = repo.split_once('/').expect("repo must be \"owner/name\"");
        let state = State {
            token: token.to_string(),
            owner: owner.to_string(),
            repo: name.to_string(),
            // Known once the server is bound; set below, before anyone can have the URL.
            base: String::new(),
            issues: BTreeMap::new(),
            comments: Vec::new(),
            labels: Vec::new(),
            next_number: 1,
            next_comment_id: 1,
            seq: 0,
            requests: Vec::new(),
            failures: Vec::new(),
            delays: HashMap::new(),
            faults: HashMap::new(),
        };
        let shared = Arc::new(Mutex::new(state));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = Server::start("fake-github", app);
        lock(&shared).base = format!("http://{}", server.addr());
        FakeGitHub { server, shared }
    }

    /// Puts `hook` between every later request and the fake (see [`Hook`]); `None` removes it.
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.server.set_hook(hook);
    }

    /// e.g. "http://127.0.0.1:41234" — the API base (GITHUB_API_URL / octocrab `base_uri`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Adds an issue directly (no request recorded); `state` is "open" or "closed".
    /// Returns its number.
    pub fn seed_issue(&self, title: &str, body: &str, labels: &[&str], state: &str) -> u64 {
        let mut st = self.state();
        let labels = labels.iter().map(|l| st.label(l)).collect();
        let number = st.insert_issue(title.to_string(), Some(body.to_string()), labels);
        if state == "closed" {
            st.set_state(number, "closed", None);
        }
        number
    }

    /// Adds a comment directly (no request recorded). Panics if there is no such issue.
    pub fn seed_comment(&self, number: u64, body: &str) -> u64 {
        let mut st = self.state();
        assert!(st.issues.contains_key(&number), "no issue #{number}");
        st.insert_comment(number, body.to_string())
    }

    /// Every issue, by number.
    pub fn issues(&self) -> Vec<Issue> {
        let st = self.state();
        st.issues.values().map(|rec| st.public_issue(rec)).collect()
    }

    pub fn issue(&self, number: u64) -> Option<Issue> {
        let st = self.state();
        st.issues.get(&number).map(|rec| st.public_issue(rec))
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// The next `count` requests whose operation is `op` (or any, for "*") get `status` with a
    /// GitHub-like error body, without touching state. 403 is a primary rate limit
    /// (`x-ratelimit-remaining: 0`), 429 a secondary one (`retry-after: 60`).
    pub fn fail_next(&self, op: &str, status: u16, count: usize) {
        self.push_failure(op, status, count, false);
    }

    /// Like `fail_next`, but the operation is carried out first and only its response is
    /// replaced by the error — as when a proxy times out after GitHub created the issue.
    pub fn fail_next_after_commit(&self, op: &str, status: u16, count: usize) {
        self.push_failure(op, status, count, true);
    }

    /// Delay every response to `op` (or to any, for "*") by `d`.
    pub fn delay(&self, op: &str, d: Duration) {
        self.state().delays.insert(op.to_string(), d);
    }

    /// Every later request whose operation is `op` (or any, for "*") gets `fault` instead of
    /// GitHub's answer (for [`Fault::EndlessPages`], on top of it). The request is recorded.
    pub fn fault(&self, op: &str, fault: Fault) {
        self.state().faults.insert(op.to_string(), fault);
    }

    fn push_failure(&self, op: &str, status: u16, count: usize, commit: bool) {
        self.state().failures.push(Failure {
            op: op.to_string(),
            status,
            remaining: count,
            commit,
        });
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// State

impl State {
    fn repo_api(&self) -> String {
        format!("{}/repos/{}/{}", self.base, self.owner, self.repo)
    }

    fn repo_html(&self) -> String {
        format!("{}/{}/{}", self.base, self.owner, self.repo)
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The canonical name of label `name` (case-insensitive), creating the label if needed.
    fn label(&mut self, name: &str) -> String {
        if let Some(l) = self.find_label(name) {
            return l.name.clone();
        }
        let n = self.labels.len() as u64 + 1;
        let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        self.labels.push(LabelRec {
            id: 7_000_000_000 + n,
            name: name.to_string(),
            color: format!("{:06x}", hash & 0xff_ffff),
        });
        name.to_string()
    }

    fn find_label(&self, name: &str) -> Option<&LabelRec> {
        self.labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    fn insert_issue(&mut self, title: String, body: Option<String>, labels: Vec<String>) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        let now = now();
        let seq = self.tick();
        let mut uniq: Vec<String> = Vec::new();
        for l in labels {
            if !uniq.iter().any(|u| u.eq_ignore_ascii_case(&l)) {
                uniq.push(l);
            }
        }
        self.issues.insert(
            number,
            IssueRec {
                number,
                title,
                body,
                labels: uniq,
                state: "open".into(),
                state_reason: None,
                created_at: now,
                updated_at: now,
                closed_at: None,
                seq,
            },
        );
        number
    }

    fn set_state(&mut self, number: u64, state: &str, reason: Option<String>) {
        let seq = self.tick();
        let Some(rec) = self.issues.get_mut(&number) else {
            return;
        };
        if rec.state != state {
            rec.closed_at = (state == "closed").then(now);
            rec.state_reason = match state {
                "closed" => Some(reason.unwrap_or_else(|| "completed".into())),
                _ => Some("reopened".into()),
            };
        } else if let Some(reason) = reason {
            rec.state_reason = Some(reason);
        }
        rec.state = state.to_string();
        rec.updated_at = now();
        rec.seq = seq;
    }

    fn insert_comment(&mut self, issue: u64, body: String) -> u64 {
        let id = self.next_comment_id;
        self.next_comment_id += 1;
        self.comments.push(CommentRec {
            id,
            issue,
            body,
            created_at: now(),
        });
        let seq = self.tick();
        if let Some(rec) = self.issues.get_mut(&issue) {
            rec.updated_at = now();
            rec.seq = seq;
        }
        id
    }

    fn comment_count(&self, issue: u64) -> usize {
        self.comments.iter().filter(|c| c.issue == issue).count()
    }

    fn public_issue(&self, rec: &IssueRec) -> Issue {
        Issue {
            number: rec.number,
            title: rec.title.clone(),
            body: rec.body.clone().unwrap_or_default(),
            labels: rec.labels.clone(),
            state: rec.state.clone(),
            comments: self
                .comments
                .iter()
                .filter(|c| c.issue == rec.number)
                .map(|c| c.body.clone())
                .collect(),
            html_url: format!("{}/issues/{}", self.repo_html(), rec.number),
        }
    }

    fn user_json(&self) -> Value {
        let api = format!("{}/users/{LOGIN}", self.base);
        json!({
            "login": LOGIN,
            "id": USER_ID,
            "node_id": "MDQ6VXNlcjEwMDE=",
            "avatar_url": format!("https://avatars.github.example/u/{USER_ID}?v=4"),
            "gravatar_id": "",
            "url": api,
            "html_url": format!("{HTML_BASE}/{LOGIN}"),
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": "User",
            "user_view_type": "public",
            "site_admin": false
        })
    }

    fn label_json(&self, name: &str) -> Value {
        let l = self.find_label(name).expect("label exists");
        json!({
            "id": l.id,
            "node_id": format!("LA_kwDOFAKE{:010}", l.id - 7_000_000_000),
            "url": format!("{}/labels/{}", self.repo_api(), encode(&l.name)),
            "name": l.name,
            "color": l.color,
            "default": false,
            "description": null
        })
    }

    fn reactions_json(url: String) -> Value {
        json!({
            "url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0
        })
    }

    fn issue_json(&self, rec: &IssueRec) -> Value {
        let url = format!("{}/issues/{}", self.repo_api(), rec.number);
        let closed = rec.state == "closed";
        json!({
            "url": url,
            "repository_url": self.repo_api(),
            "labels_url": format!("{url}/labels{{/name}}"),
            "comments_url": format!("{url}/comments"),
            "events_url": format!("{url}/events"),
            "html_url": format!("{}/issues/{}", self.repo_html(), rec.number),
            "id": 3_000_000_000_u64 + rec.number,
            "node_id": format!("I_kwDOFAKE{:010}", rec.number),
            "number": rec.number,
            "title": rec.title,
            "user": self.user_json(),
            "labels": rec.labels.iter().map(|l| self.label_json(l)).collect::<Vec<_>>(),
            "state": rec.state,
            "locked": false,
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "comments": self.comment_count(rec.number),
            "created_at": ts(rec.created_at),
            "updated_at": ts(rec.updated_at),
            "closed_at": rec.closed_at.map(ts),
            "author_association": "OWNER",
            "type": null,
            "active_lock_reason": null,
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "body": rec.body,
            "closed_by": if closed { self.user_json() } else { Value::Null },
            "reactions": Self::reactions_json(format!("{url}/reactions")),
            "timeline_url": format!("{url}/timeline"),
            "performed_via_github_app": null,
            "state_reason": rec.state_reason,
        })
    }

    fn comment_json(&self, c: &CommentRec) -> Value {
        let url = format!("{}/issues/comments/{}", self.repo_api(), c.id);
        json!({
            "url": url,
            "html_url": format!("{}/issues/{}#issuecomment-{}", self.repo_html(), c.issue, c.id),
            "issue_url": format!("{}/issues/{}", self.repo_api(), c.issue),
            "id": c.id,
            "node_id": format!("IC_kwDOFAKE{:010}", c.id),
            "user": self.user_json(),
            "created_at": ts(c.created_at),
            "updated_at": ts(c.created_at),
            "author_association": "OWNER",
            "body": c.body,
            "reactions": Self::reactions_json(format!("{url}/reactions")),
            "performed_via_github_app": null
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

#[derive(Clone, Debug)]
enum RepoRef {
    Name(String, String),
    Id(String),
}

#[derive(Clone, Debug)]
enum Route {
    ListIssues(RepoRef),
    GetIssue(RepoRef, u64),
    CreateIssue(RepoRef),
    UpdateIssue(RepoRef, u64),
    ListComments(RepoRef, u64),
    CreateComment(RepoRef, u64),
    SearchIssues,
    Unsupported,
}

impl Route {
    fn op(&self) -> &'static str {
        match self {
            Route::ListIssues(_) => "ListIssues",
            Route::GetIssue(..) => "GetIssue",
            Route::CreateIssue(_) => "CreateIssue",
            Route::UpdateIssue(..) => "UpdateIssue",
            Route::ListComments(..) => "ListComments",
            Route::CreateComment(..) => "CreateComment",
            Route::SearchIssues => "SearchIssues",
            Route::Unsupported => "Unsupported",
        }
    }

    fn repo(&self) -> Option<&RepoRef> {
        match self {
            Route::ListIssues(r)
            | Route::GetIssue(r, _)
            | Route::CreateIssue(r)
            | Route::UpdateIssue(r, _)
            | Route::ListComments(r, _)
            | Route::CreateComment(r, _) => Some(r),
            Route::SearchIssues | Route::Unsupported => None,
        }
    }
}

fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (repo, rest) = match segs.as_slice() {
        ["repos", owner, name, rest @ ..] => {
            (RepoRef::Name(owner.to_string(), name.to_string()), rest)
        }
        ["repositories", id, rest @ ..] => (RepoRef::Id(id.to_string()), rest),
        ["search", "issues"] if method == Method::GET => return Route::SearchIssues,
        _ => return Route::Unsupported,
    };
    let num = |s: &str| s.parse::<u64>().ok();
    match (method.as_str(), rest) {
        ("GET", ["issues"]) => Route::ListIssues(repo),
        ("POST", ["issues"]) => Route::CreateIssue(repo),
        ("GET", ["issues", n]) => num(n).map_or(Route::Unsupported, |n| Route::GetIssue(repo, n)),
        ("PATCH", ["issues", n]) => {
            num(n).map_or(Route::Unsupported, |n| Route::UpdateIssue(repo, n))
        }
        ("GET", ["issues", n, "comments"]) => {
            num(n).map_or(Route::Unsupported, |n| Route::ListComments(repo, n))
        }
        ("POST", ["issues", n, "comments"]) => {
            num(n).map_or(Route::Unsupported, |n| Route::CreateComment(repo, n))
        }
        _ => Route::Unsupported,
    }
}

/// Everything a handler needs to know about the request.
struct Ctx {
    raw_query: String,
    query: Vec<(String, String)>,
    body: bytes::Bytes,
    authorization: Option<String>,
}

impl Ctx {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        let v: Value = serde_json::from_slice(&self.body)
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Problems parsing JSON"))?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Body should be a JSON object",
            ))
        }
    }

    /// (page, per_page) as GitHub reads them: per_page defaults to 30 and is capped at 100.
    fn paging(&self) -> (usize, usize) {
        let read = |name: &str| self.q(name).and_then(|v| v.parse::<usize>().ok());
        let per_page = read("per_page").filter(|&n| n > 0).unwrap_or(30).min(100);
        let page = read("page").filter(|&n| n > 0).unwrap_or(1);
        (page, per_page)
    }
}

/// A GitHub error; rendered as `{"message", "documentation_url", "status"}` (+ `errors`).
struct ApiError {
    status: StatusCode,
    message: String,
    documentation_url: String,
    errors: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            documentation_url: DOCS.to_string(),
            errors: None,
            headers: Vec::new(),
        }
    }

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Not Found")
    }

    fn validation(resource: &str, field: &str, code: &str) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
        e.errors = Some(json!([{"resource": resource, "field": field, "code": code}]));
        e
    }

    /// The error a `fail_next` injects for `status`.
    fn injected(status: u16) -> ApiError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reset = (Utc::now().timestamp() + 60).to_string();
        match status.as_u16() {
            401 => ApiError::new(status, "Bad credentials"),
            403 => {
                let message = format!("API rate limit exceeded for user ID {USER_ID}. {SUPPORT}");
                let mut e = ApiError::new(status, message);
                e.documentation_url = format!("{RATE_LIMIT_DOCS}#about-primary-rate-limits");
                e.headers = vec![
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", reset),
                ];
                e
            }
            404 => ApiError::not_found(),
            422 => ApiError::new(status, "Validation Failed"),
            429 => {
                let message = format!("{SECONDARY} {SUPPORT}");
                let mut e = ApiError::new(status, message);
                e.documentation_url = format!("{RATE_LIMIT_DOCS}#about-secondary-rate-limits");
                e.headers = vec![("retry-after", "60".into())];
                e
            }
            500 | 502 => ApiError::new(status, "Server Error"),
            503 => ApiError::new(status, "Service Unavailable"),
            504 => ApiError::new(status, TIMEOUT),
            _ => ApiError::new(status, status.canonical_reason().unwrap_or("Error")),
        }
    }

    fn render(self) -> Response {
        let mut body = json!({
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": self.status.as_u16().to_string(),
        });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        json_response(self.status, &body, &headers)
    }
}

type Reply = Result<Response, ApiError>;

async fn handle(
    AxumState(shared): AxumState<Arc<Mutex<State>>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = read_whole(req).await;
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let route = route(&parts.method, &path);
    let op = route.op();
    let ctx = Ctx {
        query: parse_query(&raw_query),
        raw_query,
        body,
        authorization: header(&parts.headers, "authorization"),
    };

    // Record the call and pick up any injected delay, failure or fault, without holding the lock.
    let (delay, failure, fault, request_no) = {
        let mut state = lock(&shared);
        state.requests.push(Request {
            op: op.to_string(),
            method: parts.method.to_string(),
            path: path.clone(),
            query: ctx.raw_query.clone(),
            body: String::from_utf8_lossy(&ctx.body).into_owned(),
            authorization: ctx.authorization.clone(),
        });
        let delay = state
            .delays
            .get(op)
            .or_else(|| state.delays.get("*"))
            .copied();
        let failure = state
            .failures
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.op == op || f.op == "*"))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.commit)
            });
        let fault = state
            .faults
            .get(op)
            .or_else(|| state.faults.get("*"))
            .cloned();
        (delay, failure, fault, state.requests.len())
    };
    match fault {
        Some(Fault::Huge { status, bytes }) => return huge(status, bytes),
        Some(Fault::Drip { every }) => return drip(every),
        Some(Fault::EndlessPages) | None => {}
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let reply = match failure {
        Some((status, false)) => Err(ApiError::injected(status)),
        _ => {
            let state = &mut *lock(&shared);
            let reply = check_auth(state, &ctx).and_then(|()| dispatch(state, &route, &ctx));
            match failure {
                Some((status, true)) => Err(ApiError::injected(status)),
                _ => reply,
            }
        }
    };
    let mut response = reply.unwrap_or_else(ApiError::render);
    if let Some(Fault::EndlessPages) = fault {
        let base = lock(&shared).base.clone();
        let (page, _) = ctx.paging();
        let next = format!(
            "<{base}{path}?{}>; rel=\"next\"",
            with_page(&ctx.raw_query, page + 1)
        );
        response
            .headers_mut()
            .insert("link", next.parse().expect("header value"));
    }
    let search = matches!(route, Route::SearchIssues);
    let limit: usize = if search { 30 } else { 5000 };
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if !headers.contains_key(name) {
            headers.insert(name, value.parse().expect("header value"));
        }
    };
    set("x-github-api-version-selected", "2022-11-28".into());
    set("x-github-media-type", "github.v3; format=json".into());
    set("x-github-request-id", format!("FAKE:{request_no:04X}:0000"));
    set("x-ratelimit-limit", limit.to_string());
    set(
        "x-ratelimit-remaining",
        limit.saturating_sub(request_no).to_string(),
    );
    set(
        "x-ratelimit-reset",
        (Utc::now().timestamp() + 3600).to_string(),
    );
    set("x-ratelimit-used", request_no.min(limit).to_string());
    set(
        "x-ratelimit-resource",
        if search { "search" } else { "core" }.into(),
    );
    response
}

fn check_auth(state: &State, ctx: &Ctx) -> Result<(), ApiError> {
    let Some(value) = ctx.authorization.as_deref() else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Requires authentication",
        ));
    };
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    let scheme_ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    if scheme_ok && token.trim() == state.token {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "Bad credentials"))
    }
}

fn dispatch(state: &mut State, route: &Route, ctx: &Ctx) -> Reply {
    if let Some(repo) = route.repo() {
        let ours = match repo {
            RepoRef::Name(o, r) => {
                o.eq_ignore_ascii_case(&state.owner) && r.eq_ignore_ascii_case(&state.repo)
            }
            RepoRef::Id(id) => *id == REPO_ID.to_string(),
        };
        if !ours {
            return Err(ApiError::not_found());
        }
    }
    match route {
        Route::ListIssues(_) => list_issues(state, ctx),
        Route::GetIssue(_, n) => {
            let rec = state.issues.get(n).ok_or_else(ApiError::not_found)?;
            Ok(json_response(StatusCode::OK, &state.issue_json(rec), &[]))
        }
        Route::CreateIssue(_) => create_issue(state, ctx),
        Route::UpdateIssue(_, n) => update_issue(state, ctx, *n),
        Route::ListComments(_, n) => list_comments(state, ctx, *n),
        Route::CreateComment(_, n) => create_comment(state, ctx, *n),
        Route::SearchIssues => search_issues(state, ctx),
        Route::Unsupported => Err(ApiError::not_found()),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn has_label(rec: &IssueRec, name: &str) -> bool {
    rec.labels.iter().any(|l| l.eq_ignore_ascii_case(name))
}

/// Sorts issues by `sort` (created | updated | comments) and `direction` (default desc).
fn sort_issues(
    state: &State,
    issues: &mut [&IssueRec],
    sort: Option<&str>,
    direction: Option<&str>,
) {
    match sort.unwrap_or("created") {
        "updated" => issues.sort_by_key(|i| i.seq),
        "comments" => issues.sort_by_key(|i| (state.comment_count(i.number), i.number)),
        _ => issues.sort_by_key(|i| i.number),
    }
    if direction != Some("asc") {
        issues.reverse();
    }
}

fn list_issues(state: &mut State, ctx: &Ctx) -> Reply {
    let want_state = ctx.q("state").unwrap_or("open");
    if !matches!(want_state, "open" | "closed" | "all") {
        return Err(ApiError::validation("Issue", "state", "invalid"));
    }
    let labels: Vec<&str> = ctx
        .q("labels")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut matching: Vec<&IssueRec> = state
        .issues
        .values()
        .filter(|i| want_state == "all" || i.state == want_state)
        .filter(|i| labels.iter().all(|l| has_label(i, l)))
        .collect();
    sort_issues(state, &mut matching, ctx.q("sort"), ctx.q("direction"));
    let items: Vec<Value> = matching.iter().map(|i| state.issue_json(i)).collect();
    let link_base = format!("{}/repositories/{REPO_ID}/issues", state.base);
    Ok(paged(ctx, items, &link_base, |items, _| {
        Value::Array(items)
    }))
}

fn create_issue(state: &mut State, ctx: &Ctx) -> Reply {
    let v = ctx.json_body()?;
    let title = match v.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(_)) => {
            return Err(ApiError::validation("Issue", "title", "missing_field"))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid request.\n\n\"title\" wasn't supplied.",
            ))
        }
    };
    let body = optional_string(&v, "body")?;
    let labels = label_names(v.get("labels"))?;
    let labels = labels.iter().map(|l| state.label(l)).collect();
    let number = state.insert_issue(title, body.flatten(), labels);
    let rec = &state.issues[&number];
    let location = format!("{}/issues/{number}", state.repo_api());
    Ok(json_response(
        StatusCode::CREATED,
        &state.issue_json(rec),
        &[("location", &location)],
    ))
}

fn update_issue(state: &mut State, ctx: &Ctx, number: u64) -> Reply {
    if !state.issues.contains_key(&number) {
        return Err(ApiError::not_found());
    }
    let v = ctx.json_body()?;
    let title = optional_string(&v, "title")?;
    let body = optional_string(&v, "body")?;
    let new_state = optional_string(&v, "state")?.flatten();
    if new_state
        .as_deref()
        .is_some_and(|s| s != "open" && s != "closed")
    {
        return Err(ApiError::validation("Issue", "state", "invalid"));
    }
    let reason = optional_string(&v, "state_reason")?.flatten();
    let labels = match v.get("labels") {
        None => None,
        Some(l) => Some(label_names(Some(l))?),
    };
    let labels: Option<Vec<String>> = labels.map(|ls| ls.iter().map(|l| state.label(l)).collect());
    let seq = state.tick();
    let rec = state.issues.get_mut(&number).expect("checked");
    if let Some(Some(title)) = title {
        rec.title = title;
    }
    if let Some(body) = body {
        rec.body = body;
    }
    if let Some(labels) = labels {
        rec.labels = labels;
    }
    rec.updated_at = now();
    rec.seq = seq;
    if let Some(s) = new_state {
        state.set_state(number, &s, reason);
    }
    Ok(json_response(
        StatusCode::OK,
        &state.issue_json(&state.issues[&number]),
        &[],
    ))
}

fn list_comments(state: &mut State, ctx: &Ctx, number: u64) -> Reply {
    if !state.issues.contains_key(&number) {
        return Err(ApiError::not_found());
    }
    let items: Vec<Value> = state
        .comments
        .iter()
        .filter(|c| c.issue == number)
        .map(|c| state.comment_json(c))
        .collect();
    let link_base = format!(
        "{}/repositories/{REPO_ID}/issues/{number}/comments",
        state.base
    );
    Ok(paged(ctx, items, &link_base, |items, _| {
        Value::Array(items)
    }))
}

fn create_comment(state: &mut State, ctx: &Ctx, number: u64) -> Reply {
    if !state.issues.contains_key(&number) {
        return Err(ApiError::not_found());
    }
    let v = ctx.json_body()?;
    let Some(body) = v.get("body").and_then(Value::as_str) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"body\" wasn't supplied.",
        ));
    };
    let id = state.insert_comment(number, body.to_string());
    let comment = state.comments.last().expect("just inserted");
    let location = format!("{}/issues/comments/{id}", state.repo_api());
    Ok(json_response(
        StatusCode::CREATED,
        &state.comment_json(comment),
        &[("location", &location)],
    ))
}

/// A loose subset of GitHub's issue search: `repo:o/r`, `is:issue|pr|open|closed`,
/// `type:issue|pr`, `state:open|closed`, `label:x` / `label:"x y"` / `-label:x`,
/// `in:title|body|comments`, and free-text words or "quoted phrases" (each must be a
/// case-insensitive substring of the searched fields). Other qualifiers are ignored.
fn search_issues(state: &mut State, ctx: &Ctx) -> Reply {
    let Some(q) = ctx.q("q").filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::validation("Search", "q", "missing"));
    };
    let mut repo_ok = true;
    let mut pulls = false;
    let mut want_state: Option<&str> = None;
    let mut labels: Vec<(bool, String)> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut terms: Vec<String> = Vec::new();
    for (token, quoted) in tokenize(q) {
        let qualifier = if quoted { None } else { token.split_once(':') };
        let Some((key, value)) = qualifier else {
            terms.push(token.to_lowercase());
            continue;
        };
        let value = value.to_string();
        match key.to_ascii_lowercase().as_str() {
            "repo" => {
                repo_ok &= value.eq_ignore_ascii_case(&format!("{}/{}", state.owner, state.repo))
            }
            "is" | "type" => match value.as_str() {
                "pr" | "pull-request" => pulls = true,
                "open" | "closed" => {
                    want_state = Some(if value == "open" { "open" } else { "closed" })
                }
                _ => {}
            },
            "state" => want_state = Some(if value == "closed" { "closed" } else { "open" }),
            "label" => labels.push((true, value)),
            "-label" => labels.push((false, value)),
            "in" => fields.extend(value.split(',').map(str::to_ascii_lowercase)),
            _ => {}
        }
    }
    if fields.is_empty() {
        fields = vec!["title".into(), "body".into(), "comments".into()];
    }
    let mut matching: Vec<&IssueRec> = state
        .issues
        .values()
        .filter(|_| repo_ok && !pulls)
        .filter(|i| want_state.is_none_or(|s| i.state == s))
        .filter(|i| labels.iter().all(|(want, l)| has_label(i, l) == *want))
        .filter(|i| {
            let mut text = String::new();
            if fields.iter().any(|f| f == "title") {
                text += &i.title.to_lowercase();
                text.push('\n');
            }
            if fields.iter().any(|f| f == "body") {
                text += &i.body.clone().unwrap_or_default().to_lowercase();
                text.push('\n');
            }
            if fields.iter().any(|f| f == "comments") {
                for c in state.comments.iter().filter(|c| c.issue == i.number) {
                    text += &c.body.to_lowercase();
                    text.push('\n');
                }
            }
            terms.iter().all(|t| text.contains(t.as_str()))
        })
        .collect();
    let sort = match ctx.q("sort") {
        Some(s @ ("updated" | "comments")) => Some(s),
        _ => None,
    };
    sort_issues(state, &mut matching, sort, ctx.q("order"));
    let items: Vec<Value> = matching
        .iter()
        .map(|i| {
            let mut v = state.issue_json(i);
            v["score"] = json!(1.0);
            v
        })
        .collect();
    let link_base = format!("{}/search/issues", state.base);
    Ok(paged(
        ctx,
        items,
        &link_base,
        |items, total| json!({"total_count": total, "incomplete_results": false, "items": items}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `raw_query` with its `page` parameter (if any) replaced by `page`.
fn with_page(raw_query: &str, page: usize) -> String {
    let mut query: Vec<String> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| decode(p.split('=').next().unwrap_or("")) != "page")
        .map(str::to_owned)
        .collect();
    query.push(format!("page={page}"));
    query.join("&")
}

/// [`Fault::Huge`]: `[`, spaces, `]`, `size` bytes in all, sent in 64 KiB chunks made on demand.
fn huge(status: u16, size: u64) -> Response {
    const CHUNK: usize = 64 * 1024;
    let spaces = bytes::Bytes::from(vec![b' '; CHUNK]);
    let inner = size.saturating_sub(2);
    let (whole, rest) = (inner / CHUNK as u64, (inner % CHUNK as u64) as usize);
    let chunks = std::iter::once(bytes::Bytes::from_static(b"["))
        .chain(std::iter::repeat_n(spaces.clone(), whole as usize))
        .chain(std::iter::once(spaces.slice(..rest)))
        .chain(std::iter::once(bytes::Bytes::from_static(b"]")))
        .map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("valid response")
}

/// [`Fault::Drip`]: 200, `[` at once, then a space every `every`, for ever.
fn drip(every: Duration) -> Response {
    let first = std::iter::once(bytes::Bytes::from_static(b"["));
    let spaces = futures_util::stream::unfold((), move |()| async move {
        tokio::time::sleep(every).await;
        Some((bytes::Bytes::from_static(b" "), ()))
    });
    let body = futures_util::StreamExt::map(
        futures_util::StreamExt::chain(futures_util::stream::iter(first), spaces),
        Ok::<_, std::convert::Infallible>,
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from_stream(body))
        .expect("valid response")
}

/// One page of `items` (per the request's `page`/`per_page`), wrapped by `wrap(page, total)`,
/// with GitHub's `Link` header (prev, next, last, first) pointing at `link_base`.
fn paged(
    ctx: &Ctx,
    items: Vec<Value>,
    link_base: &str,
    wrap: impl FnOnce(Vec<Value>, usize) -> Value,
) -> Response {
    let (page, per_page) = ctx.paging();
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let kept: Vec<&str> = ctx
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| decode(p.split('=').next().unwrap_or("")) != "page")
        .collect();
    let link_to = |n: usize| {
        let mut query = kept.clone();
        let page = format!("page={n}");
        query.push(&page);
        format!("<{link_base}?{}>", query.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    let link = links.join(", ");
    let headers: Vec<(&str, &str)> = if links.is_empty() {
        Vec::new()
    } else {
        vec![("link", link.as_str())]
    };
    json_response(StatusCode::OK, &wrap(page_items, total), &headers)
}

/// `labels` as GitHub accepts them: names, or objects with a `name`.
fn label_names(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::validation("Issue", "labels", "invalid");
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|l| match l {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                Value::Object(o) => o
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(invalid),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// `None` = absent, `Some(None)` = null, `Some(Some(s))` = a string; anything else is a 422.
fn optional_string(v: &Value, field: &str) -> Result<Option<Option<String>>, ApiError> {
    match v.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::validation("Issue", field, "invalid")),
    }
}

/// Splits a search query on whitespace, keeping "quoted phrases" (and `label:"a b"`) whole.
/// The flag says whether the token started with a quote (so it is text, not a qualifier).
fn tokenize(q: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut started_quoted = false;
    let mut any = false;
    for c in q.chars() {
        match c {
            '"' => {
                if !any {
                    started_quoted = true;
                }
                in_quotes = !in_quotes;
                any = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if any {
                    out.push((std::mem::take(&mut cur), started_quoted));
                }
                any = false;
                started_quoted = false;
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push((cur, started_quoted));
    }
    out
}

fn json_response(status: StatusCode, body: &Value, headers: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Path-segment encoding (label names in URLs).
fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// `application/x-www-form-urlencoded`-style query parsing (`+` is a space).
fn parse_query(raw: &str) -> Vec<(String, String)> {
    let pairs = raw.split('&').filter(|p| !p.is_empty());
    let pairs = pairs.map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    pairs
        .map(|(k, v)| (decode(&k.replace('+', " ")), decode(&v.replace('+', " "))))
        .collect()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// GitHub's timestamp format, e.g. 2026-11-23T10:00:00Z.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
