//! Council names, from WDIV's API: `{WDIV_API_URL}/councils/{id}.json`.
//!
//! A name makes the issue and the email readable, but it is not worth failing an upload for: on
//! any failure the id stands in for the name, and the log says why.

use std::time::Duration;

use serde::Deserialize;

use crate::http;
use crate::settings::{api_url, header_token, Key, Kind, Settings};
use crate::vocab::Secret;

/// Where council names come from.
pub const WDIV_API_URL: Key = Key::new(
    "WDIV_API_URL",
    Kind::Url,
    "council names, at `{WDIV_API_URL}/councils/{id}.json`",
)
.default("https://wheredoivote.co.uk/api/beta")
.rule(|url| api_url(url, "WDIV_API_KEY"));
/// The token of WDIV's API, for council names and the webhook (`Authorization: Token …`).
pub const WDIV_API_KEY: Key = Key::new(
    "WDIV_API_KEY",
    Kind::Secret,
    "the token of WDIV's API: council names and the webhook",
)
.rule(header_token);
/// The whole lookup's time, retries included; then the id stands in.
pub const COUNCIL_NAME_TIMEOUT_SECONDS: Key = Key::new(
    "COUNCIL_NAME_TIMEOUT_SECONDS",
    Kind::Number { min: 1, max: 120 },
    "the whole council-name lookup, retries included",
)
.default("10");

/// The council names' settings.
pub const KEYS: &[Key] = &[WDIV_API_URL, WDIV_API_KEY, COUNCIL_NAME_TIMEOUT_SECONDS];

/// The most of the API's answer that is read: a council is a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The most characters of a name that are kept (the longest council name is under 80).
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct CouncilNames {
    client: reqwest::Client,
    base: String,
    token: Option<Secret>,
    /// The whole lookup, retries included.
    budget: Duration,
}

#[derive(Deserialize)]
struct Council {
    name: String,
}

impl CouncilNames {
    pub fn new(client: reqwest::Client, settings: &Settings) -> Self {
        CouncilNames {
            client,
            base: (settings.values.text(&WDIV_API_URL))
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            token: settings.values.secret(&WDIV_API_KEY).cloned(),
            budget: Duration::from_secs(settings.values.number(&COUNCIL_NAME_TIMEOUT_SECONDS)),
        }
    }

    /// The council's name, or its id when the name cannot be had in time. The name comes from
    /// outside: it is cleaned of hidden characters and cut to [`MAX_NAME_CHARS`] before anyone
    /// sees it.
    pub async fn name(&self, council_id: &str) -> String {
        let fetched = match tokio::time::timeout(self.budget, self.fetch(council_id)).await {
            Ok(fetched) => fetched,
            Err(_) => Err(format!("no answer within {:?}", self.budget)),
        };
        match fetched {
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
        // Messages name the URL without its credentials or query.
        let url = http::redact_url(&url);
        let bytes = http::read_at_most(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let council: Council = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{url} did not answer with a council's JSON: {e}"))?;
        let name = wdiv_checks::text::clean_name(&council.name, MAX_NAME_CHARS);
        if name.is_empty() {
            return Err(format!("{url} gave an empty name"));
        }
        Ok(name)
    }
}
