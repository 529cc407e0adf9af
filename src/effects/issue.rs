//! Open the import issue on GitHub, or comment on the open one with the same title. Its URL goes
//! into `report.json` and the webhook, so it runs first.

use async_trait::async_trait;
use serde_json::json;

use super::{
    not_configured, Effect, EffectError, FailureKind, Names, Optional, Planned, Planning, Run,
};
use crate::settings::Settings;
use crate::templates::render;
use crate::vocab::{RepoName, Secret};

/// The label staff filter import issues on, and the one that says it is ready to import.
pub const ISSUE_LABELS: [&str; 2] = [crate::github::IMPORT_LABEL, "ready"];

/// `GITHUB_REPO`, `GITHUB_API_KEY` and `GITHUB_API_URL`: where issues go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    pub api_url: crate::vocab::HttpUrl,
    pub repo: RepoName,
    pub token: Secret,
}

/// The one place that decides whether GitHub is configured: the repository and a token.
pub fn config(s: &Settings) -> Optional<GitHubConfig> {
    match (&s.github_repo, &s.github_api_key) {
        (Some(repo), Some(token)) => Optional::On(GitHubConfig {
            api_url: s.github_api_url.clone(),
            repo: repo.clone(),
            token: token.clone(),
        }),
        (None, _) => Optional::Off {
            missing: "GITHUB_REPO",
        },
        (_, None) => Optional::Off {
            missing: "GITHUB_API_KEY",
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIssue {
    /// Absent when GitHub is not configured (the step is then skipped).
    pub repo: Option<RepoName>,
    pub title: String,
    pub labels: Vec<String>,
    pub body: String,
    pub comment: String,
    /// Unique to the upload's content: a retried comment finds it and is not repeated.
    pub marker: String,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let s = p.settings;
    let title = format!(
        "{}Import {}-{} for {}",
        if s.is_test_instance() { "TEST " } else { "" },
        p.report.gss,
        crate::text::clean_name(&p.report.council_name, crate::councils::MAX_NAME_CHARS),
        p.report.election_date
    );
    let github = config(s);
    let skip = p.unless_valid().or_else(|| github.why_off());
    let effect = OpenIssue {
        repo: github.get().map(|g| g.repo.clone()),
        title,
        labels: ISSUE_LABELS.iter().map(|l| l.to_string()).collect(),
        body: render("issue_body.md", &p.context),
        comment: render("issue_comment.md", &p.context),
        marker: format!("wdiv-s3-trigger:{}", p.content_id),
    };
    vec![Planned::new(effect, skip)]
}

#[async_trait]
impl Effect for OpenIssue {
    fn verb(&self) -> &'static str {
        "open issue"
    }

    fn target(&self, _: &Names) -> String {
        let repo = self.repo.as_ref().map_or("(not set)", RepoName::as_str);
        format!("{repo}: {:?} [{}]", self.title, self.labels.join(", "))
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "repo": self.repo.as_ref().map(RepoName::as_str), "title": self.title, "labels": self.labels, "body": self.body,
            "comment": self.comment, "marker": self.marker,
        })
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let github = run
            .clients
            .github
            .as_ref()
            .ok_or_else(|| not_configured("GitHub"))?;
        github
            .open_or_update(
                &self.title,
                &self.labels,
                &self.body,
                &self.comment,
                &self.marker,
            )
            .await
            .map_err(|e| {
                let kind = match e.transient() {
                    true => FailureKind::Transient,
                    false => FailureKind::Permanent,
                };
                EffectError::new(kind, e)
            })
    }

    /// The URL goes into `report.json` and the webhook: only an issue of the configured
    /// repository on the configured GitHub is taken, whoever says so.
    fn adopt(&self, output: &str, run: &mut Run<'_>) -> bool {
        let trusted = run
            .clients
            .github
            .as_ref()
            .is_some_and(|g| g.is_issue_url(output));
        if trusted {
            run.report.github_issue = output.to_owned();
        } else {
            tracing::warn!(
                output = crate::text::escape_control(&crate::text::truncate_chars(output, 200)),
                "not an issue of {}; not used",
                self.repo
                    .as_ref()
                    .map_or("the repository", RepoName::as_str)
            );
        }
        trusted
    }
}
