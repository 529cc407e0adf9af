//! In-process fakes of the services the program calls, one per service, each an HTTP server on a
//! loopback port that keeps state a test can read back. Their self-tests, driving each fake with
//! the real client of its service, are this crate's tests/fakes/.

pub mod aws;
pub mod github;
pub mod lambda_api;
pub mod lambda_runtime;
pub mod sentry;
mod server;
pub mod sqs;
pub mod ssm;
pub mod wdiv;

pub use server::{Hook, HookVerdict};
