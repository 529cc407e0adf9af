//! What became of an event and of each upload it named: the pipeline fills these in, the entry
//! points print them and emit their metrics. They sit below both `pipeline` and `metrics`.

use std::time::Duration;

use serde::Serialize;

use crate::execute::StepResult;
use crate::plan::Plan;
use crate::report::UploadReport;

/// How long the stages of one upload took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Listing, reading and checking the files, and the council's name.
    pub check: Option<Duration>,
    /// Carrying out the plan (none on a dry run, or when the upload could not be checked).
    pub effects: Option<Duration>,
    /// The whole upload.
    pub total: Duration,
}

/// What became of one upload.
#[derive(Debug, Clone, Serialize)]
pub struct UploadOutcome {
    pub prefix: String,
    pub report: Option<UploadReport>,
    pub plan: Option<Plan>,
    /// One per plan step; empty on a dry run.
    pub results: Vec<StepResult>,
    /// Why the upload could not be checked at all.
    pub error: Option<String>,
    /// How long its stages took (for the metrics; not printed).
    #[serde(skip)]
    pub timings: Timings,
}

impl UploadOutcome {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.results.iter().any(StepResult::failed)
    }
}

/// What became of one event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventOutcome {
    pub uploads: Vec<UploadOutcome>,
    /// Records that were not work: (key, why).
    pub ignored: Vec<(String, String)>,
    /// Records refused for their key.
    pub refused: Vec<String>,
}

impl EventOutcome {
    /// The outcome of an event that named one upload alone (a staff override).
    pub fn of_upload(upload: UploadOutcome) -> EventOutcome {
        EventOutcome {
            uploads: vec![upload],
            ..EventOutcome::default()
        }
    }

    /// Every failure, one line each; empty when the invocation succeeded.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self.refused.clone();
        for upload in &self.uploads {
            if let Some(e) = &upload.error {
                failures.push(e.clone());
            }
            if let Some(plan) = &upload.plan {
                for (step, result) in plan.steps.iter().zip(&upload.results) {
                    if let Some(why) = result.why_failed() {
                        failures.push(format!(
                            "{} {}: {why}",
                            step.effect.verb(),
                            plan.target(step)
                        ));
                    }
                }
            }
        }
        failures
    }
}
