//! Every upload case, run through the built binary's `check --json`, as a council or a tool would.
//!
//! Two corpora share one harness: the conformance cases the original Python program passes (kept
//! outside this repository, read from `WDIV_CONFORMANCE_DIR`, default `../shared/conformance`),
//! and our own synthetic fixtures (`fixtures/cases.json`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wdiv-s3-trigger")
}

/// Runs every case of a `cases.json` whose files live in `files_dir`; returns the failures.
fn run_cases(cases_json: &Path, files_dir: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(cases_json)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", cases_json.display()));
    let doc: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let cases = doc["cases"].as_array().expect("a list of cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let files: Vec<PathBuf> = case["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| files_dir.join(f.as_str().expect("file name")))
            .collect();
        let mut cmd = Command::new(binary());
        cmd.arg("check").arg("--json");
        if let Some(council) = case["council"].as_str() {
            cmd.args(["--council", council]);
        }
        if let Some(date) = case["election_date"].as_str() {
            cmd.args(["--election-date", date]);
        }
        cmd.args(&files);
        let out = cmd.output().expect("the binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut fail = |what: String| failures.push(format!("[{name}] {what}"));
        let code = out.status.code();
        let expect_exit = case["expect_exit"].as_i64().map(|c| c as i32).or_else(|| {
            // The shared corpus has no expect_exit: derive it from the files' verdicts.
            let all_valid = case["expect"]
                .as_object()?
                .values()
                .all(|f| f["csv_valid"].as_bool().unwrap_or(false));
            Some(if all_valid { 0 } else { 1 })
        });
        if code != expect_exit {
            fail(format!(
                "exit code {code:?}, expected {expect_exit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let Ok(report) = serde_json::from_str::<Value>(&stdout) else {
            fail(format!("stdout is not JSON: {stdout}"));
            continue;
        };
        let file_set = report["file_set"].as_array().cloned().unwrap_or_default();
        if file_set.len() != files.len() {
            fail(format!(
                "{} reports for {} files",
                file_set.len(),
                files.len()
            ));
        }
        for (file, expected) in case["expect"].as_object().expect("expect").iter() {
            let Some(got) = file_set.iter().find(|r| {
                r["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(&format!("/{file}")) || k == file)
            }) else {
                fail(format!("no report for {file}"));
                continue;
            };
            for (field, want) in expected.as_object().expect("fields") {
                let have = &got[field.as_str()];
                match field.as_str() {
                    "errors" if want == "*" => {
                        if have.as_str().is_none_or(str::is_empty) {
                            fail(format!("{file}: expected some errors, got {have}"));
                        }
                    }
                    "errors_contain" | "warnings_contain" => {
                        let haystack = if field == "errors_contain" {
                            got["errors"].as_str().unwrap_or("").to_lowercase()
                        } else {
                            got["warnings"]
                                .as_array()
                                .map(|w| {
                                    w.iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join("\n")
                                })
                                .unwrap_or_default()
                                .to_lowercase()
                        };
                        for needle in want.as_array().expect("a list of substrings") {
                            let needle = needle.as_str().unwrap_or("").to_lowercase();
                            if !haystack.contains(&needle) {
                                fail(format!("{file}: {field} '{needle}' not in: {haystack}"));
                            }
                        }
                    }
                    "codes" => {
                        // The problems' codes, errors and warnings, in the report's order.
                        let codes: Vec<Value> = got["problems"]
                            .as_array()
                            .map(|ps| ps.iter().map(|p| p["code"].clone()).collect())
                            .unwrap_or_default();
                        if Value::Array(codes.clone()) != *want {
                            fail(format!("{file}: codes are {codes:?}, expected {want}"));
                        }
                    }
                    _ => {
                        if have != want {
                            fail(format!("{file}: {field} is {have}, expected {want}"));
                        }
                    }
                }
            }
        }
    }
    (cases.len(), failures)
}

fn conformance_dir() -> PathBuf {
    std::env::var_os("WDIV_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"))
}

#[test]
fn the_originals_conformance_cases_all_pass() {
    let dir = conformance_dir();
    let cases = dir.join("cases.json");
    if !cases.exists() {
        // Locally the corpus may be absent; CI sets WDIV_CONFORMANCE_DIR and `.ci/run` fails
        // before the tests when it is missing, so this can never be skipped there.
        assert!(
            std::env::var_os("CI").is_none(),
            "the conformance corpus is missing at {} (set WDIV_CONFORMANCE_DIR)",
            dir.display()
        );
        eprintln!(
            "NOTE: conformance corpus not found at {}; set WDIV_CONFORMANCE_DIR to run it. \
             These cases were NOT checked.",
            dir.display()
        );
        return;
    }
    let (n, failures) = run_cases(&cases, &dir.join("files"));
    assert!(n > 0, "no conformance cases found");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn our_fixture_cases_all_pass() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let (n, failures) = run_cases(&fixtures.join("cases.json"), &fixtures.join("uploads"));
    assert!(n >= 40, "only {n} fixture cases");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
