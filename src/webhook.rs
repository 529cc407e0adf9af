//! The WDIV webhook: the report, POSTed as JSON with `Authorization: Token …`, so the council
//! sees the verdict on the upload page.

use crate::http::{self, HttpError};
use crate::report::UploadReport;
use crate::settings::Secret;

#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(client: reqwest::Client) -> Self {
        Webhook { client }
    }

    /// Posts the report; returns the HTTP status.
    pub async fn post(
        &self,
        url: &str,
        token: &Secret,
        report: &UploadReport,
    ) -> Result<u16, HttpError> {
        let response = http::send("webhook", url, || {
            self.client
                .post(url)
                .header("Authorization", format!("Token {}", token.expose()))
                .json(report)
        })
        .await?;
        Ok(response.status().as_u16())
    }
}
