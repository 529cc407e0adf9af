//! HTTP to WDIV (and, later, other services): timeouts on every call, bounded retries with
//! backoff on 5xx, throttling (429) and transport failures. Errors name the URL, never a token.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a call failed, after retries where retrying made sense.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{what}: {url} answered HTTP {status}{}", excerpt(body))]
    Status {
        what: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{what}: cannot reach {url} ({detail})")]
    Transport {
        what: &'static str,
        url: String,
        detail: String,
    },
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let cut: String = body.chars().take(200).collect();
    format!(": {cut}")
}

/// The client every call shares: rustls, timeouts, and our name.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("wdiv-s3-trigger/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

fn transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The URL without its query string, for messages.
fn shown(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Sends the request `build` makes, retrying transient failures; a non-2xx answer is an error.
pub async fn send(
    what: &'static str,
    url: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, HttpError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let last = attempt == ATTEMPTS;
        match build().send().await {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) if transient(response.status()) && !last => {
                let wait = retry_after(&response).unwrap_or(backoff);
                tracing::info!(
                    what,
                    url = shown(url),
                    status = response.status().as_u16(),
                    attempt,
                    "transient failure; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                return Err(HttpError::Status {
                    what,
                    url: shown(url),
                    status,
                    body,
                });
            }
            Err(e) if !last && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                tracing::info!(what, url = shown(url), attempt, error = %e.without_url(), "retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
            }
            Err(e) => {
                return Err(HttpError::Transport {
                    what,
                    url: shown(url),
                    detail: e.without_url().to_string(),
                })
            }
        }
        attempt += 1;
        backoff *= 2;
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the answer was cut off ({0})")]
    Transport(String),
}

/// Reads a response's body, but never more than `limit` bytes of it.
pub async fn read_at_most(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
