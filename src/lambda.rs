//! Lambda mode: the same pipeline, driven by the Lambda Runtime API (`lambda_runtime`).
//!
//! The payload is taken as raw JSON so that an event that is not an S3 event gets our message, not
//! a deserializer's. An invocation with any failure ends in an error, so Lambda retries it.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::pipeline::{self, Services};

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

/// Serves invocations until the runtime stops. Each invocation's metrics go to stdout as EMF
/// lines, where CloudWatch Logs extracts them.
pub async fn serve(mut services: Services) -> Result<(), lambda_runtime::Error> {
    services.metrics.sink = crate::metrics::Sink::Stdout;
    let services = Arc::new(services);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let services = Arc::clone(&services);
        async move { invoke(&services, event).await }
    }))
    .await
}

async fn invoke(services: &Services, event: LambdaEvent<Value>) -> Result<Value, InvocationError> {
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
    let request_id = event.context.request_id.clone();
    // The invocation's own deadline, less a margin to record and report what was done.
    let deadline = pipeline::Deadline::lambda(
        event.context.deadline,
        DEADLINE_MARGIN,
        std::time::Duration::from_secs(services.settings.run_deadline_seconds),
    );
    tracing::debug!(remaining = ?deadline.remaining(), "the invocation's deadline");
    let work = handle(services, event.payload, deadline).instrument(span);
    let result = crate::metrics::with_request_id(request_id, work).await;
    crate::telemetry::flush();
    result
}

async fn handle(
    services: &Services,
    payload: Value,
    deadline: pipeline::Deadline,
) -> Result<Value, InvocationError> {
    if let Some(request) = payload.get(crate::staff_override::PAYLOAD_KEY) {
        return crate::staff_override::invoke(services, request.clone(), deadline)
            .await
            .map_err(InvocationError);
    }
    let event = crate::event::from_value(payload).map_err(|e| {
        tracing::error!("{e}");
        InvocationError(e.to_string())
    })?;
    let outcome = pipeline::handle_event(services, &event, deadline).await;
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
