//! Changes against the last import: a passing upload is compared with the council's most recent
//! earlier upload in the final bucket, file by file, so staff hear of a file that lost half its
//! rows, or of the same file uploaded again, before they import it.
//!
//! The earlier upload is the one whose `report.json` sits under `{council_id}/` in the final bucket
//! with the newest timestamp *strictly before* this upload's, preferring one for the same election
//! date. Strictly before: on a redelivery, after this upload's own report was written, the upload
//! is never compared with itself, so the comparison (and the report, the issue and the email made
//! from it) is the same on every delivery. Timestamps are compared as the website writes them (ISO
//! 8601, which sorts as text).
//!
//! The cost is bounded: one listing under the council's prefix (paginated, at most
//! [`LISTING_LIMIT`] objects) and one read of at most [`REPORT_LIMIT`] bytes. A failure to look is
//! a note in the log, never a failed upload.
//!
//! Files are matched by EMS and role. A role is a file's place, by rows, among the files of its
//! EMS in its upload: a single-file EMS has one role; Democracy Counts' address file is always far
//! longer than its stations file, so the shorter is compared with the shorter.

use crate::event::REPORT_FILE;
use crate::report::{FileHistory, History, UploadReport};
use crate::storage::{read_small, ObjectInfo, Small, Storage, StorageError};
use crate::upload::UploadKey;
use wdiv_checks::Code;
use wdiv_checks::{FileReport, Problem, Problems};

/// The most objects the listing of a council's earlier uploads reads.
pub const LISTING_LIMIT: usize = 10_000;
/// The largest earlier `report.json` read.
pub const REPORT_LIMIT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{location} is over {REPORT_LIMIT} bytes; not read")]
    TooLarge { location: String },
    #[error("{location} was listed but is gone")]
    Vanished { location: String },
    #[error("{location} is not a report of that upload ({why})")]
    NotAReport { location: String, why: String },
}

/// Compares a passing `report` with the last import in `final_bucket`, adding its warnings to the
/// files and its detail to the report. Does nothing for a failing upload; a failure to look is
/// logged.
pub async fn annotate(
    storage: &dyn Storage,
    final_bucket: &str,
    warn_percent: u64,
    report: &mut UploadReport,
) {
    if !report.all_valid() {
        return;
    }
    match compare(storage, final_bucket, warn_percent, report).await {
        Ok(Some(history)) => {
            tracing::info!(
                earlier = history.earlier,
                warnings = history.warnings().count(),
                "compared with the last import"
            );
            report.extra.history = Some(history);
        }
        Ok(None) => tracing::info!("no earlier import of this council to compare with"),
        Err(e) => tracing::warn!("could not compare with the last import: {e}"),
    }
}

/// Finds the last import and compares with it; `None` when there is none.
pub async fn compare(
    storage: &dyn Storage,
    final_bucket: &str,
    warn_percent: u64,
    report: &mut UploadReport,
) -> Result<Option<History>, HistoryError> {
    let council = format!("{}/", report.gss);
    let mut listing = storage
        .list(final_bucket, &council, LISTING_LIMIT + 1)
        .await?;
    if listing.len() > LISTING_LIMIT {
        listing.truncate(LISTING_LIMIT);
        tracing::warn!(
            "the final bucket holds more than {LISTING_LIMIT} objects under {council}; comparing \
             with the last import among the first {LISTING_LIMIT}"
        );
    }
    let Some(earlier) = pick_earlier(
        &listing,
        &report.gss,
        &report.election_date,
        &report.timestamp,
    ) else {
        return Ok(None);
    };
    let key = format!("{earlier}/{REPORT_FILE}");
    let location = storage.location(final_bucket, &key);
    let bytes = match read_small(storage, final_bucket, &key, REPORT_LIMIT).await? {
        Small::Read(_, bytes) => bytes,
        Small::TooLarge(_) => return Err(HistoryError::TooLarge { location }),
        Small::Absent => return Err(HistoryError::Vanished { location }),
    };
    let before: UploadReport =
        serde_json::from_slice(&bytes).map_err(|e| HistoryError::NotAReport {
            location: location.clone(),
            why: wdiv_checks::text::truncate_chars(&e.to_string(), 200),
        })?;
    if before.prefix() != earlier {
        return Err(HistoryError::NotAReport {
            location,
            why: "it names another upload".into(),
        });
    }
    let objects: Vec<&ObjectInfo> = listing
        .iter()
        .filter(|o| o.key.starts_with(&format!("{earlier}/")))
        .collect();
    Ok(Some(compare_files(report, &before, &objects, warn_percent)))
}

/// The prefix of the upload to compare with: among the reports listed, the newest timestamp
/// strictly before `timestamp`, for `election_date` if there is one, else for any date.
pub fn pick_earlier(
    listing: &[ObjectInfo],
    council: &str,
    election_date: &str,
    timestamp: &str,
) -> Option<String> {
    let earlier: Vec<crate::upload::Upload> = listing
        .iter()
        .filter(|o| o.key.ends_with(&format!("/{REPORT_FILE}")))
        .filter_map(|o| UploadKey::parse(&o.key).ok())
        .map(|k| k.upload)
        .filter(|u| u.council_id == council && u.timestamp.as_str() < timestamp)
        .collect();
    let newest = |same_date: bool| {
        earlier
            .iter()
            .filter(|u| !same_date || u.election_date.to_string() == election_date)
            .max_by(|a, b| (&a.timestamp, &a.prefix).cmp(&(&b.timestamp, &b.prefix)))
            .map(|u| u.prefix.clone())
    };
    newest(true).or_else(|| newest(false))
}

/// Each file's role: its place by rows (then key) among the files of its EMS.
fn roles(files: &[FileReport]) -> Vec<(String, usize)> {
    files
        .iter()
        .map(|f| {
            let rank = files
                .iter()
                .filter(|o| o.ems == f.ems && (o.csv_rows, &o.key) < (f.csv_rows, &f.key))
                .count();
            (f.ems.clone(), rank)
        })
        .collect()
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// The day of a website timestamp (`2024-04-01T10:11:12.123456` → `2024-04-01`), or the
/// timestamp itself when it does not start with one.
pub fn day_of(timestamp: &str) -> String {
    match timestamp.get(..10) {
        Some(day) if day.parse::<wdiv_checks::Date>().is_ok() => day.to_owned(),
        _ => timestamp.to_owned(),
    }
}

/// Compares each file of `report` with its counterpart in `before` (`objects`: the earlier
/// upload's objects in the final bucket, for their sizes and ETags), adding the warnings.
pub fn compare_files(
    report: &mut UploadReport,
    before: &UploadReport,
    objects: &[&ObjectInfo],
    warn_percent: u64,
) -> History {
    let date = day_of(&before.timestamp);
    let now_roles = roles(&report.file_set);
    let before_roles = roles(&before.file_set);
    let mut files = Vec::new();
    for (file, role) in report.file_set.iter_mut().zip(&now_roles) {
        let Some(old) = before
            .file_set
            .iter()
            .zip(&before_roles)
            .find(|(_, r)| *r == role)
            .map(|(f, _)| f)
        else {
            continue;
        };
        let listed = objects.iter().find(|o| o.key == old.key);
        let old_size = listed.map(|o| o.size).or(old.details.bytes);
        let old_etags = [listed.map(|o| o.etag.as_str()), old.details.etag.as_deref()];
        let identical = match (file.details.bytes, old_size, file.details.etag.as_deref()) {
            (Some(size), Some(old_size), Some(etag)) => {
                size == old_size
                    && !unquoted(etag).is_empty()
                    && old_etags
                        .iter()
                        .flatten()
                        .any(|e| unquoted(e) == unquoted(etag))
            }
            _ => false,
        };
        let (rows, old_rows) = (file.csv_rows, old.csv_rows);
        let diff = rows.abs_diff(old_rows);
        let warning = if identical {
            Some(format!(
                "This file is the same as the one uploaded on {date} (same size and ETag)"
            ))
        } else if old_rows > 0
            && u128::from(diff) * 100 > u128::from(warn_percent) * u128::from(old_rows)
        {
            let percent =
                (u128::from(diff) * 100 + u128::from(old_rows) / 2) / u128::from(old_rows);
            let way = if rows > old_rows { "up" } else { "down" };
            Some(format!(
                "Row count changed from {old_rows} in the upload of {date} to {rows} ({way} \
                 {percent}%, more than {warn_percent}%): check that the file is complete"
            ))
        } else {
            None
        };
        if let Some(message) = &warning {
            let code = if identical {
                Code::SameAsEarlier
            } else {
                Code::RowsChanged
            };
            let mut problems: Problems = std::mem::take(&mut file.problems).into_iter().collect();
            problems.push(Problem::warning(code, message.as_str()));
            file.problems = problems.into_vec();
        }
        files.push(FileHistory {
            key: file.key.clone(),
            earlier_key: old.key.clone(),
            rows,
            earlier_rows: old_rows,
            identical,
            warning,
        });
    }
    History {
        earlier: before.prefix(),
        earlier_date: date,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: 1,
            etag: "\"e\"".into(),
        }
    }

    #[test]
    fn the_newest_earlier_report_wins_preferring_the_same_election() {
        let listing = [
            object("X01/2024-05-02/2024-03-01T09:00:00.000000/report.json"),
            object("X01/2024-05-02/2024-03-01T09:00:00.000000/a.csv"),
            object("X01/2023-05-04/2024-03-20T09:00:00.000000/report.json"),
            object("X01/2024-05-02/2024-04-01T09:00:00.000000/report.json"),
            object("X01/2024-05-02/2024-05-01T09:00:00.000000/report.json"),
            object("X01/2024-05-02/not a report.json"),
        ];
        let pick = |date: &str, ts: &str| pick_earlier(&listing, "X01", date, ts);
        // Strictly before: the upload's own report is never its own last import.
        assert_eq!(
            pick("2024-05-02", "2024-04-01T09:00:00.000000").as_deref(),
            Some("X01/2024-05-02/2024-03-01T09:00:00.000000")
        );
        assert_eq!(
            pick("2024-05-02", "2024-04-02T00:00:00.000000").as_deref(),
            Some("X01/2024-05-02/2024-04-01T09:00:00.000000")
        );
        // Another election's upload, when this election has none earlier.
        assert_eq!(
            pick("2025-05-01", "2024-03-25T00:00:00.000000").as_deref(),
            Some("X01/2023-05-04/2024-03-20T09:00:00.000000")
        );
        assert_eq!(pick("2024-05-02", "2024-01-01T00:00:00.000000"), None);
    }

    fn upload(ts: &str, files: &[(&str, &str, u64, &str)]) -> UploadReport {
        UploadReport {
            gss: "X01".into(),
            council_name: "Somewhere".into(),
            timestamp: ts.into(),
            election_date: "2024-05-02".into(),
            github_issue: String::new(),
            file_set: files
                .iter()
                .map(|(name, ems, rows, etag)| {
                    let mut f = FileReport::new(format!("X01/2024-05-02/{ts}/{name}"));
                    f.ems = ems.to_string();
                    f.csv_rows = *rows;
                    f.details.bytes = Some(100);
                    f.details.etag = Some(format!("\"{etag}\""));
                    f
                })
                .collect(),
            extra: Default::default(),
        }
    }

    #[test]
    fn rows_are_compared_by_ems_and_role_either_way_beyond_the_threshold() {
        let dc = "Democracy Counts";
        let before = upload(
            "2024-03-01T09:00:00",
            &[
                ("addresses.csv", dc, 1000, "a"),
                ("stations.csv", dc, 20, "s"),
            ],
        );
        // Renamed files, in another order: matched by role (the shorter with the shorter).
        let mut now = upload(
            "2024-04-01T09:00:00",
            &[("s.csv", dc, 27, "s2"), ("a.csv", dc, 1300, "a2")],
        );
        let history = compare_files(&mut now, &before, &[], 30);
        assert_eq!(history.earlier_date, "2024-03-01");
        // 35% up for the stations; exactly 30% for the addresses is not beyond the threshold.
        assert_eq!(
            history.files[0].warning.as_deref(),
            Some(
                "Row count changed from 20 in the upload of 2024-03-01 to 27 (up 35%, more than \
                 30%): check that the file is complete"
            )
        );
        assert_eq!(history.files[0].earlier_key, before.file_set[1].key);
        assert_eq!(history.files[1].warning, None);
        assert_eq!(now.file_set[0].warnings().count(), 1);
        assert!(now.file_set[0].csv_valid());
        // Another EMS has no counterpart.
        let mut other = upload("2024-04-01T09:00:00", &[("x.csv", "Xpress DC", 1, "x")]);
        assert!(compare_files(&mut other, &before, &[], 30).files.is_empty());
    }

    #[test]
    fn the_same_size_and_etag_is_the_same_file_whichever_side_records_it() {
        let before = upload("2024-03-01T09:00:00", &[("a.csv", "Xpress DC", 10, "e1")]);
        let mut now = upload("2024-04-01T09:00:00", &[("b.csv", "Xpress DC", 10, "e1")]);
        let history = compare_files(&mut now, &before, &[], 30);
        assert!(history.files[0].identical);
        assert_eq!(
            now.file_set[0].warnings().next().unwrap().message,
            "This file is the same as the one uploaded on 2024-03-01 (same size and ETag)"
        );
        // An older report without ETags: the listing's ETag of the copy counts.
        let mut legacy = before.clone();
        legacy.file_set[0].details = Default::default();
        let listed = ObjectInfo {
            key: legacy.file_set[0].key.clone(),
            size: 100,
            etag: "\"e1\"".into(),
        };
        let mut now = upload("2024-04-01T09:00:00", &[("b.csv", "Xpress DC", 10, "e1")]);
        assert!(compare_files(&mut now, &legacy, &[&listed], 30).files[0].identical);
        // Another size is another file.
        let mut now = upload("2024-04-01T09:00:00", &[("b.csv", "Xpress DC", 10, "e1")]);
        now.file_set[0].details.bytes = Some(99);
        assert!(!compare_files(&mut now, &before, &[], 30).files[0].identical);
    }

    #[test]
    fn a_day_is_taken_from_a_website_timestamp() {
        assert_eq!(day_of("2024-03-01T09:00:00.000000"), "2024-03-01");
        assert_eq!(day_of("t1"), "t1");
    }
}
