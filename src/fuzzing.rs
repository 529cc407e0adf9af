//! The properties the fuzzers (`fuzz/`, cargo-fuzz) and their proptest equivalents
//! (`tests/scenarios/fuzz_equivalents.rs`) check, in one place so both check the same thing. Each function
//! takes arbitrary input and panics only when a property fails: a panic is a finding. The check
//! engine's properties are its own (`wdiv_checks::fuzzing`), re-exported here so the fuzz targets
//! have one list.
//!
//! Not part of the program's API.

pub use wdiv_checks::fuzzing::{
    check_pieces, delimited, file_checker, file_checker_input, json_snapshot, json_snapshot_input,
    key_for, CHUNKINGS,
};

/// An event from outside, as bytes (a file given to `run`) and as JSON already parsed (a Lambda
/// payload, S3's or EventBridge's shape): read, then sorted into uploads, never a panic.
pub fn event(bytes: &[u8]) {
    if let Ok(event) = crate::event::parse(bytes) {
        triage_all(&event);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Ok(event) = crate::event::from_value(value) {
            triage_all(&event);
        }
    }
}

fn triage_all(event: &crate::event::Event) {
    let triage = crate::event::triage(event, "wdiv-temp");
    for (upload, objects) in &triage.uploads {
        for object in objects {
            assert_eq!(
                &object.key.upload, upload,
                "an object filed under another upload"
            );
        }
    }
    for refused in &triage.refused {
        // Every refusal can be shown.
        let _ = refused.to_string();
    }
}

/// A key as an S3 event carries it (URL-encoded), and the same text as a decoded key encoded
/// by `event::encode_event_key`: never a panic, and a key that is accepted decodes back to
/// what was encoded.
pub fn key(text: &str) {
    for raw in [text.to_owned(), crate::event::encode_event_key(text)] {
        let mut value = crate::event::object_created("wdiv-temp", "x", 2048, "etag");
        value["Records"][0]["s3"]["object"]["key"] = serde_json::Value::String(raw);
        let event = crate::event::from_value(value).expect("a well-formed event");
        triage_all(&event);
    }
    let value = crate::event::object_created("wdiv-temp", text, 2048, "etag");
    let event = crate::event::from_value(value).expect("a well-formed event");
    let triage = crate::event::triage(&event, "wdiv-temp");
    if let Some((_, objects)) = triage.uploads.first() {
        assert_eq!(
            objects[0].key.key, text,
            "the key did not survive its encoding"
        );
    }
}

/// The settings file: arbitrary text as `settings.toml`, loaded with no environment. Settings
/// or a list of problems, never a panic.
pub fn settings_file(text: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wdiv-fuzz-settings-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    let path = dir.join("settings.toml");
    std::fs::write(&path, text).expect("the settings file is written");
    for context in [
        crate::settings::Context::Cli,
        crate::settings::Context::Lambda,
    ] {
        if let Err(e) = crate::settings::load(Some(&path), &[], context) {
            assert!(!e.problems.is_empty(), "an error without a problem");
            let _ = e.to_string();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `key` fuzz target: the input as text.
pub fn key_input(data: &[u8]) {
    key(&String::from_utf8_lossy(data));
}

/// Replays one input of `target` (a fuzz target's name), as that target would.
pub fn replay(target: &str, data: &[u8]) {
    match target {
        "file_checker" => file_checker_input(data),
        "json_snapshot" => json_snapshot_input(data),
        "event" => event(data),
        "key" => key_input(data),
        "settings_file" => settings_file(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// The fuzz targets, by name.
pub const TARGETS: [&str; 5] = [
    "file_checker",
    "json_snapshot",
    "event",
    "key",
    "settings_file",
];
