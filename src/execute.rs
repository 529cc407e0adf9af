//! The executor: the only place side effects happen. It walks a plan's steps in order and, for
//! each, reads the graph: a step whose dependency failed is not attempted; a step the upload's
//! [`Ledger`] records as done by an earlier run is not repeated (when its record can be trusted);
//! any other is performed and recorded. It never names a kind of effect: each effect performs
//! itself and takes its own output into the run (the issue URL into the report).

use serde::Serialize;

use crate::effects::{Clients, EffectError, FailureKind, Run};
use crate::ledger::Ledger;
use crate::plan::{Disposition, Plan};
use crate::report::UploadReport;

/// Why a step failed: its kind, what it acted on, and the cause, kept typed until shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub target: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum StepResult {
    Done(String),
    /// An earlier run did it (redelivered event, retry, concurrent run): not repeated.
    AlreadyDone(String),
    Previewed(String),
    Skipped(String),
    /// Not attempted because a step it waits for failed (or the effects record could not be
    /// written).
    NotAttempted(String),
    Failed(Failure),
}

impl StepResult {
    pub fn failed(&self) -> bool {
        matches!(self, StepResult::Failed(_) | StepResult::NotAttempted(_))
    }

    /// Why it failed, when it did.
    pub fn why_failed(&self) -> Option<String> {
        match self {
            StepResult::Failed(failure) => Some(failure.message.clone()),
            StepResult::NotAttempted(why) => Some(why.clone()),
            _ => None,
        }
    }
}

/// Carries out `plan` for `report`; returns one result per step, in order. With a ledger, what
/// is done is recorded as it is done, and what an earlier run did is skipped.
pub async fn execute(
    plan: &Plan,
    report: &UploadReport,
    clients: &Clients,
    mut ledger: Option<&mut Ledger<'_>>,
) -> Vec<StepResult> {
    let index = plan.index();
    let mut run = Run {
        clients,
        report: report.clone(),
    };
    let mut results: Vec<StepResult> = Vec::with_capacity(plan.steps.len());
    // Set when the effects record cannot be written: nothing more is done, so that nothing is
    // done twice.
    let mut stopped: Option<String> = None;
    for step in &plan.steps {
        let effect = step.effect.as_ref();
        let verb = effect.verb();
        let target = plan.target(step);
        let blocked = step
            .waits_for
            .iter()
            .find(|w| results[index[w.step.as_str()]].failed())
            .map(|w| w.because.to_owned());
        let result = match &step.disposition {
            Disposition::Skip(why) => StepResult::Skipped(why.clone()),
            Disposition::Preview(why) => StepResult::Previewed(why.clone()),
            Disposition::Do => {
                if let Some(why) = stopped.clone().or(blocked) {
                    StepResult::NotAttempted(why)
                } else if let Some(done) = ledger
                    .as_deref()
                    .and_then(|l| l.done(&step.id))
                    .map(|d| d.output.clone())
                    .filter(|output| effect.adopt(output, &mut run))
                {
                    tracing::info!(action = verb, target, "done by an earlier run");
                    StepResult::AlreadyDone(done)
                } else {
                    let performed = match effect.perform(&run).await {
                        Ok(output) if effect.adopt(&output, &mut run) => Ok(output),
                        Ok(output) => Err(EffectError::new(
                            FailureKind::Refused,
                            format!(
                                "the answer cannot be trusted: {}",
                                crate::text::escape_control(&crate::text::truncate_chars(
                                    &output, 200
                                ))
                            ),
                        )),
                        Err(e) => Err(e),
                    };
                    match performed {
                        Ok(output) => {
                            tracing::info!(action = verb, target, "{output}");
                            if let Some(ledger) = ledger.as_deref_mut() {
                                if let Err(e) = ledger.mark_done(&step.id, &output).await {
                                    tracing::error!("cannot record {verb}: {e}");
                                    stopped = Some(format!("the effects record failed: {e}"));
                                }
                            }
                            StepResult::Done(output)
                        }
                        Err(e) => {
                            let failure = Failure {
                                kind: e.kind,
                                target: target.clone(),
                                message: e.to_string(),
                            };
                            tracing::error!(
                                action = verb,
                                target,
                                kind = ?failure.kind,
                                "failed: {}",
                                failure.message
                            );
                            crate::telemetry::effect_failed(
                                &plan.prefix,
                                &report.gss,
                                verb,
                                &failure.message,
                            );
                            StepResult::Failed(failure)
                        }
                    }
                }
            }
        };
        results.push(result);
    }
    results
}
