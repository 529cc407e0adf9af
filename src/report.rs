//! What a check says about a file and an upload.
//!
//! The wire shape (`key, csv_valid, csv_rows, csv_encoding, ems, errors`) is read by WDIV's upload
//! API and must not change; `errors` is a single string of messages joined by `"\n"`. Everything
//! richer (warnings, problems with codes, rows and columns) rides along as extra fields, which the
//! API ignores.

use serde::{Deserialize, Serialize};

/// How bad a problem is: errors fail the file, warnings never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, for people (the message) and tools (the code, row and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Problem {
            code: code.to_owned(),
            severity: Severity::Error,
            row: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }
}

/// The verdict on one file of an upload.
///
/// `problems` is the single source of truth: `csv_valid`, `errors` and `warnings` on the wire are
/// derived from it, so they can never disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireFileReport", from = "WireFileReport")]
pub struct FileReport {
    pub key: String,
    pub csv_rows: u64,
    pub csv_encoding: String,
    pub ems: String,
    pub problems: Vec<Problem>,
    /// Extra detail that helps a person read the verdict (delimiter, size); not on the wire contract.
    pub details: FileDetails,
}

/// Facts about the file that are not verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u64>,
    /// The S3 ETag of the bytes that were checked: only those bytes are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl FileReport {
    pub fn new(key: impl Into<String>) -> Self {
        FileReport {
            key: key.into(),
            csv_rows: 0,
            csv_encoding: String::new(),
            ems: crate::checks::UNKNOWN_EMS.to_owned(),
            problems: Vec::new(),
            details: FileDetails::default(),
        }
    }

    pub fn csv_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }

    /// The `errors` wire field: messages joined by a newline, "" when none.
    pub fn errors_text(&self) -> String {
        self.errors()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Serialize, Deserialize)]
struct WireFileReport {
    key: String,
    csv_valid: bool,
    csv_rows: u64,
    csv_encoding: String,
    ems: String,
    errors: String,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    problems: Vec<Problem>,
    #[serde(default)]
    details: FileDetails,
}

impl From<FileReport> for WireFileReport {
    fn from(report: FileReport) -> Self {
        WireFileReport {
            csv_valid: report.csv_valid(),
            errors: report.errors_text(),
            warnings: report.warnings().map(|p| p.message.clone()).collect(),
            key: report.key,
            csv_rows: report.csv_rows,
            csv_encoding: report.csv_encoding,
            ems: report.ems,
            problems: report.problems,
            details: report.details,
        }
    }
}

impl From<WireFileReport> for FileReport {
    /// Reads a report back (for example an earlier `report.json`). A report written by the original
    /// program has no `problems`; its `errors` text becomes one problem per line.
    fn from(wire: WireFileReport) -> Self {
        let problems = if wire.problems.is_empty() {
            let errors = wire
                .errors
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| Problem::error("legacy", l));
            let warnings = wire.warnings.iter().map(|w| Problem::warning("legacy", w));
            errors.chain(warnings).collect()
        } else {
            wire.problems
        };
        FileReport {
            key: wire.key,
            csv_rows: wire.csv_rows,
            csv_encoding: wire.csv_encoding,
            ems: wire.ems,
            problems,
            details: wire.details,
        }
    }
}

/// The problem code of the upload rule that waits for a partner file.
pub const MISSING_FILES: &str = "missing-files";

/// Whether staff should hear of a failure among `files`: some error other than a missing
/// partner file.
pub fn email_due(files: &[FileReport]) -> bool {
    files
        .iter()
        .flat_map(FileReport::errors)
        .any(|p| p.code != MISSING_FILES)
}

/// The checks' verdict on a whole upload: its files, and whether staff should be emailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadVerdict {
    pub file_set: Vec<FileReport>,
    /// False when nothing failed, or when the only failures are ones that resolve themselves (the
    /// first file of a two-file Democracy Counts upload, whose partner is on its way).
    pub email_due: bool,
}

impl UploadVerdict {
    pub fn all_valid(&self) -> bool {
        self.file_set.iter().all(FileReport::csv_valid)
    }
}

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
}

impl UploadReport {
    pub fn all_valid(&self) -> bool {
        !self.file_set.is_empty() && self.file_set.iter().all(FileReport::csv_valid)
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
            .find(|e| *e != crate::checks::UNKNOWN_EMS)
            .unwrap_or(crate::checks::UNKNOWN_EMS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_fields_are_derived_from_problems() {
        let mut report = FileReport::new("E07000223/2019-05-02/x/file.csv");
        report.csv_rows = 10;
        report.csv_encoding = "utf-8".into();
        report.problems.push(Problem::error("a", "first"));
        report.problems.push(Problem::warning("w", "careful"));
        report
            .problems
            .push(Problem::error("b", "second").at_row(3));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["csv_valid"], false);
        assert_eq!(json["errors"], "first\nsecond");
        assert_eq!(json["warnings"], serde_json::json!(["careful"]));
        assert_eq!(json["problems"][2]["row"], 3);
        assert_eq!(json["ems"], "unknown");
    }

    #[test]
    fn a_clean_file_has_empty_errors_text() {
        let report = FileReport::new("k");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["csv_valid"], true);
        assert_eq!(json["errors"], "");
    }

    #[test]
    fn a_legacy_report_reads_back() {
        let legacy = r#"{"key":"k","csv_valid":false,"csv_rows":3,"csv_encoding":"utf-8",
            "ems":"Xpress DC","errors":"one\ntwo"}"#;
        let report: FileReport = serde_json::from_str(legacy).unwrap();
        assert!(!report.csv_valid());
        assert_eq!(report.errors_text(), "one\ntwo");
    }

    #[test]
    fn a_report_round_trips() {
        let mut report = FileReport::new("k");
        report
            .problems
            .push(Problem::warning("w", "careful").in_column("PostCode"));
        let back: FileReport =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }
}
