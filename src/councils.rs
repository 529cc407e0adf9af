//! Council names, from WDIV's API: `{WDIV_API_URL}/councils/{id}.json`.
//!
//! A name makes the issue and the email readable, but it is not worth failing an upload for: on
//! any failure the id stands in for the name, and the log says why.

use serde::Deserialize;

use crate::http;
use crate::settings::{Secret, Settings};

#[derive(Debug, Clone)]
pub struct CouncilNames {
    client: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

#[derive(Deserialize)]
struct Council {
    name: String,
}

impl CouncilNames {
    pub fn new(client: reqwest::Client, settings: &Settings) -> Self {
        CouncilNames {
            client,
            base: settings.wdiv_api_url.trim_end_matches('/').to_owned(),
            token: settings.wdiv_api_key.clone(),
        }
    }

    /// The council's name, or its id when the name cannot be had.
    pub async fn name(&self, council_id: &str) -> String {
        match self.fetch(council_id).await {
            Ok(name) => name,
            Err(why) => {
                tracing::warn!(council_id, "using the council id as its name: {why}");
                council_id.to_owned()
            }
        }
    }

    async fn fetch(&self, council_id: &str) -> Result<String, String> {
        let url = format!("{}/councils/{council_id}.json", self.base);
        let response = http::send("council name", &url, || {
            let request = self.client.get(&url);
            match &self.token {
                Some(token) => request.header("Authorization", format!("Token {}", token.expose())),
                None => request,
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        let council: Council = response.json().await.map_err(|e| {
            format!(
                "{url} did not answer with a council's JSON: {}",
                e.without_url()
            )
        })?;
        let name = council.name.trim();
        if name.is_empty() {
            return Err(format!("{url} gave an empty name"));
        }
        Ok(name.to_owned())
    }
}
