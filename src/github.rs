//! The GitHub issue that tells staff to import an upload (octocrab; `GITHUB_API_URL` makes GitHub
//! Enterprise and test fakes work). An open issue with the same title and the `Data Import` label
//! gets a comment starting `Updated` instead of a second issue.
//!
//! What comes back is bounded: octocrab sends the requests (its token goes only to the API's own
//! host, and it follows no redirect), and this module reads the answers, at most
//! [`MAX_BODY_BYTES`] of one (at most [`MAX_ERROR_BYTES`] of an error), at most [`MAX_PAGES`]
//! pages of a list, and all of one operation within its deadline ([`DEADLINE`] unless
//! [`GitHub::with_deadline`] says otherwise). Reaching a bound is a transient failure, never "no
//! such issue", which would open a second one.

use std::time::Duration;

use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::http::{read_body_at_most, BodyError};
use crate::retry::with_backoff;
use crate::vocab::Secret;

/// The label staff filter import issues on.
pub const IMPORT_LABEL: &str = "Data Import";
/// The most bytes read of one answer: a page of 100 issues is far less.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most bytes read of an error answer: GitHub's are a few hundred.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;
/// The most pages of one list read (100 items each) before giving up.
pub const MAX_PAGES: usize = 10;
/// How long one operation (finding the open issue, then opening it or commenting, with the
/// retries) may take in all, unless [`GitHub::with_deadline`] says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(30);
const PER_PAGE: usize = 100;
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub {what} on {repo} failed: HTTP {status}: {message}")]
    Status {
        what: &'static str,
        repo: String,
        status: u16,
        message: String,
    },
    #[error("GitHub {what} on {repo} failed: {detail}")]
    Other {
        what: &'static str,
        repo: String,
        detail: String,
    },
    /// GitHub sent more than this client reads: a larger answer, or more pages. Whether the
    /// issue exists is then unknown.
    #[error("GitHub {what} on {repo} stopped: {why}; whether the issue exists is unknown, so a later try must look again")]
    Bound {
        what: &'static str,
        repo: String,
        why: String,
    },
    #[error("GitHub on {repo} did not finish within {} s (its deadline); a later try looks for the issue again", .after.as_secs_f32())]
    Deadline { repo: String, after: Duration },
    #[error("GITHUB_API_URL or the token is not usable: {0}")]
    Config(String),
}

impl GitHubError {
    /// Whether a later try may succeed: a 5xx, throttling, a transport failure, or a bound
    /// reached (the answer may be smaller, or GitHub quicker, next time).
    pub fn transient(&self) -> bool {
        match self {
            GitHubError::Status { status, .. } => *status >= 500 || *status == 429,
            GitHubError::Other { .. }
            | GitHubError::Bound { .. }
            | GitHubError::Deadline { .. } => true,
            GitHubError::Config(_) => false,
        }
    }

    /// Whether to try again at once, within the operation: not when a bound was reached, which
    /// the same requests would reach again.
    fn retry_now(&self) -> bool {
        self.transient() && !matches!(self, GitHubError::Bound { .. })
    }
}

/// The message of a GitHub error answer.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    title: String,
    html_url: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    body: &'a str,
    labels: &'a [String],
}

#[derive(Serialize)]
struct NewComment<'a> {
    body: &'a str,
}

/// A client for one repository.
#[derive(Clone)]
pub struct GitHub {
    client: Octocrab,
    repo: String,
    /// Where the repository's pages are: `https://github.com/{repo}` for github.com, the API's
    /// own host for GitHub Enterprise (and test fakes).
    repo_html: String,
    /// How long one operation may take in all.
    deadline: Duration,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("repo", &self.repo)
            .field("token", &"****")
            .finish()
    }
}

/// The web address of `repo` on the GitHub whose API is at `api_url`.
fn repo_html(api_url: &str, repo: &str) -> Result<String, GitHubError> {
    let url = reqwest::Url::parse(api_url)
        .map_err(|e| GitHubError::Config(format!("GITHUB_API_URL is not a URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| GitHubError::Config("GITHUB_API_URL has no host".into()))?;
    let host = match host {
        "api.github.com" => "github.com",
        other => other,
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{host}{port}/{repo}", url.scheme()))
}

/// The issue's URL as the report carries it: no `#issuecomment-…` fragment.
pub fn issue_url(url: &str) -> String {
    url.split('#').next().unwrap_or(url).to_owned()
}

impl GitHub {
    pub fn new(api_url: &str, token: &Secret, repo: &str) -> Result<GitHub, GitHubError> {
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| GitHubError::Config(e.to_string()))?
            .personal_token(token.expose().to_owned())
            // octocrab would resend a POST at once on a 5xx, which can file an issue twice; our
            // retry looks for the issue again first, with backoff.
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(5)))
            .set_read_timeout(Some(Duration::from_secs(20)))
            .set_write_timeout(Some(Duration::from_secs(20)))
            .build()
            .map_err(|e| GitHubError::Config(e.to_string()))?;
        Ok(GitHub {
            client,
            repo: repo.to_owned(),
            repo_html: repo_html(api_url, repo)?,
            deadline: DEADLINE,
        })
    }

    /// The same client, with `deadline` in place of [`DEADLINE`] for each operation.
    #[cfg_attr(not(test), allow(dead_code))] // the tests shorten the deadline
    pub fn with_deadline(self, deadline: Duration) -> GitHub {
        GitHub { deadline, ..self }
    }

    /// Whether `url` is an issue of the configured repository on the configured GitHub:
    /// `{repo_html}/issues/{number}`, nothing more. A URL read back from a bucket is trusted
    /// only when it is.
    pub fn is_issue_url(&self, url: &str) -> bool {
        url.strip_prefix(&self.repo_html)
            .and_then(|rest| rest.strip_prefix("/issues/"))
            .is_some_and(|n| {
                !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit())
            })
    }

    fn error(&self, what: &'static str, e: octocrab::Error) -> GitHubError {
        self.other(what, e.to_string())
    }

    fn other(&self, what: &'static str, detail: String) -> GitHubError {
        GitHubError::Other {
            what,
            repo: self.repo.clone(),
            detail,
        }
    }

    fn bound(&self, what: &'static str, why: String) -> GitHubError {
        GitHubError::Bound {
            what,
            repo: self.repo.clone(),
            why,
        }
    }

    /// GETs `uri` (a route on the API, or a page link), or POSTs `post` to it, and reads the
    /// answer, bounded: the body of a 2xx (at most [`MAX_BODY_BYTES`]) and its `next` page link,
    /// or the error it is (its message read from at most [`MAX_ERROR_BYTES`]).
    async fn send<B: Serialize>(
        &self,
        what: &'static str,
        uri: &str,
        post: Option<&B>,
    ) -> Result<(Vec<u8>, Option<String>), GitHubError> {
        let response = match post {
            Some(body) => self.client._post(uri, Some(body)).await,
            None => self.client._get(uri).await,
        }
        .map_err(|e| self.error(what, e))?;
        let status = response.status();
        let next = next_link(response.headers());
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let limit = match status.is_success() {
            true => MAX_BODY_BYTES,
            false => MAX_ERROR_BYTES,
        };
        let read =
            read_body_at_most(response.into_body(), declared, limit, |e| e.to_string()).await;
        if !status.is_success() {
            let message = match &read {
                Ok(bytes) => error_message(bytes, status.canonical_reason()),
                Err(e) => format!("({e}; not read)"),
            };
            return Err(GitHubError::Status {
                what,
                repo: self.repo.clone(),
                status: status.as_u16(),
                message,
            });
        }
        match read {
            Ok(bytes) => Ok((bytes, next)),
            Err(e @ BodyError::TooLarge { .. }) => Err(self.bound(what, format!("{e}"))),
            Err(e @ BodyError::Transport(_)) => Err(self.other(what, e.to_string())),
        }
    }

    /// `bytes` as a `T`, or why they are not one.
    fn parse<T: DeserializeOwned>(
        &self,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<T, GitHubError> {
        serde_json::from_slice(bytes)
            .map_err(|e| self.other(what, format!("the answer is not what GitHub sends: {e}")))
    }

    /// Opens the issue, or comments on the open one with the same title (or one of
    /// `earlier_titles`, the titles earlier versions gave it); returns the issue's URL. `marker`
    /// (unique to the upload's content) goes into the issue's body and the comment, hidden, so a
    /// retry whose earlier attempt opened the issue or commented (and died before it could record
    /// so) finds it and adds nothing. All of it, retries included, within the deadline.
    pub async fn open_or_update(
        &self,
        title: &str,
        earlier_titles: &[String],
        labels: &[String],
        body: &str,
        comment: &str,
        marker: &str,
    ) -> Result<String, GitHubError> {
        let attempts = with_backoff(
            "GitHub",
            ATTEMPTS,
            FIRST_BACKOFF,
            GitHubError::retry_now,
            || self.try_open_or_update(title, earlier_titles, labels, body, comment, marker),
        );
        tokio::time::timeout(self.deadline, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(GitHubError::Deadline {
                    repo: self.repo.clone(),
                    after: self.deadline,
                })
            })
    }

    async fn try_open_or_update(
        &self,
        title: &str,
        earlier_titles: &[String],
        labels: &[String],
        body: &str,
        comment: &str,
        marker: &str,
    ) -> Result<String, GitHubError> {
        let route = format!("/repos/{}", self.repo);
        match self.find_open(title, earlier_titles).await? {
            // Opened for this very content by an earlier attempt.
            Some(issue) if issue.body.as_deref().is_some_and(|b| b.contains(marker)) => {
                Ok(issue_url(&issue.html_url))
            }
            Some(issue) => {
                let comments = format!("{route}/issues/{}/comments", issue.number);
                if !self.has_comment_with(&comments, marker).await? {
                    let text = format!("{comment}\n<!-- {marker} -->\n");
                    self.send("comment", &comments, Some(&NewComment { body: &text }))
                        .await?;
                }
                Ok(issue_url(&issue.html_url))
            }
            None => {
                let text = format!("{body}\n<!-- {marker} -->\n");
                let new = NewIssue {
                    title,
                    body: &text,
                    labels,
                };
                let (bytes, _) = self
                    .send("create issue", &format!("{route}/issues"), Some(&new))
                    .await?;
                let issue: Issue = self.parse("create issue", &bytes)?;
                Ok(issue_url(&issue.html_url))
            }
        }
    }

    /// The open import issue with exactly this title (or one of `earlier`), if any.
    async fn find_open(
        &self,
        title: &str,
        earlier: &[String],
    ) -> Result<Option<Issue>, GitHubError> {
        let label: String =
            percent_encoding::utf8_percent_encode(IMPORT_LABEL, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let route = format!(
            "/repos/{}/issues?state=open&labels={label}&per_page={PER_PAGE}",
            self.repo
        );
        self.first(&route, "list issues", |i: &Issue| {
            i.pull_request.is_none() && (i.title == title || earlier.contains(&i.title))
        })
        .await
    }

    async fn has_comment_with(&self, route: &str, marker: &str) -> Result<bool, GitHubError> {
        let route = format!("{route}?per_page={PER_PAGE}");
        let found = self
            .first(&route, "list comments", |c: &Comment| {
                c.body.as_deref().is_some_and(|b| b.contains(marker))
            })
            .await?;
        Ok(found.is_some())
    }

    /// The first item of a paginated list that matches, following GitHub's `Link` pages, at most
    /// [`MAX_PAGES`] of them: a list that goes on is a failure, not "none matches".
    async fn first<T: DeserializeOwned>(
        &self,
        route: &str,
        what: &'static str,
        matches: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, GitHubError> {
        let mut uri = route.to_owned();
        for _ in 0..MAX_PAGES {
            let (bytes, next) = self.send(what, &uri, None::<&()>).await?;
            let items: Vec<T> = self.parse(what, &bytes)?;
            if let Some(found) = items.into_iter().find(|item| matches(item)) {
                return Ok(Some(found));
            }
            match next {
                Some(next) => uri = next,
                None => return Ok(None),
            }
        }
        Err(self.bound(
            what,
            format!("more than {MAX_PAGES} pages of {PER_PAGE}, not read further"),
        ))
    }
}

/// The `next` page of a `Link` header (`<url>; rel="next", <url>; rel="last"`), if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| url.to_owned())
    })
}

/// What an error answer says: GitHub's `message`, else its text, on one line of at most 200
/// characters; the status's name when it says nothing.
fn error_message(bytes: &[u8], reason: Option<&str>) -> String {
    let said = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(ErrorBody { message: Some(m) }) => m,
        _ => String::from_utf8_lossy(bytes).into_owned(),
    };
    let said = said.trim();
    match said.is_empty() {
        true => reason.unwrap_or("no message").to_owned(),
        false => wdiv_checks::text::truncate_chars(&wdiv_checks::text::escape_control(said), 200),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn client(server: &MockServer) -> GitHub {
        GitHub::new(&server.uri(), &Secret::new("ghp_t"), "o/r").unwrap()
    }

    #[tokio::test]
    async fn an_operation_ends_at_its_deadline_whatever_its_retries() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([]))
                    .set_delay(Duration::from_secs(10)),
            )
            .mount(&server)
            .await;
        let github = client(&server).with_deadline(Duration::from_millis(500));
        let started = Instant::now();
        let e = github
            .open_or_update("t", &[], &[], "b", "c", "m")
            .await
            .unwrap_err();
        assert!(matches!(e, GitHubError::Deadline { .. }), "{e}");
        assert!(e.transient());
        assert!(e.to_string().contains("within 0.5 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn an_error_answer_is_read_to_a_few_kb_and_shown_on_one_short_line() {
        let server = MockServer::start().await;
        let long = format!("line one\nline two {}", "x".repeat(MAX_ERROR_BYTES));
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(422).set_body_string(&long[..2000]))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500).set_body_string(long))
            .mount(&server)
            .await;
        let github = client(&server);
        let e = github
            .open_or_update("t", &[], &[], "b", "c", "m")
            .await
            .unwrap_err();
        let GitHubError::Status {
            status, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*status, 422);
        assert!(message.starts_with("line one\\nline two x"), "{message}");
        assert!(message.chars().count() <= 200);
        // Over the bound, a 5xx is still a 5xx (transient), its body unread.
        let e = github
            .open_or_update("t", &[], &[], "b", "c", "m")
            .await
            .unwrap_err();
        assert!(e.transient(), "{e}");
        assert!(e.to_string().contains("larger than 8192 bytes"), "{e}");
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(next_link(&headers), None);
        headers.insert(
            "link",
            r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=4>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        headers.insert(
            "link",
            r#"<https://x/?page=1>; rel="prev""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers), None);
    }
}
