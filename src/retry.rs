//! Bounded retries with exponential backoff, for the effects whose clients do not retry what
//! should be retried (GitHub with octocrab's retry off; CloudFront's
//! `TooManyInvalidationsInProgress`). WDIV's calls have their own loop in [`crate::http`],
//! which also honours `Retry-After`.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Calls `call` up to `attempts` times, waiting `first` and then twice as long each time, for as
/// long as `transient` says the failure is worth another try.
pub async fn with_backoff<T, E: Display, F: Future<Output = Result<T, E>>>(
    what: &'static str,
    attempts: u32,
    first: Duration,
    transient: impl Fn(&E) -> bool,
    mut call: impl FnMut() -> F,
) -> Result<T, E> {
    let mut backoff = first;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < attempts && transient(&e) => {
                tracing::info!(what, attempt, "{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}
