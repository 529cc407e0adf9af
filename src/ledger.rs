//! Exactly once: a small record per upload *content* saying which effects are done, kept with
//! S3 conditional writes.
//!
//! S3 delivers events at least once, Lambda retries failed invocations, and the two files of a
//! Democracy Counts upload fire events that can run at the same moment. The content of an upload
//! is its prefix and each file's ETag: the same content gets each effect once, however its events
//! arrive; a new file is new content. A run takes a lease on the record before any effect
//! (`If-None-Match: *` to create it, `If-Match` to change it); another run waits for the lease,
//! or takes it over once it has expired (the holder crashed), and skips what is recorded as done.
//!
//! The record lives in the temp bucket under [`INTERNAL_PREFIX`]: not publicly served, and
//! events for it are ignored, so it never starts work.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::INTERNAL_PREFIX;
use crate::report::UploadReport;
use crate::storage::{read_small, PutCondition, Small, Storage, StorageError};

const RECORD_LIMIT: usize = 1024 * 1024;
/// How often a waiting run looks at a lease held by another.
const POLL: Duration = Duration::from_millis(200);

/// Identifies an upload's content: its prefix, its files' ETags and, for a staff override, who
/// and why (not when: a retry of the same override is the same content).
pub fn content_id(report: &UploadReport) -> String {
    let mut files: Vec<(&str, &str)> = report
        .file_set
        .iter()
        .map(|f| (f.key.as_str(), f.details.etag.as_deref().unwrap_or("")))
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    hash.update(format!("{}\n", report.prefix()));
    for (key, etag) in files {
        hash.update(format!("{key}\t{}\n", etag.trim_matches('"')));
    }
    // A staff override is new content: its effects (the success path) are done once per override.
    if let Some(over) = &report.extra.staff_override {
        hash.update(format!("override\t{}\t{}\n", over.by, over.reason));
    }
    hash.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Says that staff accepted an upload (`.wdiv-s3-trigger/overridden/{prefix}.json`): a late
/// run of the upload's original, failing content (Lambda's retry, `replay`) then sends nothing,
/// so the site never hears "failed" after "accepted".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideMarker {
    pub prefix: String,
    /// The content staff accepted, as it was before the override ([`content_id`]).
    pub content_id: String,
    pub by: String,
    pub at: String,
}

fn marker_key(prefix: &str) -> String {
    format!("{INTERNAL_PREFIX}overridden/{prefix}.json")
}

/// Writes `marker`, unless one is there already (the first override's stands).
pub async fn mark_overridden(
    storage: &dyn Storage,
    bucket: &str,
    marker: &OverrideMarker,
) -> Result<(), StorageError> {
    let body = Bytes::from(serde_json::to_vec_pretty(marker).expect("a marker serializes"));
    let key = marker_key(&marker.prefix);
    match storage
        .put(
            bucket,
            &key,
            body,
            "application/json",
            PutCondition::IfAbsent,
        )
        .await
    {
        Ok(_) | Err(StorageError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The override marker of `report`'s upload, when staff accepted this very content. A marker
/// that is not one (the bucket can be written by others) is ignored.
pub async fn overridden(
    storage: &dyn Storage,
    bucket: &str,
    report: &UploadReport,
) -> Result<Option<OverrideMarker>, StorageError> {
    let prefix = report.prefix();
    let Small::Read(_, bytes) =
        read_small(storage, bucket, &marker_key(&prefix), 64 * 1024).await?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<OverrideMarker>(&bytes)
        .ok()
        .filter(|m| m.prefix == prefix && m.content_id == content_id(report)))
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("another run is handling this upload (its lease on {location} holds until {until}); try again later")]
    Busy { location: String, until: String },
    #[error("this run lost its lease on {location} to another run; it stops here")]
    LostLease { location: String },
}

/// One effect that is done, and what it produced (an issue URL, an invalidation id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub at_ms: u64,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    owner: String,
    until_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    content_id: String,
    prefix: String,
    files: Vec<(String, String)>,
    lease: Option<Lease>,
    done: BTreeMap<String, Done>,
}

/// The record in `bytes`, when it is one of this upload's content: the bucket can be written by
/// others, and a record is trusted only when it says it is for this prefix and content.
fn trusted_record(bytes: &[u8], content_id: &str, prefix: &str) -> Result<Record, String> {
    let record: Record =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not a record ({e})"))?;
    if record.content_id != content_id || record.prefix != prefix {
        return Err(format!(
            "it is for another upload or content ({} of {}), not {content_id} of {prefix}",
            wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(
                &record.content_id,
                40
            )),
            wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(
                &record.prefix,
                100
            )),
        ));
    }
    Ok(record)
}

/// This run's hold on an upload's record.
#[derive(Debug)]
pub struct Ledger<'s> {
    storage: &'s dyn Storage,
    bucket: String,
    key: String,
    owner: String,
    lease: Duration,
    etag: String,
    record: Record,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn show_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

impl<'s> Ledger<'s> {
    /// Takes the lease on `report`'s record in `bucket`, waiting up to `wait` for another run's
    /// lease to be released or to expire.
    ///
    /// One function on purpose: it is the lease's protocol, read the record, decide
    /// (absent, ours to take, held by another, expired), write it on the condition of the ETag
    /// read, and on a lost race read again. Each branch leans on the ETag of the read before it;
    /// split up, the conditions would be passed around and the protocol could not be read whole.
    pub async fn acquire(
        storage: &'s dyn Storage,
        bucket: &str,
        report: &UploadReport,
        owner: &str,
        lease: Duration,
        wait: Duration,
    ) -> Result<Ledger<'s>, LedgerError> {
        let id = content_id(report);
        let key = format!("{INTERNAL_PREFIX}effects/{id}.state");
        let location = storage.location(bucket, &key);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = now_ms();
            let mine = Lease {
                owner: owner.to_owned(),
                until_ms: now + lease.as_millis() as u64,
            };
            let fresh = || Record {
                content_id: id.clone(),
                prefix: report.prefix(),
                files: report
                    .file_set
                    .iter()
                    .map(|f| (f.key.clone(), f.details.etag.clone().unwrap_or_default()))
                    .collect(),
                lease: Some(mine.clone()),
                done: BTreeMap::new(),
            };
            let (record, condition) = match read_small(storage, bucket, &key, RECORD_LIMIT).await? {
                Small::Absent => (fresh(), PutCondition::IfAbsent),
                Small::TooLarge(info) => {
                    tracing::warn!(
                        location,
                        "ignoring an effects record over {RECORD_LIMIT} bytes: not written by \
                         this program; starting afresh"
                    );
                    (fresh(), PutCondition::IfMatch(info.etag))
                }
                Small::Read(info, bytes) => {
                    let mut record = match trusted_record(&bytes, &id, &report.prefix()) {
                        Ok(record) => record,
                        Err(why) => {
                            tracing::warn!(
                                location,
                                "ignoring the effects record: {why}; starting afresh"
                            );
                            // Replaced like an oversized one, by the write below.
                            fresh()
                        }
                    };
                    if let Some(held) = &record.lease {
                        if held.owner != owner && held.until_ms > now {
                            if tokio::time::Instant::now() >= deadline {
                                return Err(LedgerError::Busy {
                                    location,
                                    until: show_ms(held.until_ms),
                                });
                            }
                            tracing::info!(holder = held.owner, "waiting for another run's lease");
                            tokio::time::sleep(POLL).await;
                            continue;
                        }
                        if held.owner != owner {
                            tracing::warn!(
                                holder = held.owner,
                                "taking over the lease of a run that did not finish"
                            );
                        }
                    }
                    record.lease = Some(mine);
                    (record, PutCondition::IfMatch(info.etag))
                }
            };
            let body =
                Bytes::from(serde_json::to_vec_pretty(&record).expect("a record serializes"));
            match storage
                .put(bucket, &key, body, "application/json", condition)
                .await
            {
                Ok(etag) => {
                    return Ok(Ledger {
                        storage,
                        bucket: bucket.to_owned(),
                        key,
                        owner: owner.to_owned(),
                        lease,
                        etag,
                        record,
                    })
                }
                // Another run got there between our read and our write: look again.
                Err(StorageError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The effect's output, when an earlier run did it.
    pub fn done(&self, effect: &str) -> Option<&Done> {
        self.record.done.get(effect)
    }

    /// Records that `effect` is done, renewing the lease.
    pub async fn mark_done(&mut self, effect: &str, output: &str) -> Result<(), LedgerError> {
        self.record.done.insert(
            effect.to_owned(),
            Done {
                at_ms: now_ms(),
                output: output.to_owned(),
            },
        );
        self.record.lease = Some(Lease {
            owner: self.owner.clone(),
            until_ms: now_ms() + self.lease.as_millis() as u64,
        });
        self.write().await
    }

    /// Lets the next run in at once.
    pub async fn release(mut self) -> Result<(), LedgerError> {
        self.record.lease = None;
        self.write().await
    }

    async fn write(&mut self) -> Result<(), LedgerError> {
        let body =
            Bytes::from(serde_json::to_vec_pretty(&self.record).expect("a record serializes"));
        match self
            .storage
            .put(
                &self.bucket,
                &self.key,
                body,
                "application/json",
                PutCondition::IfMatch(self.etag.clone()),
            )
            .await
        {
            Ok(etag) => {
                self.etag = etag;
                Ok(())
            }
            Err(StorageError::ConditionFailed { .. }) => Err(LedgerError::LostLease {
                location: self.storage.location(&self.bucket, &self.key),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;
    use wdiv_checks::FileReport;

    fn report(etag: &str) -> UploadReport {
        let mut file = FileReport::new("X01/2024-05-02/t/a.csv");
        file.details.etag = Some(etag.into());
        UploadReport::example(vec![file])
    }

    fn storage() -> (tempfile::TempDir, LocalStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.create_bucket("temp").unwrap();
        (dir, storage)
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn what_one_run_did_the_next_skips() {
        let (_dir, storage) = storage();
        let mut first = Ledger::acquire(&storage, "temp", &report("e1"), "a", LONG, LONG)
            .await
            .unwrap();
        first.mark_done("open-issue", "https://x/1").await.unwrap();
        first.release().await.unwrap();
        let second = Ledger::acquire(&storage, "temp", &report("e1"), "b", LONG, LONG)
            .await
            .unwrap();
        assert_eq!(second.done("open-issue").unwrap().output, "https://x/1");
        assert!(second.done("post-webhook").is_none());
        // New content (the file changed) starts afresh.
        let other = Ledger::acquire(&storage, "temp", &report("e2"), "c", LONG, LONG)
            .await
            .unwrap();
        assert!(other.done("open-issue").is_none());
    }

    #[tokio::test]
    async fn a_held_lease_makes_others_wait_then_give_up() {
        let (_dir, storage) = storage();
        let _held = Ledger::acquire(&storage, "temp", &report("e1"), "a", LONG, LONG)
            .await
            .unwrap();
        let err = Ledger::acquire(
            &storage,
            "temp",
            &report("e1"),
            "b",
            LONG,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, LedgerError::Busy { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("another run is handling this upload"));
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_holder_stops() {
        let (_dir, storage) = storage();
        let short = Duration::from_millis(100);
        let mut crashed = Ledger::acquire(&storage, "temp", &report("e1"), "a", short, LONG)
            .await
            .unwrap();
        crashed.mark_done("copy:k", "copied").await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut next = Ledger::acquire(&storage, "temp", &report("e1"), "b", LONG, LONG)
            .await
            .unwrap();
        assert!(next.done("copy:k").is_some());
        next.mark_done("post-webhook", "HTTP 200").await.unwrap();
        // The old holder wakes up: it must not carry on as if it still held the lease.
        let err = crashed
            .mark_done("post-webhook", "HTTP 200")
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::LostLease { .. }), "{err}");
    }
}
