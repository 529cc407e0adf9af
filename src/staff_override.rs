//! Staff override: staff accept an upload that fails the checks, when they judge it fine.
//!
//! Two entry points, one behaviour: `override s3://TEMP/PREFIX --reason TEXT --by NAME` and a
//! direct Lambda invocation with `{"override": {"prefix": ..., "reason": ..., "by": ...}}`. The
//! upload is checked again as it is now in the temp bucket; every error is kept but marked
//! `overridden` (so `csv_valid` is true and WDIV's existing reading accepts it), the report gets
//! `"override": {"by", "reason", "at"}`, and the success path follows: the issue (which states
//! the override), the copies, `report.json`, the invalidation, the webhook.
//!
//! Exactly once: who and why are part of the upload's content id ([`crate::ledger::content_id`]),
//! so a retried override does only what is left, and another override (another reason) of the
//! same upload is new content. `at` is when the override was first carried out: kept in a small
//! record in the temp bucket (`.wdiv-s3-trigger/overrides/{content_id}.json`, written only if
//! absent), so every retry reports the same `at`. A dry run reads that record but never writes it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::INTERNAL_PREFIX;
use crate::outcome::{EventOutcome, UploadOutcome};
use crate::pipeline::{self, PipelineError, Services};
use crate::report::{StaffOverride, UploadReport};
use crate::storage::{read_small, PutCondition, Small, Storage, StorageError};
use crate::upload::{KeyError, Upload, UploadKey};
use wdiv_checks::Severity;

/// The key of a direct Lambda invocation that asks for an override.
pub const PAYLOAD_KEY: &str = "override";
/// The longest reason kept (longer ones are cut), and the longest name.
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_BY_CHARS: usize = 100;
const RECORD_LIMIT: usize = 64 * 1024;

/// What staff ask for, from the command line or the Lambda payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// `s3://TEMP_BUCKET/COUNCIL/DATE/TIMESTAMP`, or the prefix alone.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub by: String,
}

/// Why an override was refused, or could not be done.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error(
        "refused: an override needs a reason, saying why the upload may go through although it \
         fails the checks (--reason TEXT, or \"reason\" in the payload)"
    )]
    NoReason,
    #[error(
        "refused: an override needs the name of whoever decides it (--by NAME, or \"by\" in the \
         payload)"
    )]
    NoBy,
    #[error(
        "refused: {given} is not an upload: {why}. Give the upload's prefix in the temp bucket, \
         s3://{bucket}/COUNCIL_ID/YYYY-MM-DD/TIMESTAMP"
    )]
    NotAnUpload {
        given: String,
        bucket: String,
        why: String,
    },
    #[error("refused: {location} holds no files, so it is not an upload (check the prefix)")]
    Empty { location: String },
    #[error(
        "refused: {prefix} already passes its checks; there is nothing to override (its events \
         carry it through)"
    )]
    AlreadyPasses { prefix: String },
    #[error(
        "refused: {prefix} holds files that no override can let through, as they are not \
         files of an upload: {files}. Ask the council to upload again without them"
    )]
    RefusedFiles { prefix: String, files: String },
    #[error("refused: the payload's \"override\" must be {{\"prefix\": ..., \"reason\": ..., \"by\": ...}}: {0}")]
    Payload(String),
    #[error("cannot check the upload: {0}")]
    Pipeline(#[from] PipelineError),
    #[error("cannot keep the override's time: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot wait for a run of the upload's original content: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl OverrideError {
    /// A refusal (the request is wrong), rather than a failure to carry it out.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            OverrideError::Pipeline(_) | OverrideError::Storage(_) | OverrideError::Ledger(_)
        )
    }
}

/// One line, hidden characters escaped, at most `max` characters; "" for blank text.
fn cleaned(text: &str, max: usize) -> String {
    wdiv_checks::text::bounded_label(text.trim(), max)
}

/// The upload `given` names: `s3://{temp_bucket}/{prefix}` or the prefix alone.
pub fn parse_prefix(given: &str, temp_bucket: &str) -> Result<Upload, OverrideError> {
    let shown = wdiv_checks::text::bounded_label(given, 300);
    let refuse = |why: String| OverrideError::NotAnUpload {
        given: format!("{shown:?}"),
        bucket: temp_bucket.to_owned(),
        why,
    };
    let prefix = match given.trim().strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket != temp_bucket {
                return Err(refuse(format!(
                    "uploads are in the temp bucket {temp_bucket}, not {}",
                    wdiv_checks::text::bounded_label(bucket, 100)
                )));
            }
            prefix
        }
        None => given.trim(),
    };
    let prefix = prefix.trim_end_matches('/');
    let form = "it does not have the form COUNCIL_ID/YYYY-MM-DD/TIMESTAMP".to_owned();
    if prefix.split('/').count() != 3 {
        return Err(refuse(form));
    }
    match UploadKey::parse(&format!("{prefix}/file")) {
        Ok(key) => Ok(key.upload),
        Err(KeyError::Part { why, .. }) => Err(refuse(why)),
        Err(_) => Err(refuse(form)),
    }
}

/// Keeps every error of `report` but marks it overridden, and records who and why.
pub fn apply(report: &mut UploadReport, by: &str, reason: &str) {
    for file in &mut report.file_set {
        for problem in &mut file.problems {
            if problem.severity == Severity::Error {
                problem.overridden = true;
            }
        }
    }
    report.extra.staff_override = Some(StaffOverride {
        by: by.to_owned(),
        reason: reason.to_owned(),
        at: String::new(),
    });
}

/// The record that keeps an override's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AtRecord {
    prefix: String,
    by: String,
    reason: String,
    at: String,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// When the override of this content was first carried out: read from its record, or now (then
/// written, unless `write` is false: a dry run).
async fn stable_at(
    storage: &dyn Storage,
    bucket: &str,
    report: &UploadReport,
    write: bool,
) -> Result<String, StorageError> {
    let over = report
        .extra
        .staff_override
        .as_ref()
        .expect("the override is applied first");
    let key = format!(
        "{INTERNAL_PREFIX}overrides/{}.json",
        crate::ledger::content_id(report)
    );
    let mine = |at: String| AtRecord {
        prefix: report.prefix(),
        by: over.by.clone(),
        reason: over.reason.clone(),
        at,
    };
    for _ in 0..4 {
        let condition = match read_small(storage, bucket, &key, RECORD_LIMIT).await? {
            Small::Read(info, bytes) => match serde_json::from_slice::<AtRecord>(&bytes) {
                // Trusted only when it is this override's (the bucket can be written by others).
                Ok(record) if record == mine(record.at.clone()) && !record.at.is_empty() => {
                    return Ok(wdiv_checks::text::bounded_label(&record.at, 40))
                }
                _ => PutCondition::IfMatch(info.etag),
            },
            Small::TooLarge(info) => PutCondition::IfMatch(info.etag),
            Small::Absent => PutCondition::IfAbsent,
        };
        let at = now();
        if !write {
            return Ok(at);
        }
        let body = Bytes::from(serde_json::to_vec_pretty(&mine(at.clone())).expect("serializes"));
        match storage
            .put(bucket, &key, body, "application/json", condition)
            .await
        {
            Ok(_) => return Ok(at),
            // Another run of the same override wrote it first: take its time.
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StorageError::ConditionFailed {
        op: "PutObject",
        location: storage.location(bucket, &key),
        why: "it kept changing under 4 attempts to write it".into(),
    })
}

/// Marks the upload as overridden, then waits out any run of its original content that is under
/// way (its lease): from then on, a run of that content (Lambda's retry of the original event,
/// `replay`) sends nothing, so the site never hears "failed" after the override's "accepted".
async fn mark_and_wait(
    services: &Services,
    original: &UploadReport,
    by: &str,
    at: &str,
) -> Result<(), OverrideError> {
    let settings = &services.settings;
    let marker = crate::ledger::OverrideMarker {
        prefix: original.prefix(),
        content_id: crate::ledger::content_id(original),
        by: by.to_owned(),
        at: at.to_owned(),
    };
    crate::ledger::mark_overridden(services.storage(), &settings.temp_bucket, &marker).await?;
    pipeline::take_lease(services, original, None)
        .await?
        .release()
        .await?;
    Ok(())
}

/// The files of `report` refused unread, each named (under `prefix`) with its first error.
fn refused_files(report: &UploadReport, prefix: &str) -> Vec<String> {
    report
        .file_set
        .iter()
        .filter(|f| wdiv_checks::was_refused(f))
        .map(|f| {
            let first = f.errors().next().map_or("", |p| p.message.as_str());
            let name = f.key.strip_prefix(&format!("{prefix}/")).unwrap_or(&f.key);
            format!(
                "{} ({})",
                wdiv_checks::text::quote(name),
                wdiv_checks::text::truncate_chars(first, 120)
            )
        })
        .collect()
}

/// Checks the upload again, and unless the request is refused, accepts it and carries out the
/// success path (or, on a dry run, plans it).
pub async fn handle(
    services: &Services,
    request: &OverrideRequest,
    deadline: pipeline::Deadline,
) -> Result<UploadOutcome, OverrideError> {
    let reason = cleaned(&request.reason, MAX_REASON_CHARS);
    if reason.is_empty() {
        return Err(OverrideError::NoReason);
    }
    let by = cleaned(&request.by, MAX_BY_CHARS);
    if by.is_empty() {
        return Err(OverrideError::NoBy);
    }
    let settings = &services.settings;
    let upload = parse_prefix(&request.prefix, &settings.temp_bucket)?;
    let mut report = pipeline::build_report(services, &upload, &[]).await?;
    if report.file_set.is_empty() {
        return Err(OverrideError::Empty {
            location: services
                .storage()
                .location(&settings.temp_bucket, &format!("{}/", upload.prefix)),
        });
    }
    // A file refused unread (a folder, a type the site may not serve, a name it cannot store)
    // has no checked bytes to copy: an override would publish what was never checked.
    let refused = refused_files(&report, &upload.prefix);
    if !refused.is_empty() {
        return Err(OverrideError::RefusedFiles {
            prefix: upload.prefix,
            files: refused.join("; "),
        });
    }
    if report.all_valid() {
        return Err(OverrideError::AlreadyPasses {
            prefix: upload.prefix,
        });
    }
    let original = report.clone();
    apply(&mut report, &by, &reason);
    let at = stable_at(
        services.storage(),
        &settings.temp_bucket,
        &report,
        !settings.mode.is_dry_run(),
    )
    .await?;
    if let Some(over) = report.extra.staff_override.as_mut() {
        over.at = at.clone();
    }
    if !settings.mode.is_dry_run() {
        mark_and_wait(services, &original, &by, &at).await?;
    }
    let errors = report.file_set.iter().flat_map(|f| f.errors()).count();
    tracing::warn!(
        prefix = upload.prefix,
        by,
        reason,
        at,
        errors,
        "staff override: accepting an upload that fails its checks"
    );
    crate::history::annotate(
        services.storage(),
        &settings.final_bucket,
        settings.row_change_warn_percent,
        &mut report,
    )
    .await;
    let started = std::time::Instant::now();
    let mut outcome = pipeline::act(services, report, deadline).await;
    outcome.timings.total = started.elapsed();
    Ok(outcome)
}

impl OverrideRequest {
    /// A direct Lambda invocation's `override` member.
    pub fn from_payload(request: serde_json::Value) -> Result<OverrideRequest, OverrideError> {
        serde_json::from_value(request).map_err(|e| OverrideError::Payload(e.to_string()))
    }
}

/// A direct Lambda invocation's answer to an override carried out: its outcome as JSON, or why
/// it failed (an action that failed, which Lambda may retry: the retry does only what is left).
pub fn answer(outcome: &UploadOutcome) -> Result<serde_json::Value, String> {
    let failures = EventOutcome::of_upload(outcome.clone()).failures();
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    let report = outcome.report.as_ref();
    Ok(serde_json::json!({
        "prefix": outcome.prefix,
        "override": report.and_then(|r| r.extra.staff_override.clone()),
        "actions": outcome.plan.as_ref().map(|p| p.steps.iter().zip(&outcome.results).map(|(s, r)| serde_json::json!({
            "action": s.effect.verb(),
            "target": p.target(s),
            "result": r,
        })).collect::<Vec<_>>()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_an_upload_in_the_temp_bucket_or_refused() {
        let upload = parse_prefix(
            "s3://temp/X01/2024-05-02/2024-04-01T10:11:12.123456/",
            "temp",
        )
        .unwrap();
        assert_eq!(upload.prefix, "X01/2024-05-02/2024-04-01T10:11:12.123456");
        assert_eq!(
            parse_prefix("X01/2024-05-02/t", "temp").unwrap().prefix,
            "X01/2024-05-02/t"
        );
        for (given, why) in [
            ("s3://final/X01/2024-05-02/t", "not final"),
            (
                "s3://temp/X01/2024-05-02",
                "COUNCIL_ID/YYYY-MM-DD/TIMESTAMP",
            ),
            (
                "s3://temp/X01/2024-05-02/t/a.csv",
                "COUNCIL_ID/YYYY-MM-DD/TIMESTAMP",
            ),
            ("X01/2024-13-02/t", "not a date"),
            ("", "COUNCIL_ID/YYYY-MM-DD/TIMESTAMP"),
        ] {
            let err = parse_prefix(given, "temp").unwrap_err().to_string();
            assert!(err.contains(why), "{given}: {err}");
            assert!(err.starts_with("refused: "), "{err}");
        }
    }
}
