//! wdiv-s3-trigger: checks the polling-station files councils upload to WhereDoIVote, and acts
//! on the verdict.
//!
//! Data flows one way: upload → file set → report → plan → execution. The modules follow it:
//! [`event`] and [`upload`] (what arrived), [`storage`] (the buckets), [`checks`] and [`report`]
//! (the verdict), [`plan`] (what to do, as data), [`execute`] (the only place effects happen),
//! with [`pipeline`] tying them together for [`cli`] and [`lambda`].

pub mod cdn;
pub mod checks;
pub mod cli;
pub mod councils;
pub mod effects;
pub mod event;
pub mod execute;
pub mod fileset;
pub mod github;
pub mod http;
pub mod lambda;
pub mod ledger;
pub mod logging;
pub mod mail;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod retry;
pub mod settings;
pub mod storage;
pub mod telemetry;
pub mod templates;
pub mod text;
pub mod upload;
pub mod webhook;
