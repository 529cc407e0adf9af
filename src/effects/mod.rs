//! The side effects, one module each. An effect module owns its settings' keys, its
//! configuration, its client if it needs one, how it is planned (what a preview shows, why it is
//! skipped), how it is performed, and how its failures are classed. [`effect`] holds what they
//! share; [`registry`] lists them. The executor never names a kind of effect.
//!
//! Adding an effect: its module, a `pub mod` line here and a line in [`EFFECTS`] (see
//! `docs/architecture.md`, "Adding an effect").

pub mod effect;
pub mod registry;

pub mod cdn;
pub mod copy;
pub mod email;
pub mod issue;
pub mod report;
pub mod webhook;

#[cfg(test)]
pub(crate) mod tests_support;

pub(crate) use effect::not_configured;
pub use effect::{
    Client, ClientError, ClientMaker, Clients, Effect, EffectError, Entry, FailureKind, Names,
    Needed, Optional, Planned, Planning, Run, Shared, StepKind,
};
pub use registry::{clients, needs_aws, EFFECTS};
