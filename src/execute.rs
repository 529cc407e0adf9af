//! The executor: the only place side effects happen. It performs a plan's steps in order, threads
//! their outputs along (the issue URL goes into `report.json` and the webhook), records each done
//! effect in the upload's [`Ledger`] so no retry or concurrent run repeats it, and keeps going past
//! a failure for the steps that do not depend on the failed one.

use bytes::Bytes;
use serde::Serialize;

use crate::cdn::Cdn;
use crate::event::REPORT_FILE;
use crate::github::GitHub;
use crate::ledger::Ledger;
use crate::mail::Mailer;
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
    /// An earlier run did it (redelivered event, retry, concurrent run): not repeated.
    AlreadyDone(String),
    Previewed(String),
    Skipped(String),
    /// Not attempted because a step it depends on failed.
    NotAttempted(String),
    Failed(String),
}

impl StepResult {
    pub fn failed(&self) -> bool {
        matches!(self, StepResult::Failed(_) | StepResult::NotAttempted(_))
    }
}

/// The real clients the executor uses; an effect's client is absent when it is not configured
/// (the plan then skips it).
#[derive(Debug, Clone)]
pub struct Effects<'a> {
    pub storage: &'a dyn Storage,
    pub webhook: &'a Webhook,
    pub github: Option<&'a GitHub>,
    pub cdn: Option<&'a Cdn>,
    pub mailer: Option<&'a Mailer>,
    pub settings: &'a Settings,
}

/// Carries out `plan` for `report`; returns one result per step, in order.
pub async fn execute(
    plan: &Plan,
    report: &UploadReport,
    effects: &Effects<'_>,
    mut ledger: Option<&mut Ledger<'_>>,
) -> Vec<StepResult> {
    let mut results = Vec::with_capacity(plan.steps.len());
    let mut report = report.clone();
    let mut issue_failed = false;
    let mut copy_failed = false;
    let mut report_failed = false;
    let mut stopped: Option<String> = None;
    for step in &plan.steps {
        let action = &step.action;
        let target = plan.target(action);
        let blocked = match action {
            Action::WriteReport { .. } if copy_failed => {
                Some("a file was not copied; the report is written only with all its files")
            }
            Action::WriteReport { .. } if issue_failed => {
                Some("the issue was not opened; the report carries its URL")
            }
            Action::Invalidate { .. } if copy_failed || report_failed => {
                Some("the files or the report were not written")
            }
            _ => None,
        };
        let result = match &step.disposition {
            Disposition::Skip(why) => StepResult::Skipped(why.clone()),
            Disposition::Preview(why) => StepResult::Previewed(why.clone()),
            Disposition::Do => {
                if let Some(why) = &stopped {
                    StepResult::NotAttempted(why.clone())
                } else if let Some(why) = blocked {
                    StepResult::NotAttempted(why.to_owned())
                } else if let Some(done) =
                    ledger.as_deref().and_then(|l| l.done(&action.effect_id()))
                {
                    tracing::info!(action = action.verb(), target, "done by an earlier run");
                    StepResult::AlreadyDone(done.output.clone())
                } else {
                    match perform(action, &report, effects).await {
                        Ok(output) => {
                            tracing::info!(action = action.verb(), target, "{output}");
                            if let Some(ledger) = ledger.as_deref_mut() {
                                if let Err(e) = ledger.mark_done(&action.effect_id(), &output).await
                                {
                                    tracing::error!("cannot record {}: {e}", action.verb());
                                    stopped = Some(format!("the effects record failed: {e}"));
                                }
                            }
                            StepResult::Done(output)
                        }
                        Err(why) => {
                            tracing::error!(action = action.verb(), target, "failed: {why}");
                            crate::telemetry::effect_failed(
                                &plan.prefix,
                                &report.gss,
                                action.verb(),
                                &why,
                            );
                            StepResult::Failed(why)
                        }
                    }
                }
            }
        };
        let ok = matches!(result, StepResult::Done(_) | StepResult::AlreadyDone(_));
        match action {
            Action::OpenIssue { .. } if ok => {
                if let StepResult::Done(url) | StepResult::AlreadyDone(url) = &result {
                    report.github_issue = url.clone();
                }
            }
            Action::OpenIssue { .. } => issue_failed = result.failed(),
            Action::CopyFile { .. } => copy_failed |= result.failed(),
            Action::WriteReport { .. } => report_failed = result.failed(),
            _ => {}
        }
        results.push(result);
    }
    results
}

async fn perform(
    action: &Action,
    report: &UploadReport,
    effects: &Effects<'_>,
) -> Result<String, String> {
    let missing = |what: &str| format!("{what} is not configured");
    match action {
        Action::OpenIssue {
            title,
            labels,
            body,
            comment,
            marker,
            ..
        } => {
            let github = effects.github.ok_or_else(|| missing("GitHub"))?;
            github
                .open_or_update(title, labels, body, comment, marker)
                .await
                .map_err(|e| e.to_string())
        }
        Action::CopyFile {
            from_bucket,
            to_bucket,
            key,
            etag,
            content_type,
        } => effects
            .storage
            .copy(from_bucket, key, to_bucket, etag, content_type)
            .await
            .map(|()| "copied".to_owned())
            .map_err(|e| e.to_string()),
        Action::WriteReport { bucket, key } => write_report(effects.storage, bucket, key, report)
            .await
            .map_err(|e| e.to_string()),
        Action::Invalidate {
            distribution_id,
            paths,
            caller_reference,
        } => {
            let cdn = effects.cdn.ok_or_else(|| missing("CloudFront"))?;
            cdn.invalidate(distribution_id, paths, caller_reference)
                .await
                .map(|id| format!("invalidation {id}"))
                .map_err(|e| e.to_string())
        }
        Action::SendEmail {
            from,
            to,
            subject,
            body,
            ..
        } => {
            let mailer = effects.mailer.ok_or_else(|| missing("SES"))?;
            mailer
                .send(from, to, subject, body)
                .await
                .map(|id| format!("sent (message {id})"))
                .map_err(|e| e.to_string())
        }
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
