//! The engine's properties that the fuzzers (`fuzz/`, cargo-fuzz) and their proptest
//! equivalents (`tests/scenarios/fuzz_equivalents.rs`) check, in one place so both check the same thing.
//! Each function takes arbitrary input and panics only when a property fails: a panic is a
//! finding. Not part of the engine's API.

use crate::delimited::DelimitedCheck;
use crate::engine::{Begin, CheckOptions, FileChecker};
use crate::json::JsonCheck;
use crate::profiles::Profiles;
use crate::records::Flow;
use crate::report::FileReport;

/// The chunk sizes every check must give the same verdict for.
pub const CHUNKINGS: [usize; 2] = [1, 64 * 1024];

/// Cuts `bytes` into pieces: at fixed `size`, or at points drawn from `seed` when `size` is 0.
fn pieces(bytes: &[u8], size: usize, seed: u64) -> Vec<&[u8]> {
    if size > 0 {
        return bytes.chunks(size).collect();
    }
    let mut x = seed | 1;
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly small pieces, sometimes large ones.
        let cap = if x.is_multiple_of(8) { 70_000 } else { 17 };
        let n = (1 + (x >> 8) as usize % cap).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The name a fuzz input's first byte gives the file (it decides the check used).
pub fn key_for(selector: u8) -> &'static str {
    match selector % 5 {
        0 => "stations.csv",
        1 => "stations.tsv",
        2 => "stations.json",
        3 => "-",
        _ => "stations.txt",
    }
}

/// Checks `bytes` as the file `key`, fed in the given pieces, as `check` and the pipeline do.
pub fn check_pieces(key: &str, council: Option<&str>, pieces: &[&[u8]]) -> FileReport {
    let options = CheckOptions {
        council: council.map(str::to_owned),
        ..CheckOptions::default()
    };
    let mut checker = match FileChecker::begin(key, None, options) {
        Begin::Done(report) => return report,
        Begin::Checking(checker) => checker,
    };
    for piece in pieces {
        if checker.feed(piece) == Flow::Stop {
            break;
        }
    }
    checker.finish()
}

/// The file checker over arbitrary bytes: the report is the same for 1-byte pieces, 64 KiB
/// pieces and pieces cut at points drawn from `seed`. Returns the report.
pub fn file_checker(key: &str, bytes: &[u8], seed: u64) -> FileReport {
    // The Isles of Scilly are spared the 1 KB floor, so small inputs reach the checks.
    let council = Some("IOS");
    let whole = check_pieces(key, council, &[bytes]);
    for size in CHUNKINGS {
        let report = check_pieces(key, council, &pieces(bytes, size, seed));
        assert_eq!(report, whole, "{size}-byte pieces disagree with one piece");
    }
    let report = check_pieces(key, council, &pieces(bytes, 0, seed));
    assert_eq!(
        report, whole,
        "pieces cut by seed {seed} disagree with one piece"
    );
    whole
}

/// The CSV/TSV walk alone (the file checker keeps its first 8 KB whole before it starts): the
/// findings are the same whatever the pieces.
pub fn delimited(bytes: &[u8], delimiter: u8, seed: u64) {
    let run = |pieces: &[&[u8]]| {
        let mut check = DelimitedCheck::new(Profiles::embedded(), None, delimiter);
        for piece in pieces {
            if check.is_done() {
                break;
            }
            check.feed(piece);
        }
        format!("{:?}", check.finish())
    };
    let whole = run(&[bytes]);
    for size in CHUNKINGS {
        assert_eq!(run(&pieces(bytes, size, seed)), whole, "{size}-byte pieces");
    }
    assert_eq!(
        run(&pieces(bytes, 0, seed)),
        whole,
        "pieces cut by seed {seed}"
    );
}

/// A JSON snapshot: the JSON check alone and through the file checker, whatever the pieces.
pub fn json_snapshot(bytes: &[u8], seed: u64) {
    let run = |pieces: &[&[u8]]| {
        let mut check = JsonCheck::new(Profiles::embedded());
        for piece in pieces {
            if check.is_done() {
                break;
            }
            check.feed(piece);
        }
        format!("{:?}", check.finish())
    };
    let whole = run(&[bytes]);
    for size in CHUNKINGS {
        assert_eq!(run(&pieces(bytes, size, seed)), whole, "{size}-byte pieces");
    }
    assert_eq!(
        run(&pieces(bytes, 0, seed)),
        whole,
        "pieces cut by seed {seed}"
    );
    file_checker("snapshot.json", bytes, seed);
}

/// A fuzz input's seed for split points: its first eight bytes.
fn seed_of(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .fold(0, |s, b| s.rotate_left(8) ^ u64::from(*b))
}

/// The `file_checker` fuzz target: the first byte names the file (CSV, TSV, JSON, stdin, other)
/// and the first eight seed the split points; the rest is the file.
pub fn file_checker_input(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let seed = seed_of(data);
    file_checker(key_for(selector), rest, seed);
    delimited(rest, if selector & 1 == 0 { b',' } else { b'\t' }, seed);
}

/// The `json_snapshot` fuzz target: the whole input is the snapshot.
pub fn json_snapshot_input(data: &[u8]) {
    json_snapshot(data, seed_of(data));
}
