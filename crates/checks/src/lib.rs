//! The check engine of wdiv-s3-trigger: judges the polling-station files a council uploads to
//! WhereDoIVote, with no I/O of its own. The service (the Lambda, `check`, `run`) feeds it bytes
//! from S3, a file or stdin; a browser build feeds it a `File`'s stream.
//!
//! - One file: make a [`FileChecker`] with the file's name and [`CheckOptions`], [`begin`] it
//!   with the size when known, feed it chunks, then [`finish`] it for its [`FileReport`].
//! - An upload: [`refusals`] says which files are refused before a byte is read (names, types,
//!   counts, sizes); [`check_upload`] applies the rules about the files together (a Democracy
//!   Counts upload has two) and gives the [`UploadVerdict`].
//!
//! The EMS profiles of `profiles/*.toml` are built in ([`Profiles::embedded`]).
//!
//! [`begin`]: FileChecker::begin
//! [`finish`]: FileChecker::finish
#![warn(missing_docs)]
// Without files or threads (the browser's wasm32-unknown-unknown) the file-in-parts path is not
// built, and the joining it uses (forks, `absorb`) has no caller there.
#![cfg_attr(not(any(unix, windows)), allow(dead_code))]

mod delimited;
mod encoding;
mod engine;
mod filetype;
mod json;
// Reading a local file at offsets, on two threads: not on targets without files or threads
// (the browser build, wasm32-unknown-unknown).
#[cfg(any(unix, windows))]
mod parts;
mod profiles;
mod records;
mod report;
mod rules;
mod simd;
mod spare;
#[cfg(test)]
mod testing;
mod upload_rules;
mod vocab;

#[doc(hidden)]
pub mod fuzzing;
pub mod text;

pub use engine::{
    check_upload, missing_files, Begin, CheckOptions, FileChecker, DEFAULT_SIZE_FLOOR_EXEMPT,
    MAX_BYTES, MIN_BYTES,
};
#[cfg(any(unix, windows))]
pub use parts::check_file;
pub use profiles::{ProfileError, Profiles};
pub use records::{Capture, Flow, RecordEvent, RecordWalker};
pub use report::{
    all_valid, email_due, FileDetails, FileReport, Problem, Problems, Severity, UploadVerdict,
    MAX_ERRORS, MAX_WARNINGS,
};
pub use upload_rules::{
    name_problem, refusals, served_type, was_refused, Limits, ACCEPTED_TYPES, REFUSED_CODES,
};
pub use vocab::{Code, Date, DEMOCRACY_COUNTS, UNKNOWN_EMS, WDIV_MAX_KEY_CHARS};

/// The engine's version (this crate's), which a report's reader can quote to say which engine
/// judged: the browser page shows it beside its verdict.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
