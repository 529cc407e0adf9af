//! Uploads written by someone hostile, through the real binary's `check`: whatever a file holds,
//! every message is one line of at most 1 KB, every value it quotes is at most 40 characters with
//! hidden characters escaped, a file's report lists at most 50 errors and 50 warnings, nothing
//! reaches a terminal as a control character, and memory stays flat.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The limits the checks promise (src/text.rs, src/report.rs).
const MAX_MESSAGE_BYTES: usize = 1024;
const MAX_QUOTED_CHARS: usize = 40;
const MAX_LISTED: usize = 50;
/// The peak resident memory a whole `check --json` process may use on a 100 MB upload.
const MAX_PEAK_RSS_KB: u64 = 64 * 1024;
/// `check --json` of one file, whatever the file: a few KB, far below this.
const MAX_STDOUT_BYTES: usize = 256 * 1024;

/// Text that fills a station name: forged report lines, a terminal escape, a fake verdict.
const FORGERY: &str = r"\nFile: x.csv\nErrors: none\n\u001b[2J\u001b]0;forged title\u0007PASS ";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wdiv-s3-trigger")
}

/// Runs the binary and measures its peak resident memory (KB): with `/usr/bin/time` when the
/// machine has it, else with `getrusage(RUSAGE_CHILDREN)`, the largest of this process's waited-for
/// children (an upper bound: the other children of these tests are small).
fn run(args: &[&std::ffi::OsStr]) -> (Output, u64) {
    run_with(args, |_| {})
}

/// [`run`], with the command set up further by `setup` (environment, working folder).
fn run_with(args: &[&std::ffi::OsStr], setup: impl Fn(&mut Command)) -> (Output, u64) {
    let time = Path::new("/usr/bin/time");
    if time.exists() {
        let dir = tempfile::tempdir().unwrap();
        let measured = dir.path().join("rss");
        let mut command = Command::new(time);
        command
            .args(["-f", "%M", "-o"])
            .arg(&measured)
            .arg(binary())
            .args(args)
            .env_remove("CLICOLOR_FORCE");
        setup(&mut command);
        let out = command.output().expect("the binary runs");
        let text = std::fs::read_to_string(&measured).unwrap();
        // GNU time writes "Command exited with non-zero status 1" before the figure.
        let kb = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no figure from /usr/bin/time: {text}"));
        (out, kb)
    } else {
        let mut command = Command::new(binary());
        command.args(args).env_remove("CLICOLOR_FORCE");
        setup(&mut command);
        let out = command.output().expect("the binary runs");
        // SAFETY: getrusage only writes the struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
            usage
        };
        (out, usage.ru_maxrss as u64)
    }
}

fn check_json(file: &Path, extra: &[&str]) -> (Output, Value, u64) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["check".as_ref(), "--json".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.push(file.as_os_str());
    let (out, rss) = run(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report, rss)
}

/// The values quoted in `message` (`"…"`, `\"` inside), each as it was before escaping.
fn quoted_values(message: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('u') => {
                        // \u{hex}
                        let code: String = chars.by_ref().take_while(|c| *c != '}').collect();
                        let code = u32::from_str_radix(code.trim_start_matches('{'), 16)
                            .unwrap_or_else(|_| panic!("a bad escape in {message}"));
                        value.push(char::from_u32(code).unwrap());
                    }
                    Some(other) => value.push(other),
                    None => panic!("a message ends inside an escape: {message}"),
                },
                c => value.push(c),
            }
        }
        values.push(value);
    }
    values
}

/// Every promise about one file's report: bounded one-line messages, bounded quotes, at most
/// fifty errors and warnings (plus their counts), nothing a terminal would obey.
fn assert_bounded(file: &Value) {
    let errors = file["errors"].as_str().expect("errors is a string");
    let lines: Vec<&str> = errors.split('\n').collect();
    assert!(lines.len() <= MAX_LISTED + 1, "{} error lines", lines.len());
    let warnings = file["warnings"].as_array().expect("warnings");
    assert!(
        warnings.len() <= MAX_LISTED + 1,
        "{} warnings",
        warnings.len()
    );
    let messages = lines
        .iter()
        .copied()
        .chain(warnings.iter().map(|w| w.as_str().unwrap()));
    for message in messages {
        assert!(
            message.len() <= MAX_MESSAGE_BYTES,
            "{} bytes",
            message.len()
        );
        assert!(
            !message.contains(['\r', '\u{1b}', '\u{7}', '\u{2028}']),
            "{message}"
        );
        for value in quoted_values(message) {
            assert!(
                value.chars().count() <= MAX_QUOTED_CHARS,
                "a quote of {} characters: {value:?}",
                value.chars().count()
            );
        }
    }
    for p in file["problems"].as_array().expect("problems") {
        let message = p["message"].as_str().unwrap();
        assert!(message.len() <= MAX_MESSAGE_BYTES && !message.contains('\n'));
        if let Some(column) = p["column"].as_str() {
            assert!(column.chars().count() <= MAX_QUOTED_CHARS, "{column:?}");
            assert!(!column.contains(['\n', '\u{1b}']), "{column:?}");
        }
    }
}

/// One FCS station; `properties` is its row list, or `None` for a station without one.
fn station(out: &mut impl Write, id: usize, name: &str, properties: Option<&str>) {
    write!(
        out,
        r#"{{"id": {id}, "stationId": {id}, "name": "{name}", "addressLine1": "Church Lane",
"addressLine2": "", "addressLine3": "", "addressLine4": "", "addressLine5": "",
"addressPostCode": "LS29 4PA", "addressUprn": 0, "latitude": 0.0, "longitude": 0.0,
"defaultStationId": 40, "#
    )
    .unwrap();
    if let Some(list) = properties {
        write!(out, r#""properties": {list}, "#).unwrap();
    }
    write!(
        out,
        r#""pollingDistricts": [{{"id": 70, "name": "AA1"}}]}}"#
    )
    .unwrap();
}

const ONE_PROPERTY: &str = r#"[{"addressLine1": "1 Fernhill Drive", "addressLine2": "",
"addressLine3": "", "addressLine4": "", "addressLine5": "", "addressPostCode": "EX4 6PD",
"addressUprn": 900100000140}]"#;

/// The snapshot of the "Untrusted uploads" issue: one good station, then `stations` without
/// properties, each named with 10 KB of forged lines.
fn forged_snapshot(dir: &Path, stations: usize) -> PathBuf {
    let path = dir.join("snapshot.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let name = FORGERY.repeat(10 * 1024 / FORGERY.len());
    out.write_all(b"[\n").unwrap();
    station(&mut out, 0, "Ambleford Village Hall", Some(ONE_PROPERTY));
    for id in 1..=stations {
        out.write_all(b",\n").unwrap();
        station(&mut out, id, &name, None);
    }
    out.write_all(b"\n]\n").unwrap();
    out.flush().unwrap();
    path
}

#[test]
fn a_100_mb_snapshot_of_forged_station_names_gets_a_short_bounded_report() {
    let dir = tempfile::tempdir().unwrap();
    let stations = 10_000;
    let path = forged_snapshot(dir.path(), stations);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 100_000_000 && size < 150_000_000, "{size} bytes");

    let started = std::time::Instant::now();
    let (out, report, rss) = check_json(&path, &[]);
    eprintln!(
        "check --json of a {size}-byte forged snapshot: {:.1} s, peak RSS {rss} KB, stdout {} bytes",
        started.elapsed().as_secs_f64(),
        out.stdout.len()
    );

    assert_eq!(out.status.code(), Some(1), "the file fails");
    assert!(
        out.stdout.len() < MAX_STDOUT_BYTES,
        "{} bytes",
        out.stdout.len()
    );
    assert!(!out.stdout.contains(&0x1b), "a raw ESC in the output");
    let file = &report["file_set"][0];
    assert_eq!(file["ems"], "FCS");
    assert_eq!(file["csv_valid"], false);
    assert_bounded(file);
    let errors = file["errors"].as_str().unwrap();
    // No forged section: the forged text is inside one line, escaped.
    for line in errors.split('\n') {
        assert!(
            !line.starts_with("File:") && !line.starts_with("Errors:"),
            "{line}"
        );
    }
    assert!(errors.contains(r#"name "\nFile: x.csv\nErrors: none\n\u{1b}[2J\u{1b}]0;forge…""#));
    // The check names five stations and counts the rest, in its one error.
    let named = quoted_values(errors).len();
    assert_eq!(named, 5, "{errors}");
    let more = format!(" and {} more. ", stations - named);
    assert!(
        errors.starts_with(&format!("{stations} stations have no list of properties"))
            && errors.contains(&more),
        "{errors}"
    );
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
}

#[test]
fn a_first_station_of_ten_thousand_10_kb_keys_is_not_kept_in_memory() {
    // The keys of the first element decide the EMS; only those a profile names are kept.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let filler = FORGERY.repeat(10 * 1024 / FORGERY.len());
    out.write_all(b"[{").unwrap();
    for i in 0..10_000 {
        write!(out, r#""{i}{filler}": {i}, "#).unwrap();
    }
    let mut rest = Vec::new();
    station(&mut rest, 1, "Hall", Some(ONE_PROPERTY));
    out.write_all(&rest[1..]).unwrap();
    out.write_all(b"]\n").unwrap();
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 100_000_000, "{size} bytes");

    let (out, report, rss) = check_json(&path, &[]);
    eprintln!("check --json of {size} bytes of keys: peak RSS {rss} KB");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["file_set"][0]["ems"], "FCS");
    assert_eq!(report["file_set"][0]["csv_rows"], 1);
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
}

#[test]
fn a_station_name_of_100_mb_is_neither_held_nor_quoted_whole() {
    // The JSON parser keeps a string whole; the check cuts long strings before it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-name.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(b"[").unwrap();
    station(&mut out, 0, "Ambleford Village Hall", Some(ONE_PROPERTY));
    out.write_all(b",\n").unwrap();
    let piece = FORGERY.repeat(1024);
    let mut name = Vec::new();
    station(&mut name, 1, "NAME", None);
    let (before, after) = {
        let at = name.windows(4).position(|w| w == b"NAME").unwrap();
        (name[..at].to_vec(), name[at + 4..].to_vec())
    };
    out.write_all(&before).unwrap();
    while out.get_ref().metadata().unwrap().len() < 100_000_000 {
        out.write_all(piece.as_bytes()).unwrap();
    }
    out.write_all(&after).unwrap();
    out.write_all(b"]\n").unwrap();
    out.flush().unwrap();
    drop(out);

    let (out, report, rss) = check_json(&path, &[]);
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!("check --json of a {size}-byte name: peak RSS {rss} KB");
    assert_eq!(out.status.code(), Some(1));
    let file = &report["file_set"][0];
    assert_eq!(file["ems"], "FCS");
    assert_bounded(file);
    let errors = file["errors"].as_str().unwrap();
    assert!(
        errors.starts_with(r#"Station name "\nFile: x.csv\nErrors: none\n\u{1b}[2J\u{1b}]0;forge…" (element 2) has no list"#),
        "{errors}"
    );
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
}

/// Issue 25: the JSON parser keeps a number whole, so one number as long as the file was held in
/// memory (153 MB for 140 MiB of digits) and the file passed. A number past 1 KB now fails the
/// file as not a snapshot, read in bounded memory, in `check` and through the pipeline.
#[test]
fn a_json_file_of_one_huge_number_fails_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = "E07000223/2024-05-02/2024-04-01T10:11:12.123456";
    let upload = dir.path().join("local-buckets/wdiv-temp").join(prefix);
    std::fs::create_dir_all(&upload).unwrap();
    std::fs::create_dir_all(dir.path().join("local-buckets/wdiv-final")).unwrap();
    let mib = 1 << 20;
    let cases = [
        ("digits.json", &b"["[..], b'1', 140 * mib),
        ("exponent.json", &b"[-1e"[..], b'9', 60 * mib),
    ];
    for (name, start, digit, count) in cases {
        let path = upload.join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all(start).unwrap();
        let block = [digit; 64 * 1024];
        for _ in 0..count / block.len() {
            out.write_all(&block).unwrap();
        }
        out.write_all(b"]").unwrap();
        out.flush().unwrap();
        drop(out);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 150_000_000, "{size} bytes");
        let message = "The file is not a snapshot: the number at line 1, column 2 is more than \
                       1024 characters long. Please upload the snapshot exactly as it was \
                       exported.";

        let (out, report, rss) = check_json(&path, &[]);
        eprintln!("check --json of {name} ({size} bytes): peak RSS {rss} KB");
        let file = &report["file_set"][0];
        assert_eq!(out.status.code(), Some(1), "{report}");
        assert_eq!(file["errors"], message);
        assert_eq!(file["problems"][0]["code"], "number-too-long");
        assert!(rss <= MAX_PEAK_RSS_KB, "{name}: peak RSS {rss} KB");

        // The pipeline, on local buckets: the same verdict, nothing copied.
        let event = dir.path().join("event.json");
        let key = format!("{prefix}/{name}");
        let record = wdiv_s3_trigger::object_created("wdiv-temp", &key, size, "e");
        std::fs::write(&event, record.to_string()).unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let wdiv = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let args = ["run".as_ref(), "--json".as_ref(), event.as_os_str()];
        let (out, rss) = run_with(&args, |command| {
            command
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("LOCAL_BUCKETS_DIR", dir.path().join("local-buckets"))
                .env("WDIV_API_URL", &wdiv);
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("run of {name} ({size} bytes): peak RSS {rss} KB");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outcome: Value = serde_json::from_str(&stdout).unwrap();
        let file = &outcome[0]["uploads"][0]["report"]["file_set"][0];
        assert_eq!(file["errors"], message, "{stdout}");
        assert!(!dir
            .path()
            .join("local-buckets/wdiv-final")
            .join(&key)
            .exists());
        assert!(
            rss <= MAX_PEAK_RSS_KB,
            "{name} through the pipeline: peak RSS {rss} KB"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

/// An Xpress DC file whose rule columns hold what a hostile uploader would put there: line breaks
/// inside quotes, terminal escapes, a 10 KB value; padded past the 1 KB floor.
fn hostile_csv(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let long = format!("{}\u{1b}[2J", "W".repeat(10 * 1024));
    let mut text = String::from("ElectionDate,Post_Code,Polling_Place_Postcode,Name\r\n");
    let rows = [
        "23/05/2019,\"HA8\r\nFile: x.csv\r\nErrors: none\",HA8 6EZ,a\r\n".to_owned(),
        "23/05/2019,\"\u{1b}[2J\u{1b}]0;forged\u{7}PASS\",HA8 6EZ,b\r\n".to_owned(),
        format!("23/05/2019,HA8 6NB,\"{long}\",c\r\n"),
        "\"02/05/2019\n\u{1b}[31mFAIL\",HA8 6NB,HA8 6EZ,d\r\n".to_owned(),
        format!("\"{long}\",HA8 6NB,HA8 6EZ,e\r\n"),
    ];
    for row in &rows {
        text.push_str(row);
    }
    for _ in 0..50 {
        text.push_str("23/05/2019,HA8 6NB,HA8 6EZ,f\r\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cells_with_line_breaks_escapes_and_10_kb_values_are_quoted_short_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_csv(dir.path(), "stations.csv");
    let (out, report, _) = check_json(&path, &["--election-date", "2019-05-23"]);
    assert_eq!(out.status.code(), Some(0), "warnings only: {report}");
    let file = &report["file_set"][0];
    assert_eq!(file["ems"], "Xpress DC");
    assert_bounded(file);
    let warnings: Vec<&str> = file["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let postcode = warnings
        .iter()
        .find(|w| w.contains("malformed postcode in column Post_Code"))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(
        postcode.contains(r#"row 2: "HA8\r\nFile: x.csv\r\nErrors: none""#),
        "{postcode}"
    );
    assert!(postcode.contains(r#"row 3: "\u{1b}[2J\u{1b}]0;forged\u{7}PASS""#));
    let place = warnings
        .iter()
        .find(|w| w.contains("column Polling_Place_Postcode"))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(
        place.contains(&format!("row 4: \"{}…\"", "W".repeat(39))),
        "{place}"
    );
    let date = warnings
        .iter()
        .find(|w| w.contains("ElectionDate other than"))
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(
        date.contains(r#"row 5: "02/05/2019\n\u{1b}[31mFAIL""#),
        "{date}"
    );
    assert!(
        date.contains(&format!("row 6: \"{}…\"", "W".repeat(39))),
        "{date}"
    );
}

#[test]
fn warnings_past_fifty_are_counted_in_one_more() {
    // 300 header names, each twice: 300 duplicate-column warnings, and one about the EMS. Names
    // of 1 KB: the header (about 610 KB) stays under the 1 MB a header row may take.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.csv");
    let names: Vec<String> = (0..300)
        .flat_map(|i| {
            let name = format!("\"col\n{i}\u{1b}[2J{}\"", "x".repeat(1000));
            [name.clone(), name]
        })
        .collect();
    let row: Vec<&str> = vec!["1"; names.len()];
    std::fs::write(&path, format!("{}\n{}\n", names.join(","), row.join(","))).unwrap();
    let (out, report, _) = check_json(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "warnings never fail");
    let file = &report["file_set"][0];
    assert_bounded(file);
    let warnings = file["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), MAX_LISTED + 1);
    assert_eq!(warnings[MAX_LISTED], "and 251 more warnings");
    assert_eq!(file["errors"], "");
    assert!(out.stdout.len() < 64 * 1024, "{} bytes", out.stdout.len());
}

#[test]
fn the_check_table_prints_no_control_character() {
    let dir = tempfile::tempdir().unwrap();
    // The file's name, its first header cell (quoted in the unknown-EMS warning) and its cells.
    let name = "evil\u{1b}[2J\u{1b}]0;title\u{7}PASS\n.csv";
    let path = dir.path().join(name);
    let mut text = String::from("\"\u{1b}[2JHouse\u{1b}[32mPASS\",b,b\n");
    for _ in 0..100 {
        text.push_str("\"\u{1b}[1A\u{1b}[2K\",2,3\n");
    }
    std::fs::write(&path, text).unwrap();
    let postcodes = hostile_csv(dir.path(), "postcodes\u{1b}[2J.csv");

    let (out, _) = run(&[
        "check".as_ref(),
        path.as_os_str(),
        postcodes.as_os_str(),
        "--election-date".as_ref(),
        "2019-05-23".as_ref(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for control in [0x1b, 0x07, b'\r'] {
        assert!(
            !out.stdout.contains(&control),
            "a raw 0x{control:02x} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(r"evil\u{1b}[2J\u{1b}]0;title\u{7}PASS\n.csv"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"(first column "\u{1b}[2JHouse\u{1b}[32mPASS")"#),
        "{stdout}"
    );
    assert!(stdout.contains(r"postcodes\u{1b}[2J.csv"), "{stdout}");
    assert!(
        stdout.contains(r#"row 3: "\u{1b}[2J\u{1b}]0;forged\u{7}PASS""#),
        "{stdout}"
    );
    // One line per field: the table's own lines, nothing forged between them.
    assert!(stdout
        .lines()
        .all(|l| !l.starts_with("File:") && !l.starts_with("Errors:")));
}

#[test]
fn a_header_of_100_000_columns_is_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    // About 690 KB, under the 1 MB a header may take (src/checks/delimited.rs).
    let columns = 100_000;
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    writeln!(out, "{}", header.join(",")).unwrap();
    writeln!(out, "{}", vec!["1"; columns].join(",")).unwrap();
    drop(out);
    let started = std::time::Instant::now();
    let (output, json, rss) = check_json(&path, &[]);
    eprintln!(
        "check --json of a {columns}-column header: {:.2} s, peak RSS {rss} KB",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(0));
    let file = &json["file_set"][0];
    assert_eq!(file["details"]["columns"], columns);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(file["csv_valid"], true);
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
}

/// Issue 12: a JSON array nested 100,000 levels deep gets a message about depth, not a syntax
/// error at some column, fast and in bounded memory.
#[test]
fn json_nested_100_000_levels_is_called_nested_too_deeply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.json");
    std::fs::write(&path, "[".repeat(100_000) + &"]".repeat(100_000)).unwrap();
    let started = std::time::Instant::now();
    let (output, json, rss) = check_json(&path, &[]);
    let took = started.elapsed();
    eprintln!(
        "JSON nested 100,000 levels: {:.2} s, peak RSS {rss} KB",
        took.as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(1));
    let errors = json["file_set"][0]["errors"].as_str().unwrap();
    assert!(errors.contains("nested too deeply"), "{errors}");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
    assert_bounded(&json["file_set"][0]);
}

/// Hostile CSV shapes (issue 12's list), generated: each ends in a verdict within 10 s, and the
/// whole process stays within 64 MB.
#[test]
fn hostile_csv_shapes_end_in_a_verdict_fast_and_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, parts: &[(&[u8], usize)]| -> PathBuf {
        let path = dir.path().join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for (bytes, times) in parts {
            for _ in 0..*times {
                out.write_all(bytes).unwrap();
            }
        }
        path
    };
    let mut noise = Vec::with_capacity(4 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let mb = 1_000_000;
    let no_line_break =
        "The file has no line break in its first 1 MB, so it is not a table of rows";
    let wide: Vec<u8> = (0..1_000_000)
        .flat_map(|i| format!("c{i},").into_bytes())
        .collect();
    // (what, file, exit code, a part of the errors)
    let cases: Vec<(&str, PathBuf, Option<i32>, &str)> = vec![
        (
            "140 MB with no line break",
            write(
                "noline.csv",
                &[(b"a,b,c", 1), (&[b'x'; 1000], 140 * mb / 1000)],
            ),
            Some(1),
            no_line_break,
        ),
        (
            "a header of a million columns (7 MB)",
            write("wide.csv", &[(&wide, 1), (b"x\n1,2,3\n", 1)]),
            Some(1),
            no_line_break,
        ),
        (
            "a quote never closed in the header",
            write(
                "unclosed-header.csv",
                &[(b"a,\"b,c\n", 1), (b"4,5,6\n", 400_000)],
            ),
            Some(1),
            "The first row (the header) runs past 1 MB without ending",
        ),
        (
            "a 50 MB quoted field",
            write(
                "quoted.csv",
                &[
                    (b"a,b,c\n1,\"", 1),
                    (&[b'y'; 1000], 50 * mb / 1000),
                    (b"\",3\n", 1),
                ],
            ),
            Some(0),
            "",
        ),
        (
            "a quote never closed",
            write(
                "unclosed.csv",
                &[(b"a,b,c\n1,\"2,3\n", 1), (b"4,5,6\n", 2000)],
            ),
            Some(1),
            "",
        ),
        (
            "only line breaks",
            write("newlines.csv", &[(b"\n", 5 * mb)]),
            Some(1),
            "",
        ),
        (
            "random bytes named .csv",
            write("random.csv", &[(&noise, 5)]),
            Some(1),
            "",
        ),
        (
            "one row of 80 million commas",
            write(
                "commas.csv",
                &[(b"a,b,c\n", 1), (&[b','; 1000], 80 * mb / 1000), (b"\n", 1)],
            ),
            Some(0),
            "",
        ),
        (
            "invalid UTF-8 in the middle of a UTF-8 file",
            write(
                "badutf8.csv",
                &[
                    (b"a,b,c\n", 1),
                    ("1,é,3\n".as_bytes(), 100_000),
                    (b"\xff\xfe,\x80,3\n", 1),
                    ("1,é,3\n".as_bytes(), 100_000),
                ],
            ),
            Some(0),
            "",
        ),
    ];
    for (what, path, expected, errors) in cases {
        let started = std::time::Instant::now();
        let (output, json, rss) = check_json(&path, &[]);
        let took = started.elapsed();
        eprintln!("{what}: {:.2} s, peak RSS {rss} KB", took.as_secs_f64());
        let code = output.status.code();
        assert!(matches!(code, Some(0 | 1)), "{what}: exit {code:?}");
        if let Some(expected) = expected {
            assert_eq!(
                code,
                Some(expected),
                "{what}: {}",
                json["file_set"][0]["errors"]
            );
        }
        let shown = json["file_set"][0]["errors"].as_str().unwrap_or_default();
        assert!(shown.contains(errors), "{what}: {shown}");
        assert!(
            took < std::time::Duration::from_secs(10),
            "{what}: took {took:?}"
        );
        assert!(rss <= MAX_PEAK_RSS_KB, "{what}: peak RSS {rss} KB");
        assert_bounded(&json["file_set"][0]);
    }
}

/// 44 MB of UPRNs in a column the profile marks unique, more than the 2,000,000 kept: repeats are
/// looked for among the values kept, a warning says the rest were not, and the whole process stays
/// within its memory budget (a 150 MB file of such rows needs no more: nothing past the limit is
/// kept).
#[test]
fn millions_of_distinct_uprns_are_kept_only_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uprns.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "AuthorityCode,UPRN,Town").unwrap();
    // 17 bytes a row; every value repeats once, 1,500,000 rows later.
    let rows: u64 = 2_600_000;
    for i in 0..rows {
        writeln!(out, "A,{:012},T", 100_000_000_001 + i % 1_500_000).unwrap();
    }
    drop(out);
    let started = std::time::Instant::now();
    let (output, json, rss) = check_json(&path, &[]);
    eprintln!(
        "check --json of {rows} UPRNs: {:.2} s, peak RSS {rss} KB",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(0));
    let file = &json["file_set"][0];
    assert_eq!(file["ems"], "Xpress WebLookup");
    assert_eq!(
        file["warnings"],
        serde_json::json!([
            "500000 rows repeat a UPRN already given on an earlier row in column UPRN (500000 \
             UPRNs appear more than once; for example 100000000001, 100000000002, 100000000003, \
             100000000004, 100000000005). Each property should appear once: check the export.",
            "Column UPRN has more than 2000000 UPRNs: repeats were looked for only before row \
             2000002."
        ])
    );
    assert!(rss <= MAX_PEAK_RSS_KB, "peak RSS {rss} KB");
    assert_bounded(file);
}

/// UPRN cells holding line breaks, terminal escapes, a 10 KB value and a 1,000-digit number in
/// scientific notation: the messages quote each at most 40 characters, on one line.
#[test]
fn hostile_uprn_cells_are_quoted_short_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uprns.csv");
    let mut text = String::from("ElectionDate,Property_URN,Polling_Place_UPRN\r\n");
    text.push_str("23/05/2019,\"1\r\nErrors: none\",800200000101\r\n");
    text.push_str("23/05/2019,\"\u{1b}[2J\u{1b}]0;forged\u{7}\",800200000101\r\n");
    text.push_str(&format!(
        "23/05/2019,{},800200000101\r\n",
        "9".repeat(10 * 1024)
    ));
    text.push_str(&format!(
        "23/05/2019,{}E+11,800200000101\r\n",
        "1".repeat(1000)
    ));
    for i in 0..50 {
        text.push_str(&format!(
            "23/05/2019,{},800200000101\r\n",
            100_021_243_352u64 + i
        ));
    }
    std::fs::write(&path, text).unwrap();
    let (out, report, _) = check_json(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let file = &report["file_set"][0];
    assert_bounded(file);
    let errors = file["errors"].as_str().unwrap();
    assert!(
        errors.starts_with(&format!(
            "1 row has a UPRN in scientific notation in column Property_URN (first: row 5: \"{}…\")",
            "1".repeat(39)
        )),
        "{errors}"
    );
    let warnings = file["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0],
        format!(
            "3 rows have a UPRN in column Property_URN that is not 1 to 12 digits (first: row 2: \
             \"1\\r\\nErrors: none\", row 3: \"\\u{{1b}}[2J\\u{{1b}}]0;forged\\u{{7}}\", row 4: \"{}…\"). \
             Those addresses may not be matched to their property.",
            "9".repeat(39)
        )
    );
}
