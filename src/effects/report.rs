//! Write `report.json` next to the files in the final bucket, once every copy and the issue are
//! done: it carries the issue's URL, and it is never written for an upload whose files are not
//! all there.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;

use super::{Effect, EffectError, Entry, Names, Planned, Planning, Run, StepKind};
use crate::event::REPORT_FILE;
use crate::report::UploadReport;
use crate::storage::{read_small, PutCondition, Small, Storage, StorageError};

/// A report larger than this in the final bucket is not ours.
const REPORT_LIMIT: usize = 16 * 1024 * 1024;
/// Rounds of read-compare-write when another run writes `report.json` at the same moment.
const REPORT_ROUNDS: usize = 4;

/// Its step.
pub const WRITE_REPORT: StepKind = StepKind::new("write report");

/// `report.json`, in the registry: no settings or client of its own.
pub const EFFECT: Entry = Entry {
    keys: &[],
    plan,
    client: None,
    production: None,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub bucket: String,
    pub key: String,
    /// The most files a report of ours lists (an existing one listing more is not ours).
    pub max_files: usize,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let write = WriteReport {
        bucket: p.settings.final_bucket.clone(),
        key: format!("{}/{REPORT_FILE}", p.prefix),
        max_files: p.settings.max_files_per_upload,
    };
    vec![Planned::new(write, p.unless_valid())
        .after(
            super::copy::COPY,
            "a file was not copied; the report is written only with all its files",
        )
        .after(
            super::issue::OPEN_ISSUE,
            "the issue was not opened; the report carries its URL",
        )]
}

#[async_trait]
impl Effect for WriteReport {
    fn kind(&self) -> StepKind {
        WRITE_REPORT
    }

    fn target(&self, names: &Names) -> String {
        names.object(&self.bucket, &self.key)
    }

    fn external(&self) -> bool {
        false
    }

    fn data(&self) -> serde_json::Value {
        json!({"bucket": self.bucket, "key": self.key})
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        Ok(write_report(
            run.clients.storage.as_ref(),
            &self.bucket,
            &self.key,
            &run.report,
            self.max_files,
        )
        .await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{clients, planning, report, settings};

    #[test]
    fn the_report_waits_for_every_copy_and_the_issue() {
        let r = report(true);
        let steps = plan(&planning(&r, &settings(&[])));
        let after: Vec<&str> = steps[0].after.iter().map(|(kind, _)| kind.verb()).collect();
        assert_eq!(after, ["copy", "open issue"]);
        assert_eq!(
            steps[0].effect.data()["key"],
            "X01/2024-05-02/t/report.json"
        );
        assert!(!steps[0].effect.external());
    }

    #[tokio::test]
    async fn a_report_listing_more_files_of_this_upload_is_kept_a_forged_one_is_not() {
        let (_dir, clients) = clients();
        let storage = clients.storage.as_ref();
        let key = "X01/2024-05-02/t/report.json";
        let mut two = report(true);
        let mut second = two.file_set[0].clone();
        second.key = "X01/2024-05-02/t/b.csv".into();
        two.file_set.push(second);
        async fn write(storage: &dyn Storage, r: &UploadReport) -> Result<String, StorageError> {
            write_report(storage, "final", "X01/2024-05-02/t/report.json", r, 10).await
        }
        // The two-file report, then a late one-file run: kept only once both files are there.
        write(storage, &two).await.unwrap();
        let one = report(true);
        let replaced = write(storage, &one).await.unwrap();
        assert_eq!(
            replaced, "written (1 files)",
            "its files are not in the bucket"
        );
        write(storage, &two).await.unwrap();
        for f in &two.file_set {
            storage
                .put(
                    "final",
                    &f.key,
                    Bytes::from_static(b"x"),
                    "text/csv",
                    PutCondition::Always,
                )
                .await
                .unwrap();
        }
        let kept = write(storage, &one).await.unwrap();
        assert!(
            kept.starts_with("kept the existing report, which lists 2 files"),
            "{kept}"
        );
        // Another upload's report, or one over the file limit, is not kept.
        let mut other = two.clone();
        other.timestamp = "other".into();
        storage
            .put(
                "final",
                key,
                Bytes::from(serde_json::to_vec(&other).unwrap()),
                "application/json",
                PutCondition::Always,
            )
            .await
            .unwrap();
        assert_eq!(write(storage, &one).await.unwrap(), "written (1 files)");
        write(storage, &two).await.unwrap();
        assert_eq!(
            write_report(storage, "final", key, &one, 1).await.unwrap(),
            "written (1 files)"
        );
    }
}
