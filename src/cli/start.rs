//! What every command that acts starts with: the settings, Sentry, the clients, the run mode and
//! the metrics; and the async runtime the commands run on.

use crate::event::Event;
use crate::metrics::{Emitter, Sink};
use crate::outcome::EventOutcome;
use crate::pipeline::{self, Services};
use crate::settings::{self, Context, RunMode, Settings};

use super::args::RunModeArgs;
use super::exit::CliError;

/// Runs a command's work on a small multi-threaded runtime.
pub fn block_on(
    work: impl std::future::Future<Output = Result<u8, CliError>>,
) -> Result<u8, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Write)?
        .block_on(work)
}

/// The settings, with `ssm:` values read from SSM.
pub async fn load_settings(file: Option<&std::path::Path>) -> Result<Settings, CliError> {
    let settings = settings::load_resolved(file, &settings::process_env(), Context::Cli).await?;
    tracing::info!(?settings, "settings");
    Ok(settings)
}

/// An acting command, started: its clients, its run mode (the settings' own, with `--dry-run`
/// taken into it), where its metrics go, and Sentry's guard, kept until the end.
pub struct Started {
    pub services: Services,
    pub mode: RunMode,
    metrics: Emitter,
    _sentry: Option<sentry::ClientInitGuard>,
}

/// What every acting command starts with. `metrics`: `--metrics` (EMF lines on stderr, so that
/// stdout keeps the command's output); off for the commands without it.
pub async fn start(
    mut settings: Settings,
    mode: &RunModeArgs,
    metrics: bool,
) -> Result<Started, CliError> {
    let mode = mode.apply(&mut settings);
    let sentry = crate::telemetry::init(&settings);
    let mut emitter = Emitter::new(&settings);
    emitter.sink = if metrics { Sink::Stderr } else { Sink::Off };
    Ok(Started {
        services: Services::new(settings).await?,
        mode,
        metrics: emitter,
        _sentry: sentry,
    })
}

impl Started {
    /// Handles one event through the pipeline, with `RUN_DEADLINE_SECONDS` from now, and emits
    /// its metrics.
    pub async fn handle(&self, event: &Event) -> EventOutcome {
        let outcome = pipeline::handle_event(&self.services, event, self.services.deadline()).await;
        self.metrics.emit_event(&outcome);
        outcome
    }

    /// The AWS SDK's configuration for one more service the command talks to (SQS, Lambda):
    /// the settings' region and endpoint, unless `AWS_ENDPOINT_URL_{SERVICE}` names its own.
    pub async fn sdk_config_for(&self, service: &str) -> aws_config::SdkConfig {
        sdk_config_for(&self.services.settings, service).await
    }
}

/// [`Started::sdk_config_for`], before the command is started.
pub async fn sdk_config_for(settings: &Settings, service: &str) -> aws_config::SdkConfig {
    crate::aws::sdk_config_for_service(
        settings.aws_region.as_deref(),
        settings.aws_endpoint_url.as_deref(),
        service,
    )
    .await
}
