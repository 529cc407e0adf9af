//! CloudFront: one invalidation per upload, after the copy, so the site serves the new files.
//!
//! The `CallerReference` is the upload's content id: CloudFront answers a repeated request with
//! the invalidation it already made, so a retry cannot create (and bill) a second one.
//! `TooManyInvalidationsInProgress` is CloudFront asking us to wait: it is retried with backoff.

use std::time::Duration;

use aws_sdk_cloudfront::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use crate::retry::with_backoff;
use crate::upload::KEY_PATH_SAFE;

const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    #[error("CloudFront invalidation on distribution {distribution}: {code}: {message}")]
    Service {
        distribution: String,
        code: String,
        message: String,
    },
    #[error("CloudFront invalidation on distribution {distribution} failed: {detail}")]
    Other {
        distribution: String,
        detail: String,
    },
}

#[derive(Debug, Clone)]
pub struct Cdn {
    client: aws_sdk_cloudfront::Client,
}

/// A key's path as CloudFront wants it: from the root, with unsafe characters URL-encoded. A `*`
/// is encoded too (`%2A`): CloudFront reads one only as a wildcard, and only as a path's last
/// character, so a `*` inside a file name would be refused or match other files.
pub fn cdn_path(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &KEY_PATH_SAFE.remove(b':');
    format!("/{}", percent_encoding::utf8_percent_encode(key, SET))
}

/// The path of everything under `prefix`: [`cdn_path`] of it, then the wildcard.
pub fn cdn_wildcard(prefix: &str) -> String {
    format!("{}/*", cdn_path(prefix))
}

impl Cdn {
    pub fn new(sdk: &aws_config::SdkConfig) -> Cdn {
        Cdn {
            client: aws_sdk_cloudfront::Client::new(sdk),
        }
    }

    /// Creates the invalidation (or finds the one this reference already made); returns its id.
    pub async fn invalidate(
        &self,
        distribution: &str,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<String, CdnError> {
        let other = |detail: String| CdnError::Other {
            distribution: distribution.to_owned(),
            detail,
        };
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| other(e.to_string()))?,
            )
            .caller_reference(caller_reference)
            .build()
            .map_err(|e| other(e.to_string()))?;
        // CloudFront asks us to wait while other invalidations run; the SDK does not retry it.
        let busy = |e: &CdnError| matches!(e, CdnError::Service { code, .. } if code == "TooManyInvalidationsInProgress");
        let out = with_backoff("CloudFront", ATTEMPTS, FIRST_BACKOFF, busy, || async {
            self.client
                .create_invalidation()
                .distribution_id(distribution)
                .invalidation_batch(batch.clone())
                .send()
                .await
                .map_err(|e| match e.code() {
                    Some(code) => CdnError::Service {
                        distribution: distribution.to_owned(),
                        code: code.to_owned(),
                        message: e.message().unwrap_or_default().to_owned(),
                    },
                    None => other(DisplayErrorContext(&e).to_string()),
                })
        })
        .await?;
        Ok(out
            .invalidation()
            .map(|i| i.id().to_owned())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_is_a_wildcard_only_at_the_end_of_a_prefix() {
        assert_eq!(
            cdn_path("X01/2024-05-02/t/a*b *.csv"),
            "/X01/2024-05-02/t/a%2Ab%20%2A.csv"
        );
        assert_eq!(cdn_path("X01/d/t:1/é.csv"), "/X01/d/t:1/%C3%A9.csv");
        assert_eq!(cdn_wildcard("X01/2024-05-02/t"), "/X01/2024-05-02/t/*");
        assert_eq!(cdn_wildcard("X01/d/t*"), "/X01/d/t%2A/*");
    }
}
