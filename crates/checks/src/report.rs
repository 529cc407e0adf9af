//! What a check says about a file and an upload.
//!
//! The wire shape (`key, csv_valid, csv_rows, csv_encoding, ems, errors`) is read by WDIV's upload
//! API and must not change; `errors` is a single string of messages joined by `"\n"`. Everything
//! richer (warnings, problems with codes, rows and columns) rides along as extra fields, which the
//! API ignores.

use serde::{Deserialize, Serialize};

use crate::text;
use crate::vocab::Code;

/// How bad a problem is: errors fail the file, warnings never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the file.
    Error,
    /// Told, but the file still passes.
    Warning,
}

/// One finding, for people (the message) and tools (the code, row and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem's code on the wire ([`Code::as_str`]; one read back may not be ours).
    pub code: String,
    /// Whether it fails the file.
    pub severity: Severity,
    /// The row it is on (the header is row 1), when it is on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The column it is in, by its header name, when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What a person reads: one line, bounded.
    pub message: String,
    /// An error that staff overrode (the service's staff override): kept in the report and in
    /// `errors`, but it no longer fails the file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
}

impl Problem {
    /// An error. The message leaves the program (the wire's `errors`, the staff email, the
    /// terminal), so it is bounded here, once for every check: one line, at most
    /// [`text::MAX_MESSAGE_BYTES`]. Values quoted inside it are bounded where they are quoted
    /// ([`text::quote`]).
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Problem {
            code: code.as_str().to_owned(),
            severity: Severity::Error,
            row: None,
            column: None,
            message: text::one_line(&message.into()),
            overridden: false,
        }
    }

    /// A warning, bounded as [`Problem::error`].
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    /// Whether the problem has `code` (a problem read back may have a code that is not ours).
    pub fn is(&self, code: Code) -> bool {
        self.code == code.as_str()
    }

    /// The row the problem is on (the header is row 1).
    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    /// The column the problem is in, by its header name (from the file: bounded as a quoted value).
    pub fn in_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(text::bounded_label(&column.into(), text::MAX_QUOTED_CHARS));
        self
    }

    /// The same problem with every text bounded as the constructors bound it: for a problem that
    /// did not come from them (read back from a `report.json`, which is untrusted).
    fn bounded(self) -> Self {
        Problem {
            code: text::bounded_label(&self.code, MAX_CODE_CHARS),
            column: self
                .column
                .map(|c| text::bounded_label(&c, text::MAX_QUOTED_CHARS)),
            message: text::one_line(&self.message),
            ..self
        }
    }

    /// How many problems a summary (`and N more errors`) stands for, or `None` for any other problem.
    fn summarised(&self) -> Option<u64> {
        let code = match self.severity {
            Severity::Error => Code::MoreErrors,
            Severity::Warning => Code::MoreWarnings,
        };
        if !self.is(code) {
            return None;
        }
        let n = self
            .message
            .strip_prefix("and ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok());
        Some(n.unwrap_or(1))
    }
}

/// The most errors a file's report lists; the rest are counted in one last error.
pub const MAX_ERRORS: usize = 50;
/// The most warnings a file's report lists; the rest are counted in one last warning.
pub const MAX_WARNINGS: usize = 50;
/// The longest problem code (ours are short; one read back may not be).
const MAX_CODE_CHARS: usize = 64;

/// The problems of one file, bounded as they are found: the first [`MAX_ERRORS`] errors and
/// [`MAX_WARNINGS`] warnings are kept, the others only counted, so a file with millions of bad
/// rows costs no more memory than one with fifty. [`Problems::into_vec`] ends the list with
/// `and N more errors` (an error, so an overflowing file still fails and the wire's `errors` says
/// so) and `and N more warnings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    kept: Vec<Problem>,
    errors: usize,
    warnings: usize,
    more_errors: u64,
    more_warnings: u64,
}

impl Problems {
    /// None yet.
    pub fn new() -> Self {
        Problems::default()
    }

    /// Keeps the problem, or counts it when its severity is full. A summary (`and N more …`, as
    /// [`Problems::into_vec`] writes it) adds its count.
    pub fn push(&mut self, problem: Problem) {
        if let Some(n) = problem.summarised() {
            match problem.severity {
                Severity::Error => self.more_errors = self.more_errors.saturating_add(n),
                Severity::Warning => self.more_warnings = self.more_warnings.saturating_add(n),
            }
            return;
        }
        let (kept, max, more) = match problem.severity {
            Severity::Error => (&mut self.errors, MAX_ERRORS, &mut self.more_errors),
            Severity::Warning => (&mut self.warnings, MAX_WARNINGS, &mut self.more_warnings),
        };
        if *kept < max {
            *kept += 1;
            self.kept.push(problem);
        } else {
            *more = more.saturating_add(1);
        }
    }

    /// Adds the problems another collector gathered (a part of the check).
    pub fn append(&mut self, other: Problems) {
        self.extend(other.kept);
        self.more_errors = self.more_errors.saturating_add(other.more_errors);
        self.more_warnings = self.more_warnings.saturating_add(other.more_warnings);
    }

    /// Whether any error was found, kept or counted: the file fails.
    pub fn has_errors(&self) -> bool {
        self.errors > 0 || self.more_errors > 0
    }

    /// Whether no problem was found, kept or counted.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more_errors == 0 && self.more_warnings == 0
    }

    /// The list a report holds: the kept problems in the order found, then the counts of the rest.
    pub fn into_vec(self) -> Vec<Problem> {
        let mut list = self.kept;
        if self.more_errors > 0 {
            let n = self.more_errors;
            let what = if n == 1 { "error" } else { "errors" };
            list.push(Problem::error(
                Code::MoreErrors,
                format!("and {n} more {what}"),
            ));
        }
        if self.more_warnings > 0 {
            let n = self.more_warnings;
            let what = if n == 1 { "warning" } else { "warnings" };
            list.push(Problem::warning(
                Code::MoreWarnings,
                format!("and {n} more {what}"),
            ));
        }
        list
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, problems: I) {
        for problem in problems {
            self.push(problem);
        }
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(problems: I) -> Self {
        let mut bounded = Problems::new();
        bounded.extend(problems);
        bounded
    }
}

/// The verdict on one file of an upload.
///
/// `problems` is the single source of truth: `csv_valid`, `errors` and `warnings` on the wire are
/// derived from it, so they can never disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireFileReport", from = "WireFileReport")]
pub struct FileReport {
    /// The file's name (its S3 key, or the path given to `check`).
    pub key: String,
    /// How many rows the file has: a CSV's header included, a JSON file's profile's rows.
    pub csv_rows: u64,
    /// The codec the file is read with, as Python names it (`utf-8`, `utf-8-sig`, `windows-1252`, …).
    pub csv_encoding: String,
    /// The EMS whose profile the file matched, or [`crate::UNKNOWN_EMS`].
    pub ems: String,
    /// Every error and warning, in the order found, bounded ([`Problems`]).
    pub problems: Vec<Problem>,
    /// Extra detail that helps a person read the verdict (delimiter, size); not on the wire contract.
    pub details: FileDetails,
}

/// Facts about the file that are not verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDetails {
    /// The file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The delimiter found (`tab` for a tab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// How many columns the header has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u64>,
    /// The S3 ETag of the bytes that were checked: only those bytes are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl FileReport {
    /// A report on `key` with nothing found yet: no rows, no problem, EMS unknown.
    pub fn new(key: impl Into<String>) -> Self {
        FileReport {
            key: key.into(),
            csv_rows: 0,
            csv_encoding: String::new(),
            ems: crate::vocab::UNKNOWN_EMS.to_owned(),
            problems: Vec::new(),
            details: FileDetails::default(),
        }
    }

    /// The report on a file refused unread (by [`crate::refusals`]): its name as people can
    /// read it (hidden characters escaped), and why.
    pub fn refused(key: &str, problem: Problem) -> Self {
        let mut report = FileReport::new(text::escape_control(key));
        report.problems.push(problem);
        report
    }

    /// Whether the file passes: no error, or only errors staff overrode.
    pub fn csv_valid(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| p.severity == Severity::Error && !p.overridden)
    }

    /// The problems that are errors (overridden ones too).
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The problems that are warnings.
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
    /// program has no `problems`; its `errors` text becomes one problem per line. A report read
    /// back is untrusted: its problems are bounded again, as the checks bound theirs.
    fn from(wire: WireFileReport) -> Self {
        let problems: Problems = if wire.problems.is_empty() {
            let errors = wire
                .errors
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| Problem::error(Code::Legacy, l));
            let warnings = wire
                .warnings
                .iter()
                .map(|w| Problem::warning(Code::Legacy, w));
            errors.chain(warnings).collect()
        } else {
            wire.problems.into_iter().map(Problem::bounded).collect()
        };
        FileReport {
            key: wire.key,
            csv_rows: wire.csv_rows,
            csv_encoding: wire.csv_encoding,
            ems: wire.ems,
            problems: problems.into_vec(),
            details: wire.details,
        }
    }
}

/// Whether staff should hear of a failure among `files`: some error other than a missing
/// partner file.
pub fn email_due(files: &[FileReport]) -> bool {
    files
        .iter()
        .flat_map(FileReport::errors)
        .any(|p| !p.is(Code::MissingFiles))
}

/// Whether an upload of `files` passes: it has files, and every one passes. The one definition.
pub fn all_valid(files: &[FileReport]) -> bool {
    !files.is_empty() && files.iter().all(FileReport::csv_valid)
}

/// The checks' verdict on a whole upload: its files, and whether staff should be emailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadVerdict {
    /// Each file's report, in the upload's order.
    pub file_set: Vec<FileReport>,
    /// False when nothing failed, or when the only failures are ones that resolve themselves (the
    /// first file of a two-file Democracy Counts upload, whose partner is on its way).
    pub email_due: bool,
}

impl UploadVerdict {
    /// Whether the upload passes ([`all_valid`] of its files).
    pub fn all_valid(&self) -> bool {
        all_valid(&self.file_set)
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
        report
            .problems
            .push(Problem::error(Code::IncompleteRow, "first"));
        report
            .problems
            .push(Problem::warning(Code::LongRows, "careful"));
        report
            .problems
            .push(Problem::error(Code::IncompleteRow, "second").at_row(3));
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
            .push(Problem::warning(Code::LongRows, "careful").in_column("PostCode"));
        let back: FileReport =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn messages_are_one_bounded_line_whoever_makes_them() {
        let forged = format!("{}\nFile: x.csv\nErrors: none", "n".repeat(10_000));
        for p in [
            Problem::error(Code::IncompleteRow, forged.as_str()),
            Problem::warning(Code::LongRows, forged.as_str()).in_column(forged.as_str()),
        ] {
            assert!(
                p.message.len() <= text::MAX_MESSAGE_BYTES,
                "{}",
                p.message.len()
            );
            assert!(!p.message.contains('\n'));
            assert!(p.column.as_deref().is_none_or(|c| c.chars().count() <= 40));
        }
        // A message already bounded is left alone: quoted escapes are not doubled.
        let quoted = format!("name {}", text::quote("a\\b\n"));
        assert_eq!(
            Problem::error(Code::IncompleteRow, quoted.as_str()).message,
            quoted
        );
    }

    #[test]
    fn fifty_errors_and_fifty_warnings_then_a_count() {
        let mut problems = Problems::new();
        for i in 0..1_000_000u64 {
            problems.push(Problem::error(Code::IncompleteRow, format!("error {i}")));
            if i < 60 {
                problems.push(Problem::warning(Code::LongRows, format!("warning {i}")));
            }
        }
        assert!(problems.has_errors());
        let mut report = FileReport::new("k");
        report.problems = problems.into_vec();
        assert_eq!(report.problems.len(), 102);
        assert!(!report.csv_valid());
        let errors = report.errors_text();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), MAX_ERRORS + 1);
        assert_eq!(lines[49], "error 49");
        assert_eq!(lines[50], "and 999950 more errors");
        let warnings: Vec<&str> = report.warnings().map(|w| w.message.as_str()).collect();
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(warnings[50], "and 10 more warnings");
        // Bounding again (one more error, then a read back) keeps the count right.
        let mut again: Problems = report.problems.clone().into_iter().collect();
        again.push(Problem::error(
            Code::MissingFiles,
            "Expected 2 files, found 1",
        ));
        let again = again.into_vec();
        assert_eq!(again.len(), 102);
        assert_eq!(again[100].message, "and 999951 more errors");
        let one: Problems = [
            Problem::error(Code::IncompleteRow, "x"),
            Problem::error(Code::IncompleteRow, "y"),
        ]
        .into_iter()
        .chain((0..MAX_ERRORS).map(|_| Problem::error(Code::IncompleteRow, "z")))
        .collect();
        assert_eq!(one.into_vec()[50].message, "and 2 more errors");
    }

    #[test]
    fn an_overflow_of_warnings_alone_passes() {
        let problems: Problems = (0..80)
            .map(|i| Problem::warning(Code::LongRows, format!("{i}")))
            .collect();
        assert!(!problems.has_errors());
        let mut report = FileReport::new("k");
        report.problems = problems.into_vec();
        assert!(report.csv_valid());
        assert_eq!(report.errors_text(), "");
        assert_eq!(
            report.warnings().last().unwrap().message,
            "and 30 more warnings"
        );
    }

    #[test]
    fn a_report_read_back_is_bounded_again() {
        let long = "x\nFile: forged\n".repeat(1000);
        let problems: Vec<serde_json::Value> = (0..500)
            .map(|i| {
                serde_json::json!({"code": long, "severity": "error", "column": long,
                "message": format!("{i} {long}")})
            })
            .collect();
        let wire = serde_json::json!({"key": "k", "csv_valid": false, "csv_rows": 1,
            "csv_encoding": "utf-8", "ems": "FCS", "errors": "", "problems": problems});
        let report: FileReport = serde_json::from_value(wire).unwrap();
        assert_eq!(report.problems.len(), MAX_ERRORS + 1);
        for p in &report.problems {
            assert!(p.message.len() <= text::MAX_MESSAGE_BYTES && !p.message.contains('\n'));
            assert!(p.code.chars().count() <= 64 && !p.code.contains('\n'));
            assert!(p.column.as_deref().is_none_or(|c| c.chars().count() <= 40));
        }
        assert_eq!(report.problems[50].message, "and 450 more errors");
        let legacy = serde_json::json!({"key": "k", "csv_valid": false, "csv_rows": 1,
            "csv_encoding": "utf-8", "ems": "x", "errors": long.repeat(10),
            "warnings": [long]});
        let report: FileReport = serde_json::from_value(legacy).unwrap();
        assert_eq!(report.errors().count(), MAX_ERRORS + 1);
        assert!(report
            .warnings()
            .all(|w| w.message.len() <= text::MAX_MESSAGE_BYTES));
        // What we write reads back the same.
        let back: FileReport =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }
}
