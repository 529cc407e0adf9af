//! HTTP to WDIV (the webhook, council names): timeouts on every call, bounded retries with
//! backoff on 5xx, throttling (429) and transport failures, no redirect followed, and never more
//! than [`MAX_ERROR_BODY_BYTES`] of an error answer read. Errors name the URL, masked by
//! [`redact_url`], never a token.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The most of an error answer's body that is read (and shown, cut to 200 characters).
pub const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;

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
    /// A 3xx: redirects are not followed (a POST would become a GET with no body, or go to
    /// another origin), so the URL in the setting is wrong.
    #[error(
        "{what}: {url} answered HTTP {status}, a redirect to {location}; redirects are not \
         followed: set the URL it redirects to"
    )]
    Redirect {
        what: &'static str,
        url: String,
        status: u16,
        location: String,
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
    format!(
        ": {}",
        wdiv_checks::text::one_line(&wdiv_checks::text::truncate_chars(body, 200))
    )
}

/// The client every call shares: rustls, timeouts, our name, and no redirects followed.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wdiv-s3-trigger/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

fn transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

impl HttpError {
    /// Whether another try later may succeed: a 5xx, throttling, or the server not reached.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => StatusCode::from_u16(*status).is_ok_and(transient),
            HttpError::Redirect { .. } => false,
            HttpError::Transport { .. } => true,
        }
    }
}

/// A URL as messages and logs may show it: user-info masked (`https://****@host/…`), the query
/// masked (`?****`), the fragment dropped. Settings hold URLs such as
/// `https://user:pass@host/hook?token=…`, whose credentials must not reach a log.
///
/// Text that is not a URL with a host (a typo in a setting) is shown up to its first `@`, `?` or
/// `#`: after an `@` only `****@****` (the part before it may be credentials), after a `?` only
/// `?****`. So is text with whitespace or control characters, which the URL parser would drop
/// and a reader should see.
pub fn redact_url(url: &str) -> String {
    let plain = !url
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control());
    match reqwest::Url::parse(url) {
        Ok(parsed) if plain && parsed.has_host() => {
            let mut out = format!("{}://", parsed.scheme());
            if !parsed.username().is_empty() || parsed.password().is_some() {
                out.push_str("****@");
            }
            out.push_str(parsed.host_str().unwrap_or_default());
            if let Some(port) = parsed.port() {
                out.push_str(&format!(":{port}"));
            }
            out.push_str(parsed.path());
            if parsed.query().is_some() {
                out.push_str("?****");
            }
            out
        }
        _ => redact_text(url),
    }
}

/// [`redact_url`] for text that is not a URL: nothing after an `@`, `?` or `#` is kept, and
/// nothing before an `@` after the scheme.
fn redact_text(text: &str) -> String {
    let Some(cut) = text.find(['@', '?', '#']) else {
        return text.to_owned();
    };
    let head = &text[..cut];
    match text.as_bytes()[cut] {
        b'@' => {
            let scheme = head.find("://").map_or("", |end| &head[..end + 3]);
            format!("{scheme}****@****")
        }
        b'?' => format!("{head}?****"),
        _ => head.to_owned(),
    }
}

/// Sends the request `build` makes, retrying transient failures; a non-2xx answer is an error.
pub async fn send(
    what: &'static str,
    url: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, HttpError> {
    send_accepting(what, url, |_| false, build).await
}

/// [`send`], where `accept` says which statuses are a final answer, returned as they are and
/// never retried (a 2xx always is).
pub async fn send_accepting(
    what: &'static str,
    url: &str,
    accept: impl Fn(StatusCode) -> bool,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, HttpError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let last = attempt == ATTEMPTS;
        match build().send().await {
            Ok(response) if response.status().is_success() || accept(response.status()) => {
                return Ok(response)
            }
            Ok(response) if response.status().is_redirection() => {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map_or("(no Location)".to_owned(), |l| {
                        redact_url(&String::from_utf8_lossy(l.as_bytes()))
                    });
                return Err(HttpError::Redirect {
                    what,
                    url: redact_url(url),
                    status: response.status().as_u16(),
                    location: wdiv_checks::text::one_line(&wdiv_checks::text::truncate_chars(
                        &location, 200,
                    )),
                });
            }
            Ok(response) if transient(response.status()) && !last => {
                let wait = retry_after(&response).unwrap_or(backoff);
                tracing::info!(
                    what,
                    url = redact_url(url),
                    status = response.status().as_u16(),
                    attempt,
                    "transient failure; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = read_prefix(response, MAX_ERROR_BODY_BYTES).await;
                return Err(HttpError::Status {
                    what,
                    url: redact_url(url),
                    status,
                    body,
                });
            }
            Err(e) if !last && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                tracing::info!(what, url = redact_url(url), attempt, error = %e.without_url(), "retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
            }
            Err(e) => {
                return Err(HttpError::Transport {
                    what,
                    url: redact_url(url),
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

/// The first `limit` bytes of a body (what arrives before a transport error), as text: an
/// error answer is read only as far as a message shows it.
pub async fn read_prefix(mut response: Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - bytes.len());
                bytes.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
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
pub async fn read_at_most(response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length();
    let body = reqwest::Body::from(response);
    read_body_at_most(body, declared, limit, |e: reqwest::Error| {
        e.without_url().to_string()
    })
    .await
}

/// Reads any HTTP body (reqwest's, or octocrab's hyper body), but never more than `limit`
/// bytes of it: refused at once when its declared length (`Content-Length`) is larger, else
/// read until it passes the limit (the rest is not read: the connection is dropped).
/// `describe` says what a transport error was, without anything secret in it.
pub async fn read_body_at_most<B>(
    mut body: B,
    declared: Option<u64>,
    limit: usize,
    describe: impl Fn(B::Error) -> String,
) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Transport(describe(e)))?;
        if let Ok(chunk) = frame.into_data() {
            if bytes.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_loses_its_credentials_query_and_fragment() {
        assert_eq!(
            redact_url("https://user:pass@wdiv.example/hook?token=x#frag"),
            "https://****@wdiv.example/hook?****"
        );
        assert_eq!(
            redact_url("http://token@127.0.0.1:8080/api/councils/X.json"),
            "http://****@127.0.0.1:8080/api/councils/X.json"
        );
        assert_eq!(
            redact_url("https://:only-password@host/"),
            "https://****@host/"
        );
        // An empty query is still marked, so a reader knows one was there.
        assert_eq!(redact_url("https://host/path?"), "https://host/path?****");
        // What needs no masking is shown as it is.
        assert_eq!(
            redact_url("https://wheredoivote.co.uk/api/beta/uploads/"),
            "https://wheredoivote.co.uk/api/beta/uploads/"
        );
        assert_eq!(redact_url("ftp://x/"), "ftp://x/");
        // `@` in the path is not user-info.
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn text_that_is_not_a_url_is_cut_at_an_at_sign_or_a_query() {
        for (garbage, shown) in [
            ("not a url", "not a url"),
            ("", ""),
            ("user:secret@host", "****@****"),
            ("https//user:secret@host/x", "****@****"),
            ("https://user:secret@ho st/x", "https://****@****"),
            ("http://user:secret@[::1/x", "http://****@****"),
            ("https://host:99999/x?secret=1", "https://host:99999/x?****"),
            ("mailto:someone@secret.example?subject=secret", "****@****"),
            ("no host ?secret", "no host ?****"),
            ("no host #secret", "no host "),
            ("\u{0}\n@secret", "****@****"),
            ("é@secret?secret", "****@****"),
            ("https://host/a\nb?secret", "https://host/a\nb?****"),
            ("https://us\ter:secret@host/", "https://****@****"),
            ("https://us er:secret@host/", "https://****@****"),
        ] {
            let out = redact_url(garbage);
            assert!(!out.contains("secret"), "{garbage:?} -> {out:?}");
            assert_eq!(out, shown, "{garbage:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Whatever the text, no query, fragment, user name or password is shown, nor anything
        /// after an `@` in text that is not a URL; and it does not panic.
        #[test]
        fn nothing_after_an_at_or_a_question_mark_is_echoed(
            prefix in "(https?://)?[ -~\\PC\n\t]{0,30}",
            secret in "[a-z]{0,5}",
        ) {
            let marker = format!("SECRET{secret}");
            let at = format!("{prefix}@{marker}");
            let not_a_url = reqwest::Url::parse(&at).map_or(true, |url| !url.has_host());
            if not_a_url {
                let out = redact_url(&at);
                proptest::prop_assert!(!out.contains(&marker), "{:?} -> {:?}", at, out);
            }
            for text in [
                format!("{prefix}?{marker}"),
                format!("{prefix}#{marker}"),
                format!("https://{marker}:{marker}@host/{prefix}"),
                format!("https://{marker}@host/x?{marker}"),
                format!("https://host/{prefix}?{marker}"),
            ] {
                let out = redact_url(&text);
                proptest::prop_assert!(!out.contains(&marker), "{:?} -> {:?}", text, out);
            }
        }
    }
}
