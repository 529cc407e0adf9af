//! `override`: staff accept an upload that fails its checks (see `crate::staff_override`).

use crate::outcome::EventOutcome;

use super::args::OverrideArgs;
use super::exit::{CliError, EXIT_FAIL};
use super::output::{report_outcome, shown};
use super::start::{load_settings, start};

/// `override`: staff accept a failing upload. A refusal exits 2 with its reason; a failure to
/// read the upload or to carry out an action exits 1 (run it again: it does only what is left).
pub async fn override_upload(
    settings_file: Option<&std::path::Path>,
    args: &OverrideArgs,
) -> Result<u8, CliError> {
    use crate::staff_override::{handle, OverrideRequest};
    let request = OverrideRequest {
        prefix: args.prefix.clone(),
        reason: args.reason.clone().unwrap_or_default(),
        by: args.by.clone().unwrap_or_default(),
    };
    let settings = load_settings(settings_file).await?;
    let started = start(settings, &args.mode, false).await?;
    let services = &started.services;
    let outcome = match handle(services, &request, services.deadline()).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_refusal() => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {}", shown(&e.to_string()));
            return Ok(EXIT_FAIL);
        }
    };
    report_outcome(&[EventOutcome::of_upload(outcome)], started.mode, args.json)
}
