//! POST the report to WDIV, always, whatever the verdict: the council sees it on the upload page.
//! It waits for nothing, so the council hears even when GitHub or a copy fails.

use async_trait::async_trait;
use serde_json::json;

use super::{Effect, EffectError, Names, Optional, Planned, Planning, Run};
use crate::settings::Settings;
use crate::vocab::{HttpUrl, Secret};

/// `WDIV_WEBHOOK_URL` and `WDIV_API_KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: HttpUrl,
    pub token: Secret,
}

/// The one place that decides whether the webhook is configured: its URL and a token.
pub fn config(s: &Settings) -> Optional<WebhookConfig> {
    match (&s.wdiv_webhook_url, &s.wdiv_api_key) {
        (Some(url), Some(token)) => Optional::On(WebhookConfig {
            url: url.clone(),
            token: token.clone(),
        }),
        (None, _) => Optional::Off {
            missing: "WDIV_WEBHOOK_URL",
        },
        (_, None) => Optional::Off {
            missing: "WDIV_API_KEY",
        },
    }
}

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
    vec![Planned::new(post, webhook.why_off())]
}

#[async_trait]
impl Effect for PostWebhook {
    fn verb(&self) -> &'static str {
        "post webhook"
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
        let status = run
            .clients
            .webhook
            .post(config.url.as_str(), &config.token, &run.report)
            .await?;
        Ok(format!("HTTP {status}"))
    }
}
