//! The report on one upload as it goes on the wire: the webhook's body and `report.json`. Its
//! files' reports are the check engine's ([`wdiv_checks::FileReport`]); the upload-level extras
//! (the comparison with the last import, a staff override) are plain data here, made by
//! `history` and `staff_override` above.

use serde::{Deserialize, Serialize};
use wdiv_checks::{all_valid, email_due, FileReport};

/// The report on one upload: the webhook's body and `report.json`, field for field as WDIV's upload
/// API reads them. `file_set` entries carry extra fields (warnings, problems, details) that the API
/// ignores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReport {
    /// The council id from the key.
    pub gss: String,
    pub council_name: String,
    pub timestamp: String,
    pub election_date: String,
    /// The GitHub issue's URL (no `#issuecomment-…` fragment), or "".
    pub github_issue: String,
    pub file_set: Vec<FileReport>,
    /// Extra detail the API ignores: the comparison with the last import, a staff override.
    #[serde(flatten)]
    pub extra: ReportExtra,
}

/// The upload-level extra fields of a report (WDIV's API ignores them; absent when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportExtra {
    /// How the upload compares with the council's last import (made by `history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// Who accepted a failing upload, why and when (made by `staff_override`).
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub staff_override: Option<StaffOverride>,
}

impl UploadReport {
    /// The unit tests' upload: council X01, election 2024-05-02, timestamp `t`, with `file_set`
    /// (keys under `X01/2024-05-02/t/`).
    #[cfg(test)]
    pub(crate) fn example(file_set: Vec<wdiv_checks::FileReport>) -> UploadReport {
        UploadReport {
            gss: "X01".into(),
            council_name: "Somewhere".into(),
            timestamp: "t".into(),
            election_date: "2024-05-02".into(),
            github_issue: String::new(),
            file_set,
            extra: Default::default(),
        }
    }

    pub fn all_valid(&self) -> bool {
        all_valid(&self.file_set)
    }

    /// Whether staff should hear of a failure: not when the only errors are a missing partner
    /// file, which is on its way. The one definition (the checks' verdict uses it too).
    pub fn email_due(&self) -> bool {
        email_due(&self.file_set)
    }

    /// The upload's prefix, `{council_id}/{election_date}/{timestamp}`, as the keys have it.
    pub fn prefix(&self) -> String {
        crate::upload::prefix(&self.gss, &self.election_date, &self.timestamp)
    }

    /// The EMS of the upload, as the issue names it: the first file's that is known.
    pub fn ems(&self) -> &str {
        self.file_set
            .iter()
            .map(|f| f.ems.as_str())
            .find(|e| *e != wdiv_checks::UNKNOWN_EMS)
            .unwrap_or(wdiv_checks::UNKNOWN_EMS)
    }
}

/// How an upload compares with the council's last import: the report's extra `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The earlier upload's prefix, `{council_id}/{election_date}/{timestamp}`.
    pub earlier: String,
    /// The day it was uploaded (its timestamp's date), as the messages name it.
    pub earlier_date: String,
    /// One entry per file of this upload that has a counterpart in the earlier one.
    pub files: Vec<FileHistory>,
}

/// One file against its counterpart in the earlier upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHistory {
    pub key: String,
    pub earlier_key: String,
    pub rows: u64,
    pub earlier_rows: u64,
    /// Same size and ETag as the earlier file.
    pub identical: bool,
    /// The warning, when there is one (the same text is among the file's warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl History {
    /// The warnings, as the issue and the email list them: (key, message).
    pub fn warnings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .filter_map(|f| f.warning.as_deref().map(|w| (f.key.as_str(), w)))
    }
}

/// Why the last import could not be compared with (logged, never a failure).
/// Who accepted a failing upload, why, and when (UTC, first carried out): the report's
/// `override`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffOverride {
    pub by: String,
    pub reason: String,
    pub at: String,
}
