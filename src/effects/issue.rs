//! Open the import issue on GitHub, or comment on the open one with the same title. Its URL goes
//! into `report.json` and the webhook, so it runs first.

use async_trait::async_trait;
use serde_json::json;

use super::{
    not_configured, ClientError, ClientMaker, Effect, EffectError, Entry, FailureKind, Names,
    Needed, Optional, Planned, Planning, Run, StepKind,
};
use crate::github::GitHub;
use crate::settings::{api_url, header_token, Key, Kind, Settings};
use crate::templates::render;
use crate::vocab::{HttpUrl, RepoName, Secret};

/// Its step.
pub const OPEN_ISSUE: StepKind = StepKind::new("open issue");

pub const GITHUB_REPO: Key = Key::new(
    "GITHUB_REPO",
    Kind::Plain,
    "the repository import issues are opened in, owner/name",
)
.rule(owner_name);
pub const GITHUB_API_KEY: Key = Key::new(
    "GITHUB_API_KEY",
    Kind::Secret,
    "the token import issues are opened with",
)
.rule(header_token);
pub const GITHUB_API_URL: Key = Key::new(
    "GITHUB_API_URL",
    Kind::Url,
    "GitHub's API: GitHub Enterprise, or a test fake",
)
.default("https://api.github.com")
.rule(|url| api_url(url, "GITHUB_API_KEY"));

/// The import issue, in the registry.
pub const EFFECT: Entry = Entry {
    keys: &[GITHUB_REPO, GITHUB_API_KEY, GITHUB_API_URL],
    plan,
    client: Some(ClientMaker {
        wanted: |s| config(s).get().is_some(),
        aws: false,
        make: |s, _| match config(s) {
            Optional::On(g) => GitHub::new(g.api_url.as_str(), &g.token, g.repo.as_str())
                .map(|github| std::sync::Arc::new(github) as super::Client)
                .map_err(|e| ClientError(e.into())),
            Optional::Off { missing } => Err(ClientError(format!("{missing} not set").into())),
        },
    }),
    production: Some(Needed {
        what: "the GitHub issue",
        keys: &[GITHUB_REPO, GITHUB_API_KEY],
    }),
};

fn owner_name(repo: &str) -> Result<(), String> {
    let parts: Vec<&str> = repo.split('/').collect();
    match parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
        true => Err("must be owner/name".to_owned()),
        false => Ok(()),
    }
}

/// The label staff filter import issues on, and the one that says it is ready to import.
pub const ISSUE_LABELS: [&str; 2] = [crate::github::IMPORT_LABEL, "ready"];

/// `GITHUB_REPO`, `GITHUB_API_KEY` and `GITHUB_API_URL`: where issues go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    pub api_url: HttpUrl,
    pub repo: RepoName,
    pub token: Secret,
}

/// The one place that decides whether GitHub is configured: the repository and a token.
pub fn config(s: &Settings) -> Optional<GitHubConfig> {
    let v = &s.values;
    match (
        v.text(&GITHUB_REPO),
        v.secret(&GITHUB_API_KEY),
        v.url(&GITHUB_API_URL),
    ) {
        (Some(repo), Some(token), Some(api_url)) => Optional::On(GitHubConfig {
            api_url: api_url.clone(),
            repo: RepoName::new(repo),
            token: token.clone(),
        }),
        (None, _, _) => Optional::Off {
            missing: GITHUB_REPO.name,
        },
        (_, None, _) => Optional::Off {
            missing: GITHUB_API_KEY.name,
        },
        (_, _, None) => Optional::Off {
            missing: GITHUB_API_URL.name,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIssue {
    /// Absent when GitHub is not configured (the step is then skipped).
    pub repo: Option<RepoName>,
    pub title: String,
    /// Titles the same issue was opened with by earlier versions (the council name as it came,
    /// not neutralised), when they differ: an open issue with one of them is this upload's too.
    pub earlier_titles: Vec<String>,
    pub labels: Vec<String>,
    pub body: String,
    pub comment: String,
    /// Unique to the upload's content: a retried comment finds it and is not repeated.
    pub marker: String,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let s = p.settings;
    let max = crate::councils::MAX_NAME_CHARS;
    let name = wdiv_checks::text::clean_name(&p.report.council_name, max);
    let title_for = |name: &str| {
        format!(
            "{}Import {}-{name} for {}",
            if s.is_test_instance() { "TEST " } else { "" },
            p.report.gss,
            p.report.election_date
        )
    };
    let title = title_for(&wdiv_checks::text::truncate_chars(
        &crate::markdown::github_title(&name),
        max,
    ));
    // Issues opened before the name was neutralised have it as it was: still theirs.
    let earlier = title_for(&name);
    let earlier_titles = match earlier == title {
        true => Vec::new(),
        false => vec![earlier],
    };
    let github = config(s);
    let skip = p.unless_valid().or_else(|| github.why_off());
    let effect = OpenIssue {
        repo: github.get().map(|g| g.repo.clone()),
        title,
        earlier_titles,
        labels: ISSUE_LABELS.iter().map(|l| l.to_string()).collect(),
        body: render("issue_body.md", &p.context),
        comment: render("issue_comment.md", &p.context),
        marker: format!("wdiv-s3-trigger:{}", p.content_id),
    };
    vec![Planned::new(effect, skip)]
}

#[async_trait]
impl Effect for OpenIssue {
    fn kind(&self) -> StepKind {
        OPEN_ISSUE
    }

    fn target(&self, _: &Names) -> String {
        let repo = self.repo.as_ref().map_or("(not set)", RepoName::as_str);
        format!("{repo}: {:?} [{}]", self.title, self.labels.join(", "))
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "repo": self.repo.as_ref().map(RepoName::as_str), "title": self.title,
            "earlier_titles": self.earlier_titles, "labels": self.labels, "body": self.body,
            "comment": self.comment, "marker": self.marker,
        })
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let github = (run.clients.get::<GitHub>()).ok_or_else(|| not_configured("GitHub"))?;
        github
            .open_or_update(
                &self.title,
                &self.earlier_titles,
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
        let trusted = (run.clients.get::<GitHub>()).is_some_and(|g| g.is_issue_url(output));
        if trusted {
            run.report.github_issue = output.to_owned();
        } else {
            tracing::warn!(
                output = wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(
                    output, 200
                )),
                "not an issue of {}; not used",
                self.repo
                    .as_ref()
                    .map_or("the repository", RepoName::as_str)
            );
        }
        trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{clients, planning, report, settings};

    const GITHUB: &[(&str, &str)] = &[
        ("GITHUB_REPO", "DemocracyClub/UK-Polling-Stations"),
        ("GITHUB_API_KEY", "ghp_token"),
    ];

    #[test]
    fn the_issue_is_planned_for_a_valid_upload_with_the_contract_title() {
        let mut env = GITHUB.to_vec();
        env.push(("SERVER_ENVIRONMENT", "staging"));
        let mut r = report(true);
        r.council_name = "Some\nwhere \u{202e}Council".into();
        let steps = plan(&planning(&r, &settings(&env)));
        assert_eq!(steps[0].skip, None);
        assert_eq!(
            steps[0].effect.data()["title"],
            "TEST Import X01-Some where Council for 2024-05-02"
        );
        assert_eq!(
            steps[0].effect.data()["body"],
            "EMS: unknown\nFiles:\n- `X01/2024-05-02/t/a.csv`\n"
        );
        assert_eq!(steps[0].effect.data()["earlier_titles"], json!([]));
        assert!(steps[0].after.is_empty());
        let unset = plan(&planning(&r, &settings(&GITHUB[..1])));
        assert_eq!(unset[0].skip.as_deref(), Some("GITHUB_API_KEY not set"));
        let failed = report(false);
        let invalid = plan(&planning(&failed, &settings(GITHUB)));
        assert_eq!(
            invalid[0].skip.as_deref(),
            Some("the upload failed its checks")
        );
    }

    #[test]
    fn the_council_name_is_neutralised_in_the_title_and_the_old_title_still_matches() {
        let mut r = report(true);
        r.council_name = "Tendring `x` #1 @octocat".into();
        let steps = plan(&planning(&r, &settings(GITHUB)));
        let data = steps[0].effect.data();
        assert_eq!(
            data["title"],
            "Import X01-Tendring 'x' No.1 ＠octocat for 2024-05-02"
        );
        assert_eq!(
            data["earlier_titles"],
            json!(["Import X01-Tendring `x` #1 @octocat for 2024-05-02"])
        );
    }

    #[tokio::test]
    async fn only_an_issue_of_the_configured_repository_is_taken_into_the_report() {
        let s = settings(GITHUB);
        let g = config(&s).get().cloned().unwrap();
        let (_dir, mut clients) = clients();
        clients.insert(std::sync::Arc::new(
            crate::github::GitHub::new(g.api_url.as_str(), &g.token, g.repo.as_str()).unwrap(),
        ));
        let mut run = Run {
            clients: &clients,
            report: report(true),
        };
        let r = report(true);
        let issue = plan(&planning(&r, &s)).remove(0).effect;
        for forged in [
            "https://evil.example/phish",
            "https://github.com/DemocracyClub/Other/issues/1",
            "https://github.com/DemocracyClub/UK-Polling-Stations/issues/1/../../x",
            "https://github.com/DemocracyClub/UK-Polling-Stations/issues/1?x=y",
        ] {
            assert!(!issue.adopt(forged, &mut run), "{forged}");
        }
        assert_eq!(run.report.github_issue, "");
        let real = "https://github.com/DemocracyClub/UK-Polling-Stations/issues/42";
        assert!(issue.adopt(real, &mut run));
        assert_eq!(run.report.github_issue, real);
    }
}
