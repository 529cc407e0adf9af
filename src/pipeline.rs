//! One invocation, end to end: S3 event → uploads → file sets → reports → plans → execution.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry::SentryFutureExt;
use tracing::Instrument;

use crate::councils::CouncilNames;
use crate::effects::{self, Clients};
use crate::event::{self, Created, Event};
pub use crate::execute::Deadline;
use crate::execute::{self, StepResult};
use crate::fileset::{self, Entry};
use crate::ledger::Ledger;
use crate::ledger::LedgerError;
use crate::outcome::{EventOutcome, UploadOutcome};
use crate::plan::{self, Disposition, Plan};
use crate::report::UploadReport;
use crate::settings::{Settings, StorageMode};
use crate::storage::{LocalStorage, ObjectInfo, S3Storage, Storage, StorageError};
use crate::upload::Upload;
use wdiv_checks::FileReport;
use wdiv_checks::Limits;
use wdiv_checks::{Begin, CheckOptions, FileChecker, Flow, Profiles};

/// Everything an invocation uses: settings and the real clients, made once per process. An
/// effect's client exists only when its configuration does.
#[derive(Debug, Clone)]
pub struct Services {
    pub settings: Settings,
    pub councils: CouncilNames,
    pub clients: Clients,
}

impl Services {
    pub async fn new(settings: Settings) -> Result<Services, effects::ClientError> {
        let s = &settings;
        let sdk = match s.storage == StorageMode::S3 || effects::needs_aws(s) {
            true => Some(sdk_config(s).await),
            false => None,
        };
        let storage: Arc<dyn Storage> = match (&s.storage, &sdk) {
            (StorageMode::Local(root), _) => Arc::new(LocalStorage::new(root)),
            (StorageMode::S3, Some(sdk)) => Arc::new(S3Storage::new(sdk)),
            (StorageMode::S3, None) => unreachable!("S3 storage loads the AWS configuration"),
        };
        let http = crate::http::client();
        let shared = effects::Shared {
            http: &http,
            sdk: sdk.as_ref(),
        };
        let clients = effects::clients(s, storage, &shared)?;
        Ok(Services {
            councils: CouncilNames::new(http, s),
            clients,
            settings,
        })
    }

    /// The deadline of one event handled outside Lambda: `RUN_DEADLINE_SECONDS` from now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(Duration::from_secs(self.settings.run_deadline_seconds))
    }

    /// The buckets.
    pub fn storage(&self) -> &dyn Storage {
        self.clients.storage.as_ref()
    }
}

/// The AWS SDK's configuration for the settings' region and endpoint.
pub async fn sdk_config(settings: &Settings) -> aws_config::SdkConfig {
    crate::aws::sdk_config(
        settings.aws_region.as_deref(),
        settings.aws_endpoint_url.as_deref(),
    )
    .await
}

/// Why an upload could not be reported on.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "{location} named by the event is not in the bucket (was it deleted after the event?)"
    )]
    Missing { location: String },
}

/// Handles one S3 event: every upload it names, each checked, planned and (unless the run mode
/// is a dry run) carried out. An upload that fails does not stop the others.
pub async fn handle_event(services: &Services, event: &Event, deadline: Deadline) -> EventOutcome {
    let triage = event::triage(event, &services.settings.temp_bucket);
    for (key, why) in &triage.ignored {
        tracing::info!(key, "ignored: {why}");
    }
    let mut outcome = EventOutcome {
        ignored: triage.ignored,
        refused: triage.refused.iter().map(|e| e.to_string()).collect(),
        uploads: Vec::new(),
    };
    for refused in &outcome.refused {
        tracing::error!("refused: {refused}");
    }
    for (upload, created) in &triage.uploads {
        let span = tracing::info_span!("upload", prefix = %upload.prefix);
        // Whatever Sentry hears while this upload is handled (a failed effect, a panic) names it.
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
        hub.configure_scope(|scope| {
            scope.set_tag("council", &upload.council_id);
            scope.set_extra("upload", upload.prefix.clone().into());
        });
        let started = Instant::now();
        let mut handled = handle_upload(services, upload, created, deadline)
            .instrument(span)
            .bind_hub(hub)
            .await;
        handled.timings.total = started.elapsed();
        outcome.uploads.push(handled);
    }
    outcome
}

async fn handle_upload(
    services: &Services,
    upload: &Upload,
    created: &[Created],
    deadline: Deadline,
) -> UploadOutcome {
    let started = Instant::now();
    let built = build_report(services, upload, created).await;
    let check_time = started.elapsed();
    let mut report = match built {
        Ok(report) => report,
        Err(e) => {
            tracing::error!("cannot check the upload: {e}");
            let mut outcome = UploadOutcome {
                prefix: upload.prefix.clone(),
                report: None,
                plan: None,
                results: Vec::new(),
                error: Some(e.to_string()),
                timings: Default::default(),
            };
            outcome.timings.check = Some(check_time);
            return outcome;
        }
    };
    let settings = &services.settings;
    crate::history::annotate(
        services.storage(),
        &settings.final_bucket,
        settings.row_change_warn_percent,
        &mut report,
    )
    .await;
    let mut outcome = act(services, report, deadline).await;
    outcome.timings.check = Some(check_time);
    outcome
}

/// Plans what to do about `report` and, unless this is a dry run, does it.
pub(crate) async fn act(
    services: &Services,
    report: UploadReport,
    deadline: Deadline,
) -> UploadOutcome {
    let mut outcome = UploadOutcome {
        prefix: report.prefix(),
        report: None,
        plan: None,
        results: Vec::new(),
        error: None,
        timings: Default::default(),
    };
    let plan = plan::plan(&report, &services.settings);
    tracing::info!(
        valid = plan.valid,
        files = report.file_set.len(),
        "checked the upload"
    );
    if !services.settings.mode.is_dry_run() {
        let started = Instant::now();
        let carried_out = carry_out(services, &plan, &report, deadline).await;
        outcome.timings.effects = Some(started.elapsed());
        match carried_out {
            Ok(results) => outcome.results = results,
            Err(e) => {
                tracing::error!("{e}");
                outcome.error = Some(e.to_string());
            }
        }
    }
    outcome.report = Some(report);
    outcome.plan = Some(plan);
    outcome
}

/// Executes the plan under the upload's lease, so each effect happens once per upload content.
async fn carry_out(
    services: &Services,
    plan: &Plan,
    report: &UploadReport,
    deadline: Deadline,
) -> Result<Vec<StepResult>, LedgerError> {
    let clients = &services.clients;
    if !plan.steps.iter().any(|s| s.disposition == Disposition::Do) {
        return Ok(execute::execute(plan, report, clients, None, deadline).await);
    }
    let mut ledger = take_lease(services, report, Some(deadline)).await?;
    // Checked under the lease, which an override waits for once its marker is written: a run of
    // the failing content either finished before the override, or sees its marker.
    if !report.all_valid() && report.extra.staff_override.is_none() {
        let bucket = &services.settings.temp_bucket;
        if let Some(marker) = crate::ledger::overridden(services.storage(), bucket, report).await? {
            ledger.release().await?;
            let why = format!(
                "not sent: staff accepted this upload by override ({}, {}), so its failing \
                 report is not sent again",
                wdiv_checks::text::bounded_label(&marker.by, 100),
                wdiv_checks::text::bounded_label(&marker.at, 40)
            );
            tracing::info!("{why}");
            return Ok(plan
                .steps
                .iter()
                .map(|step| match &step.disposition {
                    Disposition::Do => StepResult::Skipped(why.clone()),
                    Disposition::Skip(w) => StepResult::Skipped(w.clone()),
                    Disposition::Preview(w) => StepResult::Previewed(w.clone()),
                })
                .collect());
        }
    }
    let results = execute::execute(plan, report, clients, Some(&mut ledger), deadline).await;
    ledger.release().await?;
    Ok(results)
}

/// Takes this run's lease on `report`'s content. A concurrent run usually finishes well within
/// its lease: wait for it rather than fail, at least [`MIN_LEASE_WAIT`], but not past
/// `deadline`.
pub(crate) async fn take_lease<'s>(
    services: &'s Services,
    report: &UploadReport,
    deadline: Option<Deadline>,
) -> Result<Ledger<'s>, LedgerError> {
    let lease = Duration::from_secs(services.settings.lease_seconds);
    let mut wait = lease.max(MIN_LEASE_WAIT);
    if let Some(deadline) = deadline {
        wait = wait.min(deadline.remaining());
    }
    Ledger::acquire(
        services.storage(),
        &services.settings.temp_bucket,
        report,
        &run_id(),
        lease,
        wait,
    )
    .await
}

/// The least time a run waits for another run's lease before giving up (and failing, so that
/// Lambda retries it later).
const MIN_LEASE_WAIT: Duration = Duration::from_secs(30);

/// This run's name in leases: unique per process and moment.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("run-{}-{nanos:x}", std::process::id())
}

/// Lists the upload's files, streams each through the checks, and builds the report.
pub async fn build_report(
    services: &Services,
    upload: &Upload,
    created: &[Created],
) -> Result<UploadReport, PipelineError> {
    let storage = services.storage();
    let settings = &services.settings;
    let bucket = &settings.temp_bucket;
    let limits = Limits {
        max_files: settings.max_files_per_upload,
        max_bytes: settings.max_upload_bytes,
    };
    // One more than the limit: enough to know it is passed, never the whole of a huge prefix.
    let listing: Vec<_> = storage
        .list(bucket, &format!("{}/", upload.prefix), limits.max_files + 1)
        .await?
        .into_iter()
        .filter(|o| event::own_key(&o.key).is_none())
        .collect();
    if listing.len() <= limits.max_files {
        for object in created {
            if !listing.iter().any(|f| f.key == object.key.key) {
                return Err(PipelineError::Missing {
                    location: storage.location(bucket, &object.key.key),
                });
            }
        }
    }
    let options = CheckOptions {
        profiles: Profiles::embedded(),
        council: Some(upload.council_id.clone()),
        election_date: Some(upload.election_date),
        size_floor_exempt: settings.size_floor_exempt_councils.clone(),
        // A Lambda has a fraction of a core at the memory it is given: no helper thread.
        rules_thread: false,
    };
    let mut reports = Vec::with_capacity(listing.len());
    for entry in fileset::admit(upload, listing, limits) {
        reports.push(match entry {
            Entry::Check(file) => check_object(storage, bucket, &file, options.clone()).await?,
            Entry::Refused(report) => {
                tracing::warn!(key = report.key, "refused unread: {}", report.errors_text());
                report
            }
        });
    }
    let verdict = wdiv_checks::check_upload(reports, options.profiles);
    let council_name = services.councils.name(&upload.council_id).await;
    Ok(UploadReport {
        gss: upload.council_id.clone(),
        council_name,
        timestamp: upload.timestamp.clone(),
        election_date: upload.election_date.to_string(),
        github_issue: String::new(),
        file_set: verdict.file_set,
        extra: Default::default(),
    })
}

/// Streams one object into the checks. The ETag read with the body is the one the copy requires.
/// A size the checks refuse as it is (over the 150 MB ceiling) is refused from the listing,
/// before a byte is downloaded.
async fn check_object(
    storage: &dyn Storage,
    bucket: &str,
    listed: &ObjectInfo,
    options: CheckOptions<'_>,
) -> Result<FileReport, StorageError> {
    let key = listed.key.as_str();
    if let Begin::Done(mut report) = FileChecker::begin(key, Some(listed.size), options.clone()) {
        report.details.etag = Some(listed.etag.clone());
        return Ok(report);
    }
    let (info, mut body) = storage.get(bucket, key).await?;
    let mut report = match FileChecker::begin(key, Some(info.size), options) {
        Begin::Done(report) => report,
        Begin::Checking(mut checker) => {
            while let Some(chunk) = body.next_chunk().await? {
                if checker.feed(&chunk) == Flow::Stop {
                    break;
                }
            }
            checker.finish()
        }
    };
    report.details.etag = Some(info.etag);
    Ok(report)
}
