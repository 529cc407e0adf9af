//! Sentry, when `SENTRY_DSN` is set: panics, and every effect that still fails after its
//! retries, with the upload, council and effect as context. Nothing is sent when it is unset.

use std::time::Duration;

use crate::settings::Settings;

/// Starts Sentry if configured; keep the guard for the life of the process (dropping it flushes).
///
/// The DSN is the one the settings parsed: `sentry::init` given a DSN as text panics when it
/// does not parse, so it is never given text.
pub fn init(settings: &Settings) -> Option<sentry::ClientInitGuard> {
    let dsn = settings.sentry_dsn.as_ref()?;
    let guard = sentry::init(sentry::ClientOptions {
        dsn: Some(dsn.expose().clone()),
        environment: settings.server_environment.clone().map(Into::into),
        release: Some(concat!("wdiv-s3-trigger@", env!("CARGO_PKG_VERSION")).into()),
        ..Default::default()
    });
    if guard.is_enabled() {
        Some(guard)
    } else {
        tracing::warn!("SENTRY_DSN is set but not usable; errors are not sent to Sentry");
        None
    }
}

/// Reports an effect that failed for good.
pub fn effect_failed(upload_prefix: &str, council: &str, effect: &str, error: &str) {
    sentry::with_scope(
        |scope| {
            scope.set_tag("effect", effect);
            scope.set_tag("council", council);
            scope.set_extra("upload", upload_prefix.into());
        },
        || sentry::capture_message(&format!("{effect} failed: {error}"), sentry::Level::Error),
    );
}

/// Sends what is queued before a Lambda invocation ends (the process may be frozen after).
pub fn flush() {
    if let Some(client) = sentry::Hub::current().client() {
        client.flush(Some(Duration::from_secs(2)));
    }
}
