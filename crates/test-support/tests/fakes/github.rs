//! Self-test for the fake GitHub API in src/fakes/github.rs, driven by octocrab configured the
//! way production code configures it.

use std::time::{Duration, Instant};

use octocrab::models::issues::{Comment, Issue};
use octocrab::{Octocrab, Page};
use serde_json::{json, Value};
use wdiv_test_support::fakes::github::{self, FakeGitHub};

const TOKEN: &str = "ghp_test_token";
const OWNER: &str = "DemocracyClub";
const REPO: &str = "uploads";
const LABEL: &str = "Data Import";

fn fake() -> FakeGitHub {
    FakeGitHub::start(TOKEN, &format!("{OWNER}/{REPO}"))
}

/// The production configuration.
fn client(fake: &FakeGitHub, token: &str) -> Octocrab {
    Octocrab::builder()
        .base_uri(fake.url())
        .expect("base uri")
        .personal_token(token.to_string())
        .build()
        .expect("octocrab")
}

fn label_names(issue: &Issue) -> Vec<String> {
    issue.labels.iter().map(|l| l.name.clone()).collect()
}

fn ops(fake: &FakeGitHub, op: &str) -> usize {
    fake.requests().iter().filter(|r| r.op == op).count()
}

/// The status of an `octocrab::Error::GitHub`, or a panic describing the error.
fn github_status(err: &octocrab::Error) -> u16 {
    match err {
        octocrab::Error::GitHub { source, .. } => source.status_code.as_u16(),
        other => panic!("expected a GitHub error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_issue_and_read_it_back() {
    let fake = fake();
    let gh = client(&fake, TOKEN);
    let created = gh
        .issues(OWNER, REPO)
        .create("Import failed for ABC")
        .body("The file had no header row.")
        .labels(vec![LABEL.to_string(), "bug".to_string()])
        .send()
        .await
        .expect("create issue");
    assert_eq!(created.number, 1);
    assert_eq!(created.title, "Import failed for ABC");
    assert_eq!(created.body.as_deref(), Some("The file had no header row."));
    assert_eq!(label_names(&created), [LABEL, "bug"]);
    assert_eq!(created.user.login, github::LOGIN);
    assert_eq!(created.comments, 0);
    let html = created.html_url.as_str();
    assert_eq!(html, format!("{}/{OWNER}/{REPO}/issues/1", fake.url()));
    assert!(created.html_url.fragment().is_none());

    // Through the fake's own view...
    let issues = fake.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].title, "Import failed for ABC");
    assert_eq!(issues[0].body, "The file had no header row.");
    assert_eq!(issues[0].labels, [LABEL, "bug"]);
    assert_eq!(issues[0].state, "open");
    assert_eq!(issues[0].html_url, html);

    // ...and through the API.
    let got = gh.issues(OWNER, REPO).get(1).await.expect("get issue");
    assert_eq!(got, created);

    let reqs = fake.requests();
    let create = reqs.iter().find(|r| r.op == "CreateIssue").unwrap();
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, format!("/repos/{OWNER}/{REPO}/issues"));
    assert_eq!(
        create.authorization.as_deref(),
        Some("Bearer ghp_test_token")
    );
    let sent: Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(sent["title"], "Import failed for ABC");
    assert_eq!(sent["labels"], json!([LABEL, "bug"]));
}

#[tokio::test]
async fn list_open_issues_with_label() {
    let fake = fake();
    let wanted = fake.seed_issue("Open import issue", "body", &[LABEL], "open");
    fake.seed_issue("Closed import issue", "body", &[LABEL], "closed");
    fake.seed_issue("Other open issue", "body", &["bug"], "open");
    fake.seed_issue("Two labels", "body", &["bug", "data import"], "open");
    let gh = client(&fake, TOKEN);

    // The typed builder.
    let labels = vec![LABEL.to_string()];
    let page = gh
        .issues(OWNER, REPO)
        .list()
        .state(octocrab::params::State::Open)
        .labels(&labels)
        .per_page(100)
        .send()
        .await
        .expect("list issues");
    let titles: Vec<&str> = page.items.iter().map(|i| i.title.as_str()).collect();
    // Newest first; label matching is case-insensitive like GitHub's.
    assert_eq!(titles, ["Two labels", "Open import issue"]);
    assert!(page.next.is_none());
    let req = fake.requests().pop().unwrap();
    assert_eq!(req.op, "ListIssues");
    assert_eq!(req.query, "state=open&labels=Data+Import&per_page=100");

    // The raw route, as JSON and as octocrab's model.
    let route = format!("/repos/{OWNER}/{REPO}/issues");
    let params = json!({"state": "open", "labels": LABEL, "per_page": 100});
    let raw: Value = gh.get(&route, Some(&params)).await.expect("raw get");
    let raw = raw.as_array().expect("array");
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[1]["number"], wanted);
    assert_eq!(raw[1]["labels"][0]["name"], LABEL);
    let typed: Vec<Issue> = gh.get(&route, Some(&params)).await.expect("typed get");
    assert_eq!(typed[1].number, wanted);
    let paged: Page<Issue> = gh.get(&route, Some(&params)).await.expect("page get");
    assert_eq!(paged.items.len(), 2);

    // state=all and state=closed.
    let all: Vec<Issue> = gh
        .get(&route, Some(&json!({"state": "all", "labels": LABEL})))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let closed = gh
        .issues(OWNER, REPO)
        .list()
        .state(octocrab::params::State::Closed)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.items.len(), 1);
    assert!(closed.items[0].closed_at.is_some());
}

#[tokio::test]
async fn paginates_with_link_headers() {
    let fake = fake();
    for i in 1..=35 {
        fake.seed_issue(&format!("Issue {i}"), "", &[LABEL], "open");
    }
    let gh = client(&fake, TOKEN);
    let labels = vec![LABEL.to_string()];
    let first = gh
        .issues(OWNER, REPO)
        .list()
        .state(octocrab::params::State::Open)
        .labels(&labels)
        .send()
        .await
        .unwrap();
    assert_eq!(first.items.len(), 30, "default per_page is 30");
    assert_eq!(first.items[0].title, "Issue 35");
    let next = first.next.clone().expect("next link");
    assert_eq!(
        next.to_string(),
        format!(
            "{}/repositories/1300192/issues?state=open&labels=Data+Import&page=2",
            fake.url()
        )
    );
    assert!(first.last.is_some());
    assert!(first.prev.is_none());

    let second: Page<Issue> = gh.get_page(&first.next).await.unwrap().expect("page 2");
    assert_eq!(second.items.len(), 5);
    assert_eq!(second.items[4].title, "Issue 1");
    assert!(second.next.is_none());
    assert!(second.prev.is_some() && second.first.is_some());
    // The Link host is the fake's, so octocrab still sends the token.
    let req = fake.requests().pop().unwrap();
    assert_eq!(req.path, "/repositories/1300192/issues");
    assert_eq!(req.authorization.as_deref(), Some("Bearer ghp_test_token"));

    // all_pages follows the links; per_page is capped at 100.
    let all = gh.all_pages(first).await.unwrap();
    assert_eq!(all.len(), 35);
    let big: Vec<Issue> = gh
        .get(
            format!("/repos/{OWNER}/{REPO}/issues"),
            Some(&json!({"per_page": 500})),
        )
        .await
        .unwrap();
    assert_eq!(big.len(), 35);
}

#[tokio::test]
async fn comments() {
    let fake = fake();
    let n = fake.seed_issue("Import failed", "first failure", &[LABEL], "open");
    let gh = client(&fake, TOKEN);
    let comment: Comment = gh
        .issues(OWNER, REPO)
        .create_comment(n, "Failed again")
        .await
        .expect("create comment");
    assert_eq!(comment.body.as_deref(), Some("Failed again"));
    let html = comment.html_url.as_str();
    assert!(
        html.starts_with(&format!(
            "{}/{OWNER}/{REPO}/issues/{n}#issuecomment-",
            fake.url()
        )),
        "{html}"
    );
    assert_eq!(
        comment.html_url.fragment(),
        Some(&*format!("issuecomment-{}", comment.id))
    );
    assert_eq!(fake.issues()[0].comments, ["Failed again"]);
    let issue = gh.issues(OWNER, REPO).get(n).await.unwrap();
    assert_eq!(issue.comments, 1);
    let listed = gh
        .issues(OWNER, REPO)
        .list_comments(n)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.items, vec![comment]);

    let missing = gh
        .issues(OWNER, REPO)
        .create_comment(999, "x")
        .await
        .unwrap_err();
    assert_eq!(github_status(&missing), 404);
}

#[tokio::test]
async fn search_issues() {
    let fake = fake();
    let want = fake.seed_issue("Import failed for ABC", "", &[LABEL], "open");
    fake.seed_issue("Import failed for ABC", "", &[LABEL], "closed");
    fake.seed_issue("Import failed for XYZ", "", &[LABEL], "open");
    fake.seed_issue("Import failed for ABC", "", &["bug"], "open");
    let gh = client(&fake, TOKEN);
    let q = format!(
        "repo:{OWNER}/{REPO} is:issue is:open label:\"{LABEL}\" in:title \"Import failed for ABC\""
    );
    let page = gh
        .search()
        .issues_and_pull_requests(&q)
        .send()
        .await
        .expect("search");
    assert_eq!(page.total_count, Some(1));
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].number, want);

    let none = gh
        .search()
        .issues_and_pull_requests("repo:someone/else Import")
        .send()
        .await
        .unwrap();
    assert_eq!(none.total_count, Some(0));
}

#[tokio::test]
async fn update_issue() {
    let fake = fake();
    let n = fake.seed_issue("Old", "old body", &[LABEL], "open");
    let gh = client(&fake, TOKEN);
    let issue = gh
        .issues(OWNER, REPO)
        .update(n)
        .body("new body")
        .state(octocrab::models::IssueState::Closed)
        .send()
        .await
        .expect("update");
    assert_eq!(issue.state, octocrab::models::IssueState::Closed);
    assert!(issue.closed_at.is_some());
    let held = fake.issue(n).unwrap();
    assert_eq!(
        (held.body.as_str(), held.state.as_str()),
        ("new body", "closed")
    );
}

#[tokio::test]
async fn auth_and_unknown_repo() {
    let fake = fake();
    fake.seed_issue("x", "", &[], "open");
    let bad = client(&fake, "wrong");
    let err = bad.issues(OWNER, REPO).get(1).await.unwrap_err();
    assert_eq!(github_status(&err), 401);
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.message, "Bad credentials");
            assert!(source.documentation_url.is_some());
        }
        _ => unreachable!(),
    }

    let gh = client(&fake, TOKEN);
    let err = gh.issues(OWNER, "nope").get(1).await.unwrap_err();
    assert_eq!(github_status(&err), 404);
    let err = gh.issues(OWNER, REPO).get(2).await.unwrap_err();
    assert_eq!(github_status(&err), 404);

    // Other clients: the `token` scheme works; no header at all is a 401.
    let http = reqwest::Client::new();
    let url = format!("{}/repos/{OWNER}/{REPO}/issues/1", fake.url());
    let ok = http
        .get(&url)
        .header("authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let anon = http.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let body: Value = anon.json().await.unwrap();
    assert_eq!(body["message"], "Requires authentication");
}

#[tokio::test]
async fn octocrab_default_retry_on_5xx() {
    let fake = fake();
    let gh = client(&fake, TOKEN);

    // One 502 on create: octocrab's default RetryConfig::Simple(3) resends the POST (with its
    // body) at once, so the call succeeds and exactly one issue exists.
    fake.fail_next("CreateIssue", 502, 1);
    let issue = gh
        .issues(OWNER, REPO)
        .create("Retried")
        .body("b")
        .send()
        .await
        .expect("retried create succeeds");
    assert_eq!(issue.title, "Retried");
    assert_eq!(ops(&fake, "CreateIssue"), 2);
    let bodies: Vec<String> = fake.requests().iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies[0], bodies[1], "the retry resends the same body");
    assert_eq!(fake.issues().len(), 1);

    // Four failures in a row exhaust the 3 retries: 4 attempts, then the 503 surfaces.
    fake.fail_next("GetIssue", 503, 4);
    let err = gh.issues(OWNER, REPO).get(1).await.unwrap_err();
    assert_eq!(github_status(&err), 503);
    assert_eq!(ops(&fake, "GetIssue"), 4);

    // 500 and 429 are retried too; 403 (primary rate limit) is not.
    fake.fail_next("GetIssue", 500, 1);
    fake.fail_next("GetIssue", 429, 1);
    gh.issues(OWNER, REPO).get(1).await.expect("retried");
    assert_eq!(ops(&fake, "GetIssue"), 7);
    fake.fail_next("GetIssue", 403, 1);
    let err = gh.issues(OWNER, REPO).get(1).await.unwrap_err();
    assert_eq!(github_status(&err), 403);
    assert_eq!(ops(&fake, "GetIssue"), 8);
    match &err {
        octocrab::Error::GitHub { source, .. } => {
            assert!(source.message.starts_with("API rate limit exceeded"));
            let headers = source.headers.as_ref().expect("headers");
            assert_eq!(headers["x-ratelimit-remaining"], "0");
        }
        _ => unreachable!(),
    }

    // A lost response (GitHub created the issue, the 502 came from in front of it) plus the
    // automatic retry files the issue twice.
    fake.fail_next_after_commit("CreateIssue", 502, 1);
    gh.issues(OWNER, REPO)
        .create("Lost response")
        .send()
        .await
        .expect("second attempt succeeds");
    let dupes = fake
        .issues()
        .iter()
        .filter(|i| i.title == "Lost response")
        .count();
    assert_eq!(dupes, 2);
}

#[tokio::test]
async fn delays_and_read_timeout() {
    let fake = fake();
    fake.seed_issue("x", "", &[], "open");
    fake.delay("GetIssue", Duration::from_millis(300));
    let gh = client(&fake, TOKEN);
    let start = Instant::now();
    gh.issues(OWNER, REPO).get(1).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));

    // With a read timeout shorter than the delay every attempt times out; the transport
    // error is retried like a 5xx (4 attempts), then surfaces.
    let impatient = Octocrab::builder()
        .base_uri(fake.url())
        .unwrap()
        .personal_token(TOKEN.to_string())
        .set_read_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let before = ops(&fake, "GetIssue");
    let err = impatient.issues(OWNER, REPO).get(1).await.unwrap_err();
    assert!(
        !matches!(err, octocrab::Error::GitHub { .. }),
        "a timeout is not a GitHub error: {err:?}"
    );
    assert_eq!(ops(&fake, "GetIssue") - before, 4);
}

#[tokio::test]
async fn faults_a_huge_body_a_drip_and_endless_pages() {
    let fake = fake();
    fake.seed_issue("x", "", &[LABEL], "open");
    let gh = client(&fake, TOKEN);
    let route = format!("/repos/{OWNER}/{REPO}/issues");

    // Endless pages: the usual answer, and always a next page.
    fake.fault("ListIssues", github::Fault::EndlessPages);
    let first: Page<Issue> = gh.get(&route, None::<&()>).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let third: Page<Issue> = gh.get_page(&first.next).await.unwrap().unwrap();
    let third: Page<Issue> = gh.get_page(&third.next).await.unwrap().unwrap();
    let next = third.next.expect("a next page, for ever").to_string();
    assert!(next.ends_with(&format!("{route}?page=4")), "{next}");

    // A huge body: every byte sent, with no length said first; the request is recorded.
    fake.fault(
        "ListIssues",
        github::Fault::Huge {
            status: 404,
            bytes: 1_000_001,
        },
    );
    let url = format!("{}{route}", fake.url());
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.content_length(), None);
    let body = answer.bytes().await.unwrap();
    assert_eq!(body.len(), 1_000_001);
    assert!(body.starts_with(b"[ ") && body.ends_with(b" ]"));
    assert_eq!(ops(&fake, "ListIssues"), 4);

    // A drip: the answer and its first byte at once, then a byte every `every`.
    fake.fault(
        "ListIssues",
        github::Fault::Drip {
            every: Duration::from_millis(200),
        },
    );
    let start = Instant::now();
    let mut answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.chunk().await.unwrap().as_deref(), Some(&b"["[..]));
    assert_eq!(answer.chunk().await.unwrap().as_deref(), Some(&b" "[..]));
    assert_eq!(answer.chunk().await.unwrap().as_deref(), Some(&b" "[..]));
    assert!(start.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn validation_errors() {
    let fake = fake();
    let http = reqwest::Client::new();
    let url = format!("{}/repos/{OWNER}/{REPO}/issues", fake.url());
    let post = |body: &'static str| {
        http.post(&url)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(body)
            .send()
    };
    let r = post("{not json").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(r#"{"body":"no title"}"#).await.unwrap();
    assert_eq!(r.status(), 422);
    let r = post(r#"{"title":"t","labels":[{"name":"obj"},"str"]}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/issues/1"));
    assert_eq!(fake.issues()[0].labels, ["obj", "str"]);
    let r = http
        .get(format!("{url}?state=bogus"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}
