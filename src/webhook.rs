//! The WDIV webhook: the report, POSTed as JSON with `Authorization: Token …`, so the council
//! sees the verdict on the upload page.
//!
//! WDIV splits each file's `errors` on newlines and shows one line per error; every message is
//! one line already (see [`wdiv_checks::Problem`]). The body is bounded: when the whole report
//! would be over [`MAX_BODY_BYTES`], the extra fields WDIV ignores go first, then errors beyond
//! the first few of each file give way to an "and N more" line.

use serde_json::Value;

use crate::http::{self, HttpError};
use crate::report::UploadReport;
use crate::vocab::Secret;
use wdiv_checks::WDIV_MAX_KEY_CHARS;

/// The most a webhook body holds.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The fields of a file that WDIV reads; the others are extra detail.
const WIRE_FIELDS: [&str; 6] = [
    "key",
    "csv_valid",
    "csv_rows",
    "csv_encoding",
    "ems",
    "errors",
];

#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(client: reqwest::Client) -> Self {
        Webhook { client }
    }

    /// Posts the report; returns the HTTP status. A 500 is a final answer, not retried, when
    /// the site answers 500 after storing this report ([`site_stores_then_fails`]).
    pub async fn post(
        &self,
        url: &str,
        token: &Secret,
        report: &UploadReport,
    ) -> Result<u16, HttpError> {
        let body = body(report);
        let final_500 = site_stores_then_fails(report);
        let accept = |status: reqwest::StatusCode| final_500 && status.as_u16() == 500;
        let response = http::send_accepting("webhook", url, accept, || {
            self.client
                .post(url)
                .header("Authorization", format!("Token {}", token.expose()))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
        Ok(response.status().as_u16())
    }
}

/// Whether WhereDoIVote answers 500 to this report once it has it: its upload API
/// (`UploadSerializer.create` in DemocracyClub/UK-Polling-Stations) stores the files, then
/// raises for any file whose `csv_valid` is false, except a lone Democracy Counts file whose
/// only error is the missing partner. An overridden report is answered the same way when the
/// site already holds the upload's failing files: it replaces them only with a report of more
/// files. For such a report a 500 means "stored" (or, when the report beat the upload's row,
/// lost: the site's pending check and the failure email still reach staff), so posting it again
/// would only mail the site's admins another traceback.
pub fn site_stores_then_fails(report: &UploadReport) -> bool {
    if report.extra.staff_override.is_some() {
        return true;
    }
    let lone_partner_missing = matches!(
        report.file_set.as_slice(),
        [only] if only.ems == wdiv_checks::DEMOCRACY_COUNTS
            && only.errors_text() == wdiv_checks::missing_files(2, 1)
    );
    !lone_partner_missing && report.file_set.iter().any(|f| !f.csv_valid())
}

/// The webhook's body for `report`: all of it when it fits in [`MAX_BODY_BYTES`], else less.
pub fn body(report: &UploadReport) -> Vec<u8> {
    // A key the site cannot store (its file was refused for it) is shortened on the wire only,
    // so that the site stores the report and shows the refusal.
    let mut report = std::borrow::Cow::Borrowed(report);
    if report
        .file_set
        .iter()
        .any(|f| f.key.chars().count() > WDIV_MAX_KEY_CHARS)
    {
        for file in &mut report.to_mut().file_set {
            file.key = wdiv_checks::text::shorten_middle(&file.key, WDIV_MAX_KEY_CHARS);
        }
    }
    let full = serde_json::to_vec(&report).expect("a report serializes");
    if full.len() <= MAX_BODY_BYTES {
        return full;
    }
    let mut value = serde_json::to_value(report).expect("a report serializes");
    let files = value["file_set"]
        .as_array_mut()
        .expect("a report has a file_set");
    for file in files.iter_mut() {
        if let Value::Object(fields) = file {
            fields.retain(|name, _| WIRE_FIELDS.contains(&name.as_str()));
        }
    }
    let mut keep = 50;
    loop {
        let mut shrunk = value.clone();
        for file in shrunk["file_set"].as_array_mut().into_iter().flatten() {
            if let Some(errors) = file["errors"].as_str() {
                file["errors"] = Value::from(first_lines(errors, keep));
            }
        }
        let bytes = serde_json::to_vec(&shrunk).expect("a report serializes");
        if bytes.len() <= MAX_BODY_BYTES || keep == 0 {
            return bytes;
        }
        keep /= 2;
    }
}

/// The first `keep` lines of `errors`, then "and N more errors" for the rest.
fn first_lines(errors: &str, keep: usize) -> String {
    let lines: Vec<&str> = errors.lines().collect();
    if lines.len() <= keep.max(1) {
        return errors.to_owned();
    }
    let mut kept: Vec<String> = lines[..keep].iter().map(|l| l.to_string()).collect();
    kept.push(format!(
        "and {} more errors (see the report in the upload's page)",
        lines.len() - keep
    ));
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wdiv_checks::{FileReport, Problem};

    fn report(files: usize, errors: usize, message_bytes: usize) -> UploadReport {
        let file_set = (0..files)
            .map(|i| {
                let mut file = FileReport::new(format!("X01/2024-05-02/t/f{i}.csv"));
                for e in 0..errors {
                    file.problems.push(Problem::error(
                        wdiv_checks::Code::IncompleteRow,
                        format!("{e}: {}", "m".repeat(message_bytes)),
                    ));
                }
                file
            })
            .collect();
        UploadReport::example(file_set)
    }

    #[test]
    fn a_small_report_goes_whole() {
        let r = report(2, 3, 10);
        assert_eq!(body(&r), serde_json::to_vec(&r).unwrap());
    }

    #[test]
    fn a_large_report_is_cut_to_the_limit_keeping_the_wire_fields() {
        let r = report(10, 51, 1000);
        let bytes = body(&r);
        assert!(bytes.len() <= MAX_BODY_BYTES, "{}", bytes.len());
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["file_set"].as_array().unwrap().len(), 10);
        let file = &v["file_set"][0];
        assert_eq!(file["csv_valid"], false);
        assert!(file.get("problems").is_none());
        let errors = file["errors"].as_str().unwrap();
        assert!(errors.starts_with("0: mmm"));
        assert!(
            errors.lines().last().unwrap().starts_with("and "),
            "{errors}"
        );
        assert!(errors.lines().all(|l| l.len() <= 1100));
    }
}
