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
    pub url: String,
    /// Sent in the `Authorization` header; never shown.
    pub token: Option<Secret>,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let config = p.settings.webhook.get();
    let post = PostWebhook {
        url: config.map(|c| c.url.to_string()).unwrap_or_default(),
        token: config.map(|c| c.token.clone()),
    };
    vec![Planned::new(post, p.settings.webhook.why_off())]
}

#[async_trait]
impl Effect for PostWebhook {
    fn verb(&self) -> &'static str {
        "post webhook"
    }

    fn target(&self, _: &Names) -> String {
        if self.url.is_empty() {
            return "(no URL)".into();
        }
        format!(
            "POST {} (Authorization: Token ****)",
            crate::http::redact_url(&self.url)
        )
    }

    fn data(&self) -> serde_json::Value {
        json!({"url": crate::http::redact_url(&self.url)})
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| super::not_configured("WDIV_API_KEY"))?;
        let status = run
            .clients
            .webhook
            .post(&self.url, token, &run.report)
            .await?;
        Ok(format!("HTTP {status}"))
    }
}
