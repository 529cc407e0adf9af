//! The fuzz targets' properties (`fuzz/`, see `docs/testing.md`, "Fuzzing") as property tests, so `cargo
//! test` and CI check them on stable in seconds: the file checker's report is the same for 1-byte
//! pieces, 64 KiB pieces and arbitrary split points, whatever the bytes; JSON snapshots likewise;
//! events, keys and the settings file never panic. Then every crash the fuzzers found, kept under
//! `fixtures/fuzz/<target>/`, is replayed.

use proptest::prelude::*;
use wdiv_s3_trigger::fuzzing;

/// Bytes shaped like the files the checks see: mostly CSV-ish text, some of anything.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => Just(b",".to_vec()),
        2 => Just(b"\t".to_vec()),
        3 => Just(b"\r\n".to_vec()),
        2 => Just(b"\n".to_vec()),
        2 => Just(b"\"".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"HouseID".to_vec()),
        1 => Just(b"ElectionDate".to_vec()),
        1 => Just(b"Add1".to_vec()),
        1 => Just(b"23/05/2019".to_vec()),
        1 => Just("caf\u{e9}".as_bytes().to_vec()),
        1 => Just(vec![0xE9]),
        1 => Just(vec![0xEF, 0xBB, 0xBF]),
        1 => Just(vec![0xFF, 0xFE]),
        1 => Just(vec![0]),
        6 => "[a-z0-9 ]{1,12}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 1..16),
    ];
    proptest::collection::vec(piece, 0..400).prop_map(|p| p.concat())
}

/// Bytes shaped like JSON snapshots.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => Just(b"{".to_vec()),
        3 => Just(b"}".to_vec()),
        2 => Just(b"[".to_vec()),
        2 => Just(b"]".to_vec()),
        3 => Just(b",".to_vec()),
        3 => Just(b":".to_vec()),
        3 => Just(b"\"".to_vec()),
        1 => Just(b"\\".to_vec()),
        1 => Just(br#""model":"pollingstations.pollingstation""#.to_vec()),
        1 => Just(br#""fields":"#.to_vec()),
        1 => Just(b"null".to_vec()),
        2 => "[a-z0-9 .]{1,10}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 1..8),
    ];
    proptest::collection::vec(piece, 0..300).prop_map(|p| p.concat())
}

// 256 cases each by default; `PROPTEST_CASES=20000` for a longer run (`docs/testing.md`, "Fuzzing").
proptest! {
    #[test]
    fn the_file_report_does_not_depend_on_the_chunking(
        selector in any::<u8>(), bytes in csvish(), seed in any::<u64>()
    ) {
        fuzzing::file_checker(fuzzing::key_for(selector), &bytes, seed);
        fuzzing::delimited(&bytes, if selector & 1 == 0 { b',' } else { b'\t' }, seed);
    }

    #[test]
    fn arbitrary_bytes_get_a_report_whatever_the_chunking(
        selector in any::<u8>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        seed in any::<u64>(),
    ) {
        fuzzing::file_checker(fuzzing::key_for(selector), &bytes, seed);
    }

    #[test]
    fn a_json_snapshot_report_does_not_depend_on_the_chunking(
        bytes in jsonish(), seed in any::<u64>()
    ) {
        fuzzing::json_snapshot(&bytes, seed);
    }

    #[test]
    fn any_event_json_is_read_or_refused_without_a_panic(bytes in event_like()) {
        fuzzing::event(&bytes);
    }

    #[test]
    fn any_key_is_accepted_or_refused_and_survives_its_encoding(
        key in "([A-Za-z0-9]{1,9}|/|\\.|\\.\\.| |\\+|%|%2[0-9A-Fa-f]|%[gG]|é|\u{202e}|\u{0}|\n|\\.csv|\\.json){0,16}"
    ) {
        fuzzing::key(&key);
        let prefixed = format!("E07000223/2024-05-02/2024-04-01T10:00:00/{key}");
        fuzzing::key(&prefixed);
    }

    #[test]
    fn any_settings_file_is_loaded_or_refused_without_a_panic(text in settingsish()) {
        fuzzing::settings_file(text.as_bytes());
    }
}

/// Events: S3's shape with arbitrary values, EventBridge-like objects, and arbitrary JSON.
fn event_like() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just("ObjectCreated:Put".to_owned()),
        Just("wdiv-temp".to_owned()),
        Just("E07000223/2024-05-02/2024-04-01T10:00:00/a+b%2Fc.csv".to_owned()),
        ".{0,20}",
    ];
    let value = prop_oneof![
        text.clone().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    let leaf = value.clone();
    let json = leaf.prop_recursive(4, 64, 6, move |inner| {
        let key = prop_oneof![
            Just("Records".to_owned()),
            Just("s3".to_owned()),
            Just("bucket".to_owned()),
            Just("object".to_owned()),
            Just("key".to_owned()),
            Just("name".to_owned()),
            Just("size".to_owned()),
            Just("eventName".to_owned()),
            Just("detail".to_owned()),
            Just("detail-type".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

/// Settings files: lines of known and unknown names with values of every TOML type.
fn settingsish() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("TEMP_BUCKET"),
        Just("FINAL_BUCKET"),
        Just("GITHUB_REPO"),
        Just("GITHUB_TOKEN"),
        Just("SENTRY_DSN"),
        Just("WDIV_API_KEY"),
        Just("MAX_UPLOAD_BYTES"),
        Just("COUNCIL_NAME_TIMEOUT_SECONDS"),
        Just("DRY_RUN"),
        Just("nope"),
    ];
    let value = prop_oneof![
        Just("\"\"".to_owned()),
        Just("\"https://user:secret@example.com/1\"".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("true".to_owned()),
        Just("[1, \"a\"]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "\"[^\"\\\\]{0,12}\"",
        ".{0,12}",
    ];
    let line = prop_oneof![
        4 => (name, value).prop_map(|(n, v)| format!("{n} = {v}")),
        1 => Just("[section]".to_owned()),
        1 => ".{0,20}",
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// Every crash the fuzzers found, replayed through the same property: `fixtures/fuzz/<target>/`.
#[test]
fn every_fuzz_crash_found_is_replayed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let mut replayed = 0;
    for target in fuzzing::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            eprintln!("replaying {}", path.display());
            fuzzing::replay(target, &std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    eprintln!("{replayed} fuzz findings replayed");
}
