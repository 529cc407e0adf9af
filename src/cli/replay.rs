//! `replay`: an upload's events, run again. Exactly-once holds because the pipeline's ledger
//! makes a replay do only what is left: an upload already handled is checked again, and every
//! effect is found done.
//!
//! - `replay s3://TEMP/PREFIX` lists the upload's files in the temp bucket (S3, or the local
//!   folders) and builds the S3 notification S3 would have sent for them (one record per file,
//!   keys URL-encoded), then runs it through the same pipeline as `run`;
//! - `replay --from-queue URL` takes the records Lambda put in the OnFailure queue after its
//!   retries, and replays each one's original event (`requestPayload`), deleting a message only
//!   once its replay succeeded;
//! - `--invoke FUNCTION` sends the event(s) to the deployed function instead, asynchronously
//!   (Lambda `Invoke`, `InvocationType=Event`), as S3 would.

use std::collections::HashSet;
use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use crate::event;
use crate::outcome::EventOutcome;
use crate::settings::{RunMode, Settings};
use crate::upload::UploadKey;

use super::args::ReplayArgs;
use super::exit::{CliError, ReplayError, EXIT_FAIL, EXIT_PASS};
use super::output::{report_outcome, shown};
use super::start::{load_settings, sdk_config_for, start, Started};

/// How long a received message stays hidden from other readers while it is replayed: Lambda's
/// longest run. A message kept in the queue (its replay failed) is seen again after it.
const VISIBILITY_SECONDS: i32 = 900;
/// The most messages one `replay --from-queue` handles: a bound on a queue that keeps filling.
const MAX_MESSAGES: usize = 1000;

/// `replay`.
pub async fn run(
    settings_file: Option<&std::path::Path>,
    args: &ReplayArgs,
) -> Result<u8, CliError> {
    let settings = load_settings(settings_file).await?;
    match (&args.upload, &args.from_queue) {
        (_, Some(queue)) => from_queue(settings, args, queue).await,
        (Some(upload), None) => by_prefix(settings, args, upload).await,
        (None, None) => Err(ReplayError::NotAnUpload {
            given: "nothing".into(),
            why: "no upload given".into(),
            temp: settings.temp_bucket,
        }
        .into()),
    }
}

/// The upload's prefix, from `s3://TEMP/PREFIX` or `PREFIX`.
pub fn upload_prefix(given: &str, temp_bucket: &str) -> Result<String, ReplayError> {
    let fail = |why: String| ReplayError::NotAnUpload {
        given: format!("{:?}", wdiv_checks::text::truncate_chars(given, 200)),
        why,
        temp: temp_bucket.to_owned(),
    };
    let prefix = match given.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket != temp_bucket {
                return Err(fail(format!(
                    "the bucket {bucket:?} is not the temp bucket {temp_bucket:?} \
                     (TEMP_BUCKET_NAME)"
                )));
            }
            prefix
        }
        None => given,
    };
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    // A prefix is an upload's when a file in it would be one of the upload's keys.
    let key = UploadKey::parse(&format!("{prefix}/file.csv")).map_err(|e| {
        fail(match e {
            crate::upload::KeyError::Part { why, .. } => why,
            _ => "an upload's prefix is COUNCIL_ID/YYYY-MM-DD/TIMESTAMP".into(),
        })
    })?;
    Ok(key.upload.prefix)
}

/// The S3 notification S3 sends for `objects`, one record per object.
pub fn notification_for(bucket: &str, objects: &[crate::storage::ObjectInfo]) -> Value {
    let records: Vec<Value> = objects
        .iter()
        .map(|o| event::object_created(bucket, &o.key, o.size, &o.etag)["Records"][0].clone())
        .collect();
    json!({ "Records": records })
}

async fn by_prefix(settings: Settings, args: &ReplayArgs, given: &str) -> Result<u8, CliError> {
    let prefix = upload_prefix(given, &settings.temp_bucket)?;
    let started = start(settings, &args.mode, false).await?;
    let (services, mode) = (&started.services, started.mode);
    let temp = services.settings.temp_bucket.clone();
    let storage = services.storage();
    let max = services.settings.max_files_per_upload + 1;
    let objects: Vec<_> = storage
        .list(&temp, &format!("{prefix}/"), max)
        .await?
        .into_iter()
        .filter(|o| event::own_key(&o.key).is_none())
        .collect();
    if objects.is_empty() {
        return Err(ReplayError::Empty {
            location: storage.location(&temp, &format!("{prefix}/")),
        }
        .into());
    }
    let notification = notification_for(&temp, &objects);
    match &args.invoke {
        Some(function) => {
            let mut out = std::io::stdout().lock();
            if mode.is_dry_run() {
                writeln!(
                    out,
                    "Dry run: would send this event to {function} (asynchronously):\n{notification:#}"
                )
                .map_err(CliError::Write)?;
                return Ok(EXIT_PASS);
            }
            let lambda = aws_sdk_lambda::Client::new(&started.sdk_config_for("LAMBDA").await);
            invoke(&lambda, function, &notification).await?;
            writeln!(
                out,
                "Sent {} record(s) of {} to {function}: it runs asynchronously, see its logs",
                objects.len(),
                shown(&prefix)
            )
            .map_err(CliError::Write)?;
            Ok(EXIT_PASS)
        }
        None => {
            let event = event::from_value(notification)?;
            let outcome = started.handle(&event).await;
            report_outcome(&[outcome], mode, args.json)
        }
    }
}

/// Sends `payload` to `function` as S3 would: an asynchronous invocation, queued by Lambda.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &Value,
) -> Result<(), ReplayError> {
    use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
    let fail = |why: String| ReplayError::Invoke {
        function: shown(function),
        why,
    };
    let sent = lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await;
    match sent {
        Ok(out) if out.status_code == 202 => Ok(()),
        Ok(out) => Err(fail(format!(
            "Lambda answered {} instead of 202 (queued)",
            out.status_code
        ))),
        Err(e) => Err(fail(match e.code() {
            Some("ResourceNotFoundException") => {
                "no such function in this account and region (check its name and AWS_REGION)".into()
            }
            Some("AccessDeniedException") => {
                "these credentials may not invoke it: allow lambda:InvokeFunction on it".into()
            }
            _ => shown(&DisplayErrorContext(&e).to_string()),
        })),
    }
}

/// What became of one queue message.
#[derive(Debug, Serialize)]
struct MessageSummary {
    message_id: String,
    /// Why Lambda gave up on it (`requestContext.condition`, e.g. `RetriesExhausted`).
    condition: Option<String>,
    replayed: bool,
    deleted: bool,
    /// Why it was kept in the queue.
    kept_because: Option<String>,
    outcome: Option<EventOutcome>,
}

/// The original event of a Lambda OnFailure destination record, and why Lambda gave up.
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>
pub fn on_failure_record(body: &str) -> Result<(Value, Option<String>), String> {
    let record: Value = serde_json::from_str(body)
        .map_err(|_| "it is not JSON, so not a Lambda OnFailure record".to_owned())?;
    let Some(payload) = record.get("requestPayload") else {
        return Err(
            "it is not a Lambda OnFailure record (it has no requestPayload, the original event)"
                .into(),
        );
    };
    let condition = record
        .pointer("/requestContext/condition")
        .and_then(Value::as_str)
        .map(|c| wdiv_checks::text::truncate_chars(c, 60));
    Ok((payload.clone(), condition))
}

async fn from_queue(settings: Settings, args: &ReplayArgs, queue: &str) -> Result<u8, CliError> {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config_for(&settings, "SQS").await);
    let lambda = match &args.invoke {
        Some(f) => Some((
            aws_sdk_lambda::Client::new(&sdk_config_for(&settings, "LAMBDA").await),
            f.clone(),
        )),
        None => None,
    };
    let started = start(settings, &args.mode, false).await?;
    let mode = started.mode;
    let queue_error = |why: String| ReplayError::Queue {
        queue: shown(queue),
        why,
    };
    let mut seen = HashSet::new();
    let mut summaries = Vec::new();
    while summaries.len() < MAX_MESSAGES {
        use aws_sdk_sqs::error::DisplayErrorContext;
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            // A dry run leaves every message where it was, visible.
            .visibility_timeout(if mode.is_dry_run() {
                0
            } else {
                VISIBILITY_SECONDS
            })
            .send()
            .await
            .map_err(|e| queue_error(shown(&DisplayErrorContext(&e).to_string())))?;
        let fresh: Vec<_> = received
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| seen.insert(m.message_id.clone().unwrap_or_default()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for message in fresh {
            let mut summary = replay_message(&started, lambda.as_ref(), &message).await;
            if let (true, false, Some(handle)) = (
                summary.replayed,
                mode.is_dry_run(),
                message.receipt_handle(),
            ) {
                match sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await
                {
                    Ok(_) => summary.deleted = true,
                    Err(e) => {
                        summary.kept_because = Some(format!(
                            "replayed, but it could not be deleted: {}",
                            shown(&DisplayErrorContext(&e).to_string())
                        ))
                    }
                }
            }
            summaries.push(summary);
        }
    }
    write_summaries(&summaries, mode, args.json).map_err(CliError::Write)?;
    let all_done = summaries.iter().all(|s| mode.is_dry_run() || s.deleted);
    Ok(if all_done { EXIT_PASS } else { EXIT_FAIL })
}

async fn replay_message(
    started: &Started,
    lambda: Option<&(aws_sdk_lambda::Client, String)>,
    message: &aws_sdk_sqs::types::Message,
) -> MessageSummary {
    let mode = started.mode;
    let mut summary = MessageSummary {
        message_id: message.message_id().unwrap_or("(no id)").to_owned(),
        condition: None,
        replayed: false,
        deleted: false,
        kept_because: None,
        outcome: None,
    };
    let (payload, condition) = match on_failure_record(message.body().unwrap_or("")) {
        Ok(record) => record,
        Err(why) => {
            summary.kept_because = Some(why);
            return summary;
        }
    };
    summary.condition = condition;
    let event = match event::from_value(payload.clone()) {
        Ok(event) => event,
        Err(e) => {
            summary.kept_because = Some(format!("its original event cannot be read: {e}"));
            return summary;
        }
    };
    match lambda {
        Some((client, function)) if !mode.is_dry_run() => {
            match invoke(client, function, &payload).await {
                Ok(()) => summary.replayed = true,
                Err(e) => summary.kept_because = Some(e.to_string()),
            }
        }
        Some(_) => summary.kept_because = Some("dry run: would be sent to the function".into()),
        None => {
            let outcome = started.handle(&event).await;
            let failures = outcome.failures();
            if mode.is_dry_run() {
                summary.kept_because = Some("dry run".into());
            } else if failures.is_empty() {
                summary.replayed = true;
            } else {
                summary.kept_because = Some(format!("the replay failed: {}", failures.join("; ")));
            }
            summary.outcome = Some(outcome);
        }
    }
    summary
}

fn write_summaries(summaries: &[MessageSummary], mode: RunMode, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, summaries)?;
        writeln!(out)?;
        return out.flush();
    }
    if summaries.is_empty() {
        writeln!(out, "The queue holds no message to replay.")?;
        return out.flush();
    }
    for s in summaries {
        let condition = s.condition.as_deref().unwrap_or("no condition");
        let what = match (s.deleted, &s.kept_because) {
            (true, _) => "replayed, deleted from the queue".to_owned(),
            (false, Some(why)) => format!("kept in the queue: {why}"),
            (false, None) => "kept in the queue".to_owned(),
        };
        writeln!(
            out,
            "message {} ({}): {}",
            shown(&s.message_id),
            shown(condition),
            shown(&what)
        )?;
        if let Some(outcome) = &s.outcome {
            for upload in &outcome.uploads {
                let verdict = match (&upload.report, &upload.error) {
                    (_, Some(e)) => format!("not checked: {e}"),
                    (Some(r), None) if r.all_valid() => "valid".into(),
                    (Some(_), None) => "invalid".into(),
                    (None, None) => "not checked".into(),
                };
                writeln!(
                    out,
                    "  upload {}: {}",
                    shown(&upload.prefix),
                    shown(&verdict)
                )?;
            }
        }
    }
    let deleted = summaries.iter().filter(|s| s.deleted).count();
    writeln!(
        out,
        "{} message(s): {deleted} replayed and deleted, {} kept{}.",
        summaries.len(),
        summaries.len() - deleted,
        if mode.is_dry_run() { " (dry run)" } else { "" }
    )?;
    out.flush()
}
