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
use crate::storage::{read_small, PutCondition, Small, Storage, StorageError};
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
                } else if let Some(done) = ledger
                    .as_deref()
                    .and_then(|l| l.done(&action.effect_id()))
                    .filter(|done| trusted_output(action, &done.output, effects))
                {
                    tracing::info!(action = action.verb(), target, "done by an earlier run");
                    StepResult::AlreadyDone(done.output.clone())
                } else {
                    let performed = perform(action, &report, effects).await.and_then(|output| {
                        match trusted_output(action, &output, effects) {
                            true => Ok(output),
                            false => Err(format!(
                                "GitHub answered with an issue URL outside {}: {}",
                                effects
                                    .settings
                                    .github_repo
                                    .as_deref()
                                    .unwrap_or("the repository"),
                                crate::text::escape_control(&crate::text::truncate_chars(
                                    &output, 200
                                ))
                            )),
                        }
                    });
                    match performed {
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

/// Whether an effect's output can be used: an issue URL goes into `report.json` and the webhook,
/// so it must be an issue of the configured repository, whether GitHub just answered it or a
/// record in the bucket (which others can write) says an earlier run got it.
fn trusted_output(action: &Action, output: &str, effects: &Effects<'_>) -> bool {
    match action {
        Action::OpenIssue { .. } => {
            let trusted = effects.github.is_some_and(|g| g.is_issue_url(output));
            if !trusted {
                tracing::warn!(
                    output = crate::text::escape_control(&crate::text::truncate_chars(output, 200)),
                    "not an issue of the configured repository; not used"
                );
            }
            trusted
        }
        _ => true,
    }
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
        Action::WriteReport { bucket, key } => write_report(
            effects.storage,
            bucket,
            key,
            report,
            effects.settings.max_files_per_upload,
        )
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
/// files: the events of a two-file upload can arrive, and finish, in any order. The bucket's
/// report is kept only when it is this upload's and its files are there (see [`keep_existing`]);
/// one that is not, or is too large or malformed, is replaced.
async fn write_report(
    storage: &dyn Storage,
    bucket: &str,
    key: &str,
    report: &UploadReport,
    max_files: usize,
) -> Result<String, StorageError> {
    debug_assert!(key.ends_with(REPORT_FILE));
    let body = Bytes::from(serde_json::to_vec_pretty(report).expect("a report serializes"));
    let location = storage.location(bucket, key);
    for _ in 0..REPORT_ROUNDS {
        let condition = match read_small(storage, bucket, key, REPORT_LIMIT).await? {
            Small::Absent => PutCondition::IfAbsent,
            Small::TooLarge(info) => {
                tracing::warn!(location, "replacing a report over {REPORT_LIMIT} bytes");
                PutCondition::IfMatch(info.etag)
            }
            Small::Read(info, bytes) => {
                match keep_existing(storage, bucket, &bytes, report, max_files).await? {
                    Ok(listed) => {
                        return Ok(format!(
                        "kept the existing report, which lists {listed} files (this one lists {})",
                        report.file_set.len()
                    ))
                    }
                    Err(why) => {
                        if !why.is_empty() {
                            tracing::warn!(location, "replacing the existing report: {why}");
                        }
                        PutCondition::IfMatch(info.etag)
                    }
                }
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
        location,
        why: format!("it kept changing under {REPORT_ROUNDS} attempts to write it"),
    })
}

/// Whether the report in the bucket (`bytes`) stands: `Ok(files it lists)` when it is a report of
/// this upload listing more files than ours, each of them one of the upload's keys and present in
/// the bucket; otherwise `Err(why not)`, empty when it is simply ours or older.
async fn keep_existing(
    storage: &dyn Storage,
    bucket: &str,
    bytes: &[u8],
    report: &UploadReport,
    max_files: usize,
) -> Result<Result<usize, String>, StorageError> {
    let existing: UploadReport = match serde_json::from_slice(bytes) {
        Ok(existing) => existing,
        Err(e) => return Ok(Err(format!("it is not a report ({e})"))),
    };
    let listed = existing.file_set.len();
    if listed <= report.file_set.len() {
        return Ok(Err(String::new()));
    }
    let prefix = report.prefix();
    if existing.prefix() != prefix {
        return Ok(Err("it is for another upload".into()));
    }
    if listed > max_files {
        return Ok(Err(format!(
            "it lists {listed} files, over the limit of {max_files}"
        )));
    }
    for file in &existing.file_set {
        let ours = file
            .key
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'));
        if !ours {
            return Ok(Err("it lists a file outside the upload".into()));
        }
        if storage.head(bucket, &file.key).await?.is_none() {
            return Ok(Err("a file it lists is not in the bucket".into()));
        }
    }
    Ok(Ok(listed))
}
