//! `simulate`: the website's upload (the files put in the temp bucket), then S3's events, one
//! per object, each handled as the Lambda would.

use bytes::Bytes;

use crate::event;
use crate::outcome::EventOutcome;
use crate::pipeline::Services;
use crate::settings::StorageMode;
use crate::storage::{LocalStorage, Overlay, PutCondition, StorageError};
use crate::upload::UploadKey;

use super::args::SimulateArgs;
use super::exit::CliError;
use super::output::report_outcome;
use super::start::{load_settings, start, Started};

/// `simulate`: the website's upload, then S3's events, one per object.
pub async fn simulate(
    settings_file: Option<&std::path::Path>,
    args: &SimulateArgs,
) -> Result<u8, CliError> {
    let settings = load_settings(settings_file).await?;
    let staged = read_files(args)?;
    let mut started = start(settings, &args.mode, args.metrics).await?;
    if started.mode.is_dry_run() {
        // Nothing is put anywhere: the files are seen through an overlay of the temp bucket.
        let services = &mut started.services;
        services.clients.storage = std::sync::Arc::new(Overlay::new(
            services.clients.storage.clone(),
            &services.settings.temp_bucket,
            staged.clone(),
        ));
    } else {
        create_local_buckets(&started.services)?;
        put_files(&started.services, &staged).await?;
    }
    let mut outcomes = Vec::with_capacity(staged.len());
    for (key, _) in &staged {
        outcomes.push(fire_event(&started, key).await?);
    }
    report_outcome(&outcomes, started.mode, args.json)
}

/// The upload's files, read, each with the key the website would give it.
fn read_files(args: &SimulateArgs) -> Result<Vec<(String, Bytes)>, CliError> {
    // The key's timestamp, as the website writes it.
    let timestamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let mut staged = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::NoFileName {
                path: path.display().to_string(),
            })?;
        let key = format!("{}/{}/{timestamp}/{name}", args.council, args.election_date);
        UploadKey::parse(&key)?;
        let bytes = std::fs::read(path).map_err(|source| CliError::Read {
            path: path.display().to_string(),
            source,
        })?;
        staged.push((key, Bytes::from(bytes)));
    }
    Ok(staged)
}

/// Local buckets are folders: the temp and final ones are made if they are not there.
fn create_local_buckets(services: &Services) -> Result<(), CliError> {
    let StorageMode::Local(root) = &services.settings.storage else {
        return Ok(());
    };
    let local = LocalStorage::new(root);
    for bucket in [
        &services.settings.temp_bucket,
        &services.settings.final_bucket,
    ] {
        local
            .create_bucket(bucket)
            .map_err(|source| CliError::Read {
                path: root.join(bucket).display().to_string(),
                source,
            })?;
    }
    Ok(())
}

/// Puts the files in the temp bucket, as the website does.
async fn put_files(services: &Services, staged: &[(String, Bytes)]) -> Result<(), CliError> {
    let temp_bucket = &services.settings.temp_bucket;
    for (key, bytes) in staged {
        services
            .storage()
            .put(
                temp_bucket,
                key,
                bytes.clone(),
                "application/octet-stream",
                PutCondition::Always,
            )
            .await?;
        tracing::info!(key, "put in the temp bucket");
    }
    Ok(())
}

/// The event S3 sends for the object `key` of the temp bucket, handled.
async fn fire_event(started: &Started, key: &str) -> Result<EventOutcome, CliError> {
    let services = &started.services;
    let temp_bucket = &services.settings.temp_bucket;
    let info = services
        .storage()
        .head(temp_bucket, key)
        .await?
        .ok_or_else(|| StorageError::NoSuchKey {
            location: services.storage().location(temp_bucket, key),
        })?;
    let event = event::from_value(event::object_created(
        temp_bucket,
        key,
        info.size,
        &info.etag,
    ))?;
    Ok(started.handle(&event).await)
}
