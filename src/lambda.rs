//! Lambda mode: the same pipeline, driven by the Lambda Runtime API (`lambda_runtime`).
//!
//! The payload is taken as raw JSON so that an event that is not an S3 event gets our message, not
//! a deserializer's. An invocation with any failure ends in an error, so Lambda retries it.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::metrics::{Emitter, Sink};
use crate::outcome::EventOutcome;
use crate::pipeline::{self, Services};
use crate::staff_override::{self, OverrideRequest};

/// The time kept back from an invocation's deadline (at most a tenth of it): no step starts in
/// it, so the run can release its lease, flush Sentry and answer before Lambda stops it.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Why an invocation failed; its message is what Lambda records.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvocationError(String);

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "UploadNotHandled".into(),
            error_message: e.0,
        }
    }
}

/// Lambda mode's `main`: JSON logs, the settings (`ssm:` values read once, here: a parameter
/// that cannot be read fails the init), Sentry, the clients, then `serve`.
pub fn main() -> ExitCode {
    crate::logging::init_lambda();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let env = crate::settings::process_env();
        let settings = match crate::settings::load_resolved(
            None,
            &env,
            crate::settings::Context::Lambda,
        )
        .await
        {
            Ok(settings) => settings,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        for gap in settings.production_gaps() {
            tracing::warn!("{gap}");
        }
        let _sentry = crate::telemetry::init(&settings);
        let services = match Services::new(settings).await {
            Ok(services) => services,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        match serve(services).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("the Lambda runtime stopped: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Serves invocations until the runtime stops. Each invocation's metrics go to stdout as EMF
/// lines, where CloudWatch Logs extracts them.
pub async fn serve(services: Services) -> Result<(), lambda_runtime::Error> {
    let mut metrics = Emitter::new(&services.settings);
    metrics.sink = Sink::Stdout;
    let run = Arc::new((services, metrics));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let run = Arc::clone(&run);
        async move { invoke(&run.0, &run.1, event).await }
    }))
    .await
}

async fn invoke(
    services: &Services,
    metrics: &Emitter,
    event: LambdaEvent<Value>,
) -> Result<Value, InvocationError> {
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
    let request_id = event.context.request_id.clone();
    // The invocation's own deadline, less a margin to record and report what was done.
    let deadline = pipeline::Deadline::lambda(
        event.context.deadline,
        DEADLINE_MARGIN,
        std::time::Duration::from_secs(services.settings.run_deadline_seconds),
    );
    tracing::debug!(remaining = ?deadline.remaining(), "the invocation's deadline");
    let work = handle(services, metrics, event.payload, deadline).instrument(span);
    let result = crate::metrics::with_request_id(request_id, work).await;
    crate::telemetry::flush();
    result
}

async fn handle(
    services: &Services,
    metrics: &Emitter,
    payload: Value,
    deadline: pipeline::Deadline,
) -> Result<Value, InvocationError> {
    if let Some(request) = payload.get(staff_override::PAYLOAD_KEY) {
        return override_upload(services, metrics, request.clone(), deadline).await;
    }
    let event = crate::event::from_value(payload).map_err(|e| {
        tracing::error!("{e}");
        InvocationError(e.to_string())
    })?;
    let outcome = pipeline::handle_event(services, &event, deadline).await;
    metrics.emit_event(&outcome);
    let failures = outcome.failures();
    if !failures.is_empty() {
        return Err(InvocationError(failures.join("; ")));
    }
    Ok(json!({
        "uploads": outcome.uploads.iter().map(|u| json!({
            "prefix": u.prefix,
            "valid": u.report.as_ref().is_some_and(|r| r.all_valid()),
            "actions": u.plan.as_ref().map(|p| p.steps.iter().zip(&u.results).map(|(s, r)| json!({
                "action": s.effect.verb(),
                "target": p.target(s),
                "result": r,
            })).collect::<Vec<_>>()),
        })).collect::<Vec<_>>(),
        "ignored": outcome.ignored.len(),
    }))
}

/// A direct invocation's `override`: its outcome as JSON, or why it failed (a refusal, or an
/// action that failed, which Lambda may retry: the retry does only what is left).
async fn override_upload(
    services: &Services,
    metrics: &Emitter,
    request: Value,
    deadline: pipeline::Deadline,
) -> Result<Value, InvocationError> {
    let request =
        OverrideRequest::from_payload(request).map_err(|e| InvocationError(e.to_string()))?;
    let outcome = staff_override::handle(services, &request, deadline)
        .await
        .map_err(|e| {
            tracing::error!("{e}");
            InvocationError(e.to_string())
        })?;
    // The override's metrics (`Overrides` among them), as any upload handled has.
    metrics.emit_event(&EventOutcome::of_upload(outcome.clone()));
    staff_override::answer(&outcome).map_err(InvocationError)
}
