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

/// Opens `bytes` as Python's `open(path, encoding=label, newline="")` reads it, as WhereDoIVote's
/// import script does with the report's `csv_encoding`: the first line, or Python's error.
fn python_first_line(bytes: &[u8], label: &str) -> Result<String, String> {
    use encoding_rs::{UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};
    let strict = |enc: &'static encoding_rs::Encoding, bytes: &[u8]| {
        enc.decode_without_bom_handling_and_without_replacement(bytes)
            .map(|text| text.into_owned())
            .ok_or_else(|| format!("UnicodeDecodeError: {label}"))
    };
    let text = match label {
        // Python's utf-8 keeps a byte order mark as U+FEFF; utf-8-sig strips one if present.
        "utf-8" => strict(UTF_8, bytes)?,
        "utf-8-sig" => strict(UTF_8, bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes))?,
        // The utf-16 stream reader takes the byte order from the mark, and refuses a file
        // without one.
        "utf-16" => match bytes {
            [0xFF, 0xFE, rest @ ..] => strict(UTF_16LE, rest)?,
            [0xFE, 0xFF, rest @ ..] => strict(UTF_16BE, rest)?,
            _ => return Err("UnicodeError: UTF-16 stream does not start with BOM".into()),
        },
        "utf-16le" => strict(UTF_16LE, bytes)?,
        "utf-16be" => strict(UTF_16BE, bytes)?,
        // Python's cp1252 leaves five bytes undefined.
        "windows-1252"
            if bytes
                .iter()
                .any(|b| [0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b)) =>
        {
            return Err("UnicodeDecodeError: cp1252".into())
        }
        "windows-1252" => strict(WINDOWS_1252, bytes)?,
        "latin-1" => bytes.iter().map(|&b| b as char).collect(),
        other => return Err(format!("LookupError: unknown encoding {other}")),
    };
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Each fixture that starts with a byte order mark, and each Democracy Counts pair where only
/// one file has one, is read by the import script with the label `check --json` reports (a
/// pair's stations file's label for both, the file with fewer rows): its first header name has
/// no U+FEFF. A pair file that no shared label reads is the one the report warns about.
#[test]
fn each_file_with_a_byte_order_mark_is_read_by_the_import_with_its_reported_label() {
    let uploads = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads");
    let uploads_of = [
        vec!["encoding/utf8-bom.csv"],
        vec!["encoding/utf16le-bom.csv"],
        vec!["encoding/utf16be-bom.tsv"],
        vec!["encoding/utf16le-no-bom.csv"],
        vec!["encoding/windows-1252.tsv"],
        vec!["encoding/latin-1.csv"],
        vec![
            "democracy-counts/bom-stations.csv",
            "democracy-counts/plain-districts.csv",
        ],
        vec![
            "democracy-counts/plain-stations.csv",
            "democracy-counts/bom-districts.csv",
        ],
        vec![
            "democracy-counts/utf16-bom-stations.csv",
            "democracy-counts/utf16-plain-districts.csv",
        ],
    ];
    let mut labels_seen = Vec::new();
    for files in uploads_of {
        let out = Command::new(binary())
            .args(["check", "--json"])
            .args(files.iter().map(|f| uploads.join(f)))
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(0), "{files:?}: {out:?}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let reports = report["file_set"].as_array().expect("file_set");
        let stations = reports
            .iter()
            .min_by_key(|r| r["csv_rows"].as_u64())
            .expect("a file");
        let import_label = stations["csv_encoding"].as_str().expect("a label");
        for (file, r) in files.iter().zip(reports) {
            let bytes = std::fs::read(uploads.join(file)).unwrap();
            let label = r["csv_encoding"].as_str().unwrap();
            labels_seen.push(format!("{file}: {label}"));
            let warned = r["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains("pair")));
            let read = python_first_line(&bytes, import_label);
            let misread = read.as_ref().map_or(true, |line| line.contains('\u{feff}'));
            assert_eq!(misread, warned, "{file} read as {import_label}: {read:?}");
            if !warned {
                let own = python_first_line(&bytes, label).unwrap();
                assert!(!own.contains('\u{feff}'), "{file} as {label}: {own:?}");
            }
        }
    }
    assert_eq!(
        labels_seen,
        [
            "encoding/utf8-bom.csv: utf-8-sig",
            "encoding/utf16le-bom.csv: utf-16",
            "encoding/utf16be-bom.tsv: utf-16",
            "encoding/utf16le-no-bom.csv: utf-16le",
            "encoding/windows-1252.tsv: windows-1252",
            "encoding/latin-1.csv: latin-1",
            "democracy-counts/bom-stations.csv: utf-8-sig",
            "democracy-counts/plain-districts.csv: utf-8-sig",
            "democracy-counts/plain-stations.csv: utf-8-sig",
            "democracy-counts/bom-districts.csv: utf-8-sig",
            "democracy-counts/utf16-bom-stations.csv: utf-16",
            "democracy-counts/utf16-plain-districts.csv: utf-16le",
        ]
    );
    // What the old labels did: the mark stays in the first header name.
    let bom = std::fs::read(uploads.join("encoding/utf8-bom.csv")).unwrap();
    assert!(python_first_line(&bom, "utf-8")
        .unwrap()
        .starts_with('\u{feff}'));
}
