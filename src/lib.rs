//! wdiv-s3-trigger: checks the polling-station files councils upload to WhereDoIVote, and acts
//! on the verdict.
//!
//! Data flows one way: upload → file set → report → plan → execution, and the modules follow it
//! in layers, each importing only from the layers below it: see `docs/architecture.md` (and
//! `scripts/layers.py`, which holds the code to that list). Every module is private; what the
//! binary, the tests, the example and the fuzz targets use is the short list below.

// The Lambda future nests the AWS, GitHub and HTTP clients deeply enough to need a higher limit.
#![recursion_limit = "256"]

mod aws;
mod cdn;
mod cli;
mod councils;
mod effects;
mod event;
mod execute;
mod fileset;
#[doc(hidden)]
pub mod fuzzing;
mod github;
mod history;
mod http;
mod lambda;
mod ledger;
mod logging;
mod mail;
mod markdown;
mod metrics;
mod outcome;
mod pipeline;
mod plan;
mod report;
mod retry;
mod secrets;
mod settings;
mod staff_override;
mod storage;
mod telemetry;
mod templates;
mod upload;
mod vocab;
mod webhook;

// The two entry points: the command line, and Lambda mode.
pub use cli::main as cli_main;
pub use lambda::main as lambda_main;

// The events S3 and EventBridge send, as tests and tools build them; where the program keeps
// its own objects in the temp bucket.
pub use event::{eventbridge_object_created, object_created, INTERNAL_PREFIX};

// How often a request to WDIV is tried before it fails.
pub use http::ATTEMPTS as HTTP_ATTEMPTS;

// The settings, read as the program reads them, and the names it reads.
pub use settings::{
    load as load_settings, Context as SettingsContext, Settings, DEFAULT_SETTINGS_FILE,
    NAMES as SETTING_NAMES, SECRET_NAMES,
};

// The buckets: one trait, S3 and local folders, with the AWS SDK configured as the program does.
pub use aws::sdk_config;
pub use storage::{
    read_small, s3_client, Body, LocalStorage, ObjectInfo, PutCondition, S3Storage, Small, Storage,
    StorageError,
};
