//! The GitHub issue that tells staff to import an upload (octocrab; `GITHUB_API_URL` makes GitHub
//! Enterprise and test fakes work). An open issue with the same title and the `Data Import` label
//! gets a comment starting `Updated` instead of a second issue.

use std::time::Duration;

use octocrab::{Octocrab, Page};
use serde::{Deserialize, Serialize};

use crate::retry::with_backoff;
use crate::vocab::Secret;

/// The label staff filter import issues on.
pub const IMPORT_LABEL: &str = "Data Import";
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
    #[error("GITHUB_API_URL or the token is not usable: {0}")]
    Config(String),
}

impl GitHubError {
    pub fn transient(&self) -> bool {
        match self {
            GitHubError::Status { status, .. } => *status >= 500 || *status == 429,
            GitHubError::Other { .. } => true,
            GitHubError::Config(_) => false,
        }
    }
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

#[derive(Serialize)]
struct ListParams<'a> {
    state: &'a str,
    labels: &'a str,
    per_page: u8,
}

/// A client for one repository.
#[derive(Clone)]
pub struct GitHub {
    client: Octocrab,
    repo: String,
    /// Where the repository's pages are: `https://github.com/{repo}` for github.com, the API's
    /// own host for GitHub Enterprise (and test fakes).
    repo_html: String,
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
        })
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
        match e {
            octocrab::Error::GitHub { source, .. } => GitHubError::Status {
                what,
                repo: self.repo.clone(),
                status: source.status_code.as_u16(),
                message: source.message,
            },
            other => GitHubError::Other {
                what,
                repo: self.repo.clone(),
                detail: other.to_string(),
            },
        }
    }

    /// Opens the issue, or comments on the open one with the same title; returns the issue's
    /// URL. `marker` (unique to the upload's content) goes into the issue's body and the
    /// comment, hidden, so a retry whose earlier attempt opened the issue or commented (and died
    /// before it could record so) finds it and adds nothing.
    pub async fn open_or_update(
        &self,
        title: &str,
        labels: &[String],
        body: &str,
        comment: &str,
        marker: &str,
    ) -> Result<String, GitHubError> {
        with_backoff(
            "GitHub",
            ATTEMPTS,
            FIRST_BACKOFF,
            GitHubError::transient,
            || self.try_open_or_update(title, labels, body, comment, marker),
        )
        .await
    }

    async fn try_open_or_update(
        &self,
        title: &str,
        labels: &[String],
        body: &str,
        comment: &str,
        marker: &str,
    ) -> Result<String, GitHubError> {
        let route = format!("/repos/{}", self.repo);
        match self.find_open(title).await? {
            // Opened for this very content by an earlier attempt.
            Some(issue) if issue.body.as_deref().is_some_and(|b| b.contains(marker)) => {
                Ok(issue_url(&issue.html_url))
            }
            Some(issue) => {
                let comments = format!("{route}/issues/{}/comments", issue.number);
                if !self.has_comment_with(&comments, marker).await? {
                    let text = format!("{comment}\n<!-- {marker} -->\n");
                    let _: serde_json::Value = self
                        .client
                        .post(&comments, Some(&NewComment { body: &text }))
                        .await
                        .map_err(|e| self.error("comment", e))?;
                }
                Ok(issue_url(&issue.html_url))
            }
            None => {
                let text = format!("{body}\n<!-- {marker} -->\n");
                let issue: Issue = self
                    .client
                    .post(
                        format!("{route}/issues"),
                        Some(&NewIssue {
                            title,
                            body: &text,
                            labels,
                        }),
                    )
                    .await
                    .map_err(|e| self.error("create issue", e))?;
                Ok(issue_url(&issue.html_url))
            }
        }
    }

    /// The open import issue with exactly this title, if any.
    async fn find_open(&self, title: &str) -> Result<Option<Issue>, GitHubError> {
        let params = ListParams {
            state: "open",
            labels: IMPORT_LABEL,
            per_page: 100,
        };
        let route = format!("/repos/{}/issues", self.repo);
        self.first(&route, &params, "list issues", |i: &Issue| {
            i.pull_request.is_none() && i.title == title
        })
        .await
    }

    async fn has_comment_with(&self, route: &str, marker: &str) -> Result<bool, GitHubError> {
        let found = self
            .first(
                route,
                &[("per_page", 100)],
                "list comments",
                |c: &Comment| c.body.as_deref().is_some_and(|b| b.contains(marker)),
            )
            .await?;
        Ok(found.is_some())
    }

    /// The first item of a paginated list that matches, following GitHub's `Link` pages.
    async fn first<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        params: &impl Serialize,
        what: &'static str,
        matches: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, GitHubError> {
        let mut page: Page<T> = self
            .client
            .get(route, Some(params))
            .await
            .map_err(|e| self.error(what, e))?;
        loop {
            if let Some(found) = page.items.drain(..).find(|item| matches(item)) {
                return Ok(Some(found));
            }
            match self
                .client
                .get_page::<T>(&page.next)
                .await
                .map_err(|e| self.error(what, e))?
            {
                Some(next) => page = next,
                None => return Ok(None),
            }
        }
    }
}
