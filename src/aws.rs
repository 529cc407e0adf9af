//! The AWS SDK's shared configuration, from plain values (a region, an endpoint), so that both
//! start-up (reading `ssm:` settings before the others are validated) and the clients built from
//! the settings use one configuration. Below `storage`, `secrets` and `settings`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

/// The region when none is configured: the project's buckets are in London.
const FALLBACK_REGION: &str = "eu-west-2";

/// The AWS SDK's shared configuration: rustls with ring, timeouts on every call, and the standard
/// retry policy (backoff with jitter on 5xx, throttling and timeouts), bounded. `region` is
/// `AWS_REGION` (else `AWS_DEFAULT_REGION`, else London); `endpoint_url` is `AWS_ENDPOINT_URL`.
pub async fn sdk_config(region: Option<&str>, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    // AWS_REGION is one of our settings (Lambda always sets it); the SDK's own region chain
    // would build an IMDS client without our HTTP client, so it is not used.
    let region = region
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|r| !r.is_empty())
        })
        .unwrap_or_else(|| FALLBACK_REGION.to_owned());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(region))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// [`sdk_config`] for one service: its own `AWS_ENDPOINT_URL_{SERVICE}` wins over
/// `endpoint_url`, as the SDK documents for its environment variables.
pub async fn sdk_config_for_service(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    service: &str,
) -> aws_config::SdkConfig {
    let own = std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .ok()
        .filter(|v| !v.is_empty());
    sdk_config(region, own.as_deref().or(endpoint_url)).await
}
