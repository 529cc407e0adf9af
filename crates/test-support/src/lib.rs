//! The test world of wdiv-s3-trigger, shared by every scenario (the root package's
//! tests/scenarios and tests/iam_enforced.rs):
//!
//! - [`fakes`]: an in-process fake of each service the program calls;
//! - [`world`]: the [`World`] a scenario runs in (the fakes, or an emulator, and the real
//!   binary as a child process, in Lambda mode too);
//! - [`harness`]: the binary run over and over, killed at a chosen request, for the crash and
//!   load scenarios;
//! - [`template`]: `deploy/template.yaml` as CloudFormation reads it.
//!
//! docs/testing.md says where a new scenario or a new fake goes.

pub mod fakes;
pub mod harness;
pub mod template;
pub mod world;

pub use world::{
    fixture, program, repo_root, sdk_client, Run, World, COUNCIL_NAME, DISTRIBUTION, GITHUB_REPO,
    GITHUB_TOKEN, SENDER, SENTRY_DSN, STAFF, WDIV_TOKEN,
};
