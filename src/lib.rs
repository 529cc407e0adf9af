//! wdiv-s3-trigger: checks the polling-station files councils upload to WhereDoIVote, and acts
//! on the verdict.
//!
//! Data flows one way: upload → file set → report → plan → execution. This crate holds the
//! checks ([`checks`]) and the report they produce ([`report`]); the command line is in [`cli`].

pub mod checks;
pub mod cli;
pub mod report;
pub mod upload;
