//! POST the report to WDIV, always, whatever the verdict: the council sees it on the upload page.
//! It waits for nothing, so the council hears even when GitHub or a copy fails.

use async_trait::async_trait;
use serde_json::json;

use super::{
    ClientMaker, Effect, EffectError, Entry, Names, Needed, Optional, Planned, Planning, Run,
    StepKind,
};
use crate::councils::WDIV_API_KEY;
use crate::settings::{Key, Kind, Settings};
use crate::vocab::{HttpUrl, Secret};
use crate::webhook::Webhook;

/// Its step.
pub const POST_WEBHOOK: StepKind = StepKind::new("post webhook");

pub const WDIV_WEBHOOK_URL: Key = Key::new(
    "WDIV_WEBHOOK_URL",
    Kind::Url,
    "where the report is posted, with `Authorization: Token {WDIV_API_KEY}`",
);

/// The webhook, in the registry.
pub const EFFECT: Entry = Entry {
    keys: &[WDIV_WEBHOOK_URL],
    plan,
    client: Some(ClientMaker {
        wanted: |s| config(s).get().is_some(),
        aws: false,
        make: |_, shared| Ok(std::sync::Arc::new(Webhook::new(shared.http.clone()))),
    }),
    production: Some(Needed {
        what: "the webhook to WDIV",
        keys: &[WDIV_WEBHOOK_URL, WDIV_API_KEY],
    }),
};

/// `WDIV_WEBHOOK_URL` and `WDIV_API_KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: HttpUrl,
    pub token: Secret,
}

/// The one place that decides whether the webhook is configured: its URL and a token.
pub fn config(s: &Settings) -> Optional<WebhookConfig> {
    match (
        s.values.url(&WDIV_WEBHOOK_URL),
        s.values.secret(&WDIV_API_KEY),
    ) {
        (Some(url), Some(token)) => Optional::On(WebhookConfig {
            url: url.clone(),
            token: token.clone(),
        }),
        (None, _) => Optional::Off {
            missing: WDIV_WEBHOOK_URL.name,
        },
        (_, None) => Optional::Off {
            missing: WDIV_API_KEY.name,
        },
    }
}

/// The output (shown, and recorded in the ledger) of a failing report answered 500.
pub const FAILING_ANSWERED_500: &str = "HTTP 500, taken as delivered: WhereDoIVote stores a \
    failing report, then answers 500, so it is not posted again";
/// The output of an overridden report answered 500.
pub const OVERRIDE_ANSWERED_500: &str = "HTTP 500, taken as delivered: WhereDoIVote keeps the \
    upload's earlier failing files (it replaces them only with a report of more files), so the \
    site keeps its earlier verdict and opens no pull request; import from the GitHub issue and \
    the final bucket";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostWebhook {
    /// The URL and the token sent in the `Authorization` header (never shown); absent when the
    /// webhook is not configured (then skipped).
    pub config: Option<WebhookConfig>,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let webhook = config(p.settings);
    let post = PostWebhook {
        config: webhook.get().cloned(),
    };
    // The report carries the issue's URL (`github_issue`): the webhook waits for the issue step,
    // which GitHub's deadline bounds, and is posted without the link when that step fails.
    vec![Planned::new(post, webhook.why_off()).after_even_if_failed(
        super::issue::OPEN_ISSUE,
        "posted without the GitHub issue's link, as the issue step did not succeed",
    )]
}

#[async_trait]
impl Effect for PostWebhook {
    fn kind(&self) -> StepKind {
        POST_WEBHOOK
    }

    fn target(&self, _: &Names) -> String {
        match &self.config {
            None => "(no URL)".into(),
            Some(c) => format!(
                "POST {} (Authorization: Token ****)",
                crate::http::redact_url(c.url.as_str())
            ),
        }
    }

    fn data(&self) -> serde_json::Value {
        json!({"url": self.config.as_ref().map(|c| crate::http::redact_url(c.url.as_str()))})
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let config = self
            .config
            .as_ref()
            .ok_or_else(|| super::not_configured("the webhook"))?;
        let webhook =
            (run.clients.get::<Webhook>()).ok_or_else(|| super::not_configured("the webhook"))?;
        let status = webhook
            .post(config.url.as_str(), &config.token, &run.report)
            .await?;
        Ok(match status {
            // Only a report the site stores before it fails gets here with a 500
            // (`crate::webhook::site_stores_then_fails`).
            500 if run.report.extra.staff_override.is_some() => OVERRIDE_ANSWERED_500.to_owned(),
            500 => FAILING_ANSWERED_500.to_owned(),
            _ => format!("HTTP {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{clients, report, settings};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn without_a_url_or_a_token_it_is_skipped_naming_the_missing_setting() {
        let none = settings(&[]);
        assert_eq!(config(&none).why_off().unwrap(), "WDIV_WEBHOOK_URL not set");
        let url_only = settings(&[("WDIV_WEBHOOK_URL", "https://wdiv.example/hook")]);
        assert_eq!(config(&url_only).why_off().unwrap(), "WDIV_API_KEY not set");
    }

    #[test]
    fn the_preview_masks_the_token_and_the_url_credentials() {
        let s = settings(&[
            ("WDIV_WEBHOOK_URL", "https://user:pw@wdiv.example/hook?k=v"),
            ("WDIV_API_KEY", "tok-secret"),
        ]);
        let post = PostWebhook {
            config: config(&s).get().cloned(),
        };
        let shown = format!(
            "{} {} {:?}",
            post.target(&Names::default()),
            post.data(),
            post
        );
        assert!(
            shown.contains("POST https://****@wdiv.example/hook?****"),
            "{shown}"
        );
        for secret in ["tok-secret", "pw@", "k=v"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[tokio::test]
    async fn it_posts_the_report_with_the_token_and_says_the_status() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("authorization", "Token tok-secret"))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let s = settings(&[
            ("WDIV_WEBHOOK_URL", &format!("{}/hook", server.uri())),
            ("WDIV_API_KEY", "tok-secret"),
        ]);
        let post = PostWebhook {
            config: config(&s).get().cloned(),
        };
        let (_dir, clients) = clients();
        let run = Run {
            clients: &clients,
            report: report(true),
        };
        assert_eq!(post.perform(&run).await.unwrap(), "HTTP 201");
        let body: serde_json::Value =
            serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
        assert_eq!(body["gss"], "X01");
    }
}
