//! The executor: the only place side effects happen. It performs a plan's steps in order, threads
//! their outputs along (the report it posts is the one it wrote), and keeps going past a failure
//! for the steps that do not depend on the failed one.

use bytes::Bytes;
use serde::Serialize;

use crate::event::REPORT_FILE;
use crate::plan::{Action, Disposition, Plan};
use crate::report::UploadReport;
use crate::settings::Settings;
use crate::storage::{read_small, PutCondition, Storage, StorageError};
use crate::webhook::Webhook;

/// A report larger than this in the final bucket is not ours.
const REPORT_LIMIT: usize = 16 * 1024 * 1024;
/// Rounds of read-compare-write when another run writes `report.json` at the same moment.
const REPORT_ROUNDS: usize = 4;

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum StepResult {
    Done(String),
    Previewed(String),
    Skipped(String),
    /// Not attempted because a step it depends on failed.
    NotAttempted(String),
    Failed(String),
}

impl StepResult {
    pub fn failed(&self) -> bool {
        matches!(self, StepResult::Failed(_))
    }
}

/// The real clients the executor uses.
#[derive(Debug, Clone)]
pub struct Effects<'a> {
    pub storage: &'a dyn Storage,
    pub webhook: &'a Webhook,
    pub settings: &'a Settings,
}

/// Carries out `plan` for `report`; returns one result per step, in order.
pub async fn execute(plan: &Plan, report: &UploadReport, effects: &Effects<'_>) -> Vec<StepResult> {
    let mut results = Vec::with_capacity(plan.steps.len());
    let mut copy_failed = false;
    for step in &plan.steps {
        let target = plan.target(&step.action);
        let result = match &step.disposition {
            Disposition::Skip(why) => StepResult::Skipped(why.clone()),
            Disposition::Preview(why) => StepResult::Previewed(why.clone()),
            Disposition::Do => match &step.action {
                Action::WriteReport { .. } if copy_failed => StepResult::NotAttempted(
                    "a file was not copied; the report is written only with all its files".into(),
                ),
                action => {
                    let outcome = perform(action, report, effects).await;
                    match outcome {
                        Ok(detail) => {
                            tracing::info!(action = action.verb(), target, "{detail}");
                            StepResult::Done(detail)
                        }
                        Err(why) => {
                            tracing::error!(action = action.verb(), target, "failed: {why}");
                            if matches!(action, Action::CopyFile { .. }) {
                                copy_failed = true;
                            }
                            StepResult::Failed(why)
                        }
                    }
                }
            },
        };
        results.push(result);
    }
    results
}

async fn perform(
    action: &Action,
    report: &UploadReport,
    effects: &Effects<'_>,
) -> Result<String, String> {
    match action {
        Action::CopyFile {
            from_bucket,
            to_bucket,
            key,
            etag,
        } => effects
            .storage
            .copy(from_bucket, key, to_bucket, etag)
            .await
            .map(|()| "copied".to_owned())
            .map_err(|e| e.to_string()),
        Action::WriteReport { bucket, key } => write_report(effects.storage, bucket, key, report)
            .await
            .map_err(|e| e.to_string()),
        Action::PostWebhook { url } => {
            let token = effects
                .settings
                .wdiv_api_key
                .as_ref()
                .ok_or("WDIV_API_KEY not set")?;
            effects
                .webhook
                .post(url, token, report)
                .await
                .map(|status| format!("HTTP {status}"))
                .map_err(|e| e.to_string())
        }
    }
}

/// Writes `report.json`, unless the bucket already holds a report of this upload that lists more
/// files: the events of a two-file upload can arrive, and finish, in any order.
async fn write_report(
    storage: &dyn Storage,
    bucket: &str,
    key: &str,
    report: &UploadReport,
) -> Result<String, StorageError> {
    debug_assert!(key.ends_with(REPORT_FILE));
    let body = Bytes::from(serde_json::to_vec_pretty(report).expect("a report serializes"));
    for _ in 0..REPORT_ROUNDS {
        let condition = match read_small(storage, bucket, key, REPORT_LIMIT).await? {
            None => PutCondition::IfAbsent,
            Some((info, bytes)) => {
                let listed = serde_json::from_slice::<UploadReport>(&bytes)
                    .map(|r| r.file_set.len())
                    .unwrap_or(0);
                if listed > report.file_set.len() {
                    return Ok(format!(
                        "kept the existing report, which lists {listed} files (this one lists {})",
                        report.file_set.len()
                    ));
                }
                PutCondition::IfMatch(info.etag)
            }
        };
        match storage
            .put(bucket, key, body.clone(), "application/json", condition)
            .await
        {
            Ok(_) => return Ok(format!("written ({} files)", report.file_set.len())),
            // Another run wrote it between our read and our write: read it again.
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StorageError::ConditionFailed {
        op: "PutObject",
        location: storage.location(bucket, key),
        why: format!("it kept changing under {REPORT_ROUNDS} attempts to write it"),
    })
}
