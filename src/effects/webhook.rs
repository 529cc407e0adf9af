//! POST the report to WDIV, always, whatever the verdict: the council sees it on the upload page.
//! It waits for nothing, so the council hears even when GitHub or a copy fails.

use async_trait::async_trait;
use serde_json::json;

use super::{Effect, EffectError, Names, Planned, Planning, Run};
use crate::settings::{HttpUrl, Secret};

/// `WDIV_WEBHOOK_URL` and `WDIV_API_KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: HttpUrl,
    pub token: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostWebhook {
    /// The URL and the token sent in the `Authorization` header (never shown); absent when the
    /// webhook is not configured (then skipped).
    pub config: Option<WebhookConfig>,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let post = PostWebhook {
        config: p.settings.webhook.get().cloned(),
    };
    vec![Planned::new(post, p.settings.webhook.why_off())]
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
