//! wdiv-s3-trigger: checks the polling-station files councils upload to WhereDoIVote, and acts
//! on the verdict.
//!
//! Data flows one way: upload → file set → report → plan → execution. The modules follow it:
//! `event` and `upload` (what arrived), `fileset` (which objects are checked, which refused),
//! [`storage`] (the buckets), `checks` and `report` (the verdict), `plan` (what to do, as a
//! graph of steps), `effects` (one module per side effect) and `execute` (the only place they
//! happen), with [`pipeline`] tying them together for [`cli`] and [`lambda`]. See
//! `docs/architecture.md`.
//!
//! The public API is what the binary and the tests use; the rest is crate-private.

pub(crate) mod cdn;
pub mod cli;
pub(crate) mod councils;
pub(crate) mod effects;
pub mod event;
pub(crate) mod execute;
pub(crate) mod fileset;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod github;
pub(crate) mod history;
pub mod http;
pub mod lambda;
pub(crate) mod ledger;
pub mod logging;
pub(crate) mod mail;
pub mod metrics;
pub mod pipeline;
pub(crate) mod plan;
pub mod replay;
pub(crate) mod report;
pub(crate) mod retry;
pub mod secrets;
pub mod settings;
pub mod staff_override;
pub mod storage;
pub mod telemetry;
pub(crate) mod templates;
pub(crate) mod markdown;
pub(crate) mod upload;
pub(crate) mod vocab;
pub(crate) mod webhook;
