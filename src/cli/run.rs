//! `run`: one S3 event, from a file or stdin, handled as one Lambda invocation would.

use crate::event;

use super::args::RunArgs;
use super::exit::CliError;
use super::output::report_outcome;
use super::start::{load_settings, start};

/// `run`: one invocation, from an event file or stdin.
pub async fn run(settings_file: Option<&std::path::Path>, args: &RunArgs) -> Result<u8, CliError> {
    let settings = load_settings(settings_file).await?;
    let raw = if args.event.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
            CliError::Read {
                path: "stdin".into(),
                source,
            }
        })?;
        buf
    } else {
        std::fs::read(&args.event).map_err(|source| CliError::Read {
            path: args.event.display().to_string(),
            source,
        })?
    };
    let event = event::parse(&raw)?;
    let started = start(settings, &args.mode, args.metrics).await?;
    let outcome = started.handle(&event).await;
    report_outcome(&[outcome], started.mode, args.json)
}
