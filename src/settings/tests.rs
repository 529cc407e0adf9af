//! The settings' tests: loading, end to end, from files and the environment.

use std::path::{Path, PathBuf};

use super::schema::{DEFAULT_LOCAL_BUCKETS_DIR, DEFAULT_LOCAL_TEMP_BUCKET};
use super::*;
use crate::councils::WDIV_API_KEY;
use crate::effects::email::{EMAIL_FROM, ERROR_REPORT_EMAIL};
use crate::effects::issue::{GITHUB_API_KEY, GITHUB_API_URL};
use crate::effects::webhook::WDIV_WEBHOOK_URL;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_local_run_needs_nothing() {
    let s = load(None, &[], Context::Cli).unwrap();
    assert_eq!(
        s.storage,
        StorageMode::Local(PathBuf::from(DEFAULT_LOCAL_BUCKETS_DIR))
    );
    assert_eq!(s.temp_bucket, DEFAULT_LOCAL_TEMP_BUCKET);
    assert_eq!(s.mode, RunMode::PreviewExternal);
    assert_eq!(
        s.values.text(&EMAIL_FROM).unwrap(),
        EMAIL_FROM.default.unwrap()
    );
    assert_eq!(s.values.text(&ERROR_REPORT_EMAIL), None);
    assert_eq!(s.size_floor_exempt_councils, vec!["IOS"]);
}

#[test]
fn lambda_lists_every_problem_at_once() {
    let e = load(
        None,
        &env(&[
            ("WDIV_WEBHOOK_URL", "ftp://x"),
            ("DRY_RUN", "perhaps"),
            ("GITHUB_REPO", "just-a-name"),
            ("WDIV_API_KEY", ""),
        ]),
        Context::Lambda,
    )
    .unwrap_err();
    let text = e.to_string();
    for expected in [
        "TEMP_BUCKET_NAME is not set",
        "FINAL_BUCKET_NAME is not set",
        "WDIV_WEBHOOK_URL \"ftp://x/\" (from environment variable) must be an http(s) URL",
        "DRY_RUN \"perhaps\"",
        "GITHUB_REPO \"just-a-name\"",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert_eq!(e.problems.len(), 5, "{text}");
}

#[test]
fn environment_wins_over_the_file_and_empty_means_unset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "TEMP_BUCKET_NAME = \"from-file\"\nFINAL_BUCKET_NAME = \"final-file\"\n\
         WDIV_API_KEY = \"\"\nDRY_RUN = false\nSIZE_FLOOR_EXEMPT_COUNCILS = [\"IOS\", \"ABC\"]\n",
    )
    .unwrap();
    let s = load(
        Some(&file),
        &env(&[
            ("TEMP_BUCKET_NAME", "from-env"),
            ("GITHUB_API_KEY", "0123"),
            ("UNRELATED", "x"),
        ]),
        Context::Lambda,
    )
    .unwrap();
    assert_eq!(s.temp_bucket, "from-env");
    assert_eq!(s.final_bucket, "final-file");
    assert_eq!(s.values.secret(&WDIV_API_KEY), None);
    assert_eq!(s.mode, RunMode::Live, "DRY_RUN = false");
    assert_eq!(s.size_floor_exempt_councils, vec!["IOS", "ABC"]);
    assert_eq!(s.values.secret(&GITHUB_API_KEY).unwrap().expose(), "0123");
    assert!(s.sources["FINAL_BUCKET_NAME"].contains("s.toml"));
}

#[test]
fn debug_never_shows_a_secret() {
    let s = load(
        None,
        &env(&[
            ("GITHUB_API_KEY", "ghp_verysecret"),
            ("WDIV_API_KEY", "wdiv-token-123"),
            ("SENTRY_DSN", "https://key@sentry.example/1"),
        ]),
        Context::Cli,
    )
    .unwrap();
    let debug = format!("{s:?}");
    for secret in ["ghp_verysecret", "wdiv-token-123", "key@sentry"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("Secret(****)"));
}

#[test]
fn unknown_and_lower_case_keys_in_a_file_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "temp_bucket_name = \"x\"\nGITHUB_REPOSITORY = \"a/b\"\n",
    )
    .unwrap();
    let e = load(Some(&file), &[], Context::Cli).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("settings are upper case: TEMP_BUCKET_NAME"),
        "{text}"
    );
    assert!(text.contains("GITHUB_REPOSITORY"), "{text}");
}

#[test]
fn the_templates_document_every_setting_and_load() {
    for template in ["dev", "prod"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("settings/{template}.template.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        for name in NAMES.iter() {
            assert!(
                text.contains(&format!("\n{name} = ")),
                "{name} missing from {template}"
            );
        }
        // What a template reads from SSM (`ssm:NAME`, resolved only at start-up) gets a
        // stand-in here, in the environment, which wins over the file.
        let stand_ins: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(" = ")?;
                let stand_in = match name {
                    "TEMP_BUCKET_NAME" => "temp-bucket",
                    "FINAL_BUCKET_NAME" => "final-bucket",
                    "GITHUB_REPO" => "owner/repo",
                    "ERROR_REPORT_EMAIL" => "staff@example.org",
                    "WDIV_WEBHOOK_URL" => "https://wdiv.example.org/uploads/",
                    "SENTRY_DSN" => "https://public@sentry.example.org/1",
                    _ => "a-token",
                };
                value
                    .starts_with("\"ssm:")
                    .then(|| (name.to_owned(), stand_in.to_owned()))
            })
            .collect();
        load(Some(&path), &stand_ins, Context::Lambda)
            .or_else(|_| load(Some(&path), &stand_ins, Context::Cli))
            .unwrap_or_else(|e| panic!("{template}: {e}"));
    }
}

#[test]
fn aws_settings_switch_a_cli_run_to_s3() {
    let s = load(
        None,
        &env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap();
    assert_eq!(s.storage, StorageMode::S3);
    assert_eq!(s.mode, RunMode::Live);
    let e = load(
        None,
        &env(&[
            ("LOCAL_BUCKETS_DIR", "/tmp/b"),
            ("TEMP_BUCKET_NAME", "../etc"),
        ]),
        Context::Cli,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a valid S3 bucket name"));
}

#[test]
fn a_malformed_sentry_dsn_is_named_but_not_shown() {
    for dsn in [
        "not a dsn s3cr3t-dsn",
        "https://sentry.example/42?s3cr3t-dsn",
        "https://s3cr3t-dsn@sentry.example/",
        "ftp://s3cr3t-dsn@sentry.example/42",
        "https://s3cr3t-dsn@sentry.example/4\n2",
    ] {
        let e = load(None, &env(&[("SENTRY_DSN", dsn)]), Context::Cli).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.problems.len(), 1, "{text}");
        assert!(
            text.contains("SENTRY_DSN (from environment variable) is not a valid Sentry DSN"),
            "{text}"
        );
        assert!(
            text.contains("https://PUBLIC_KEY@HOST/PROJECT_ID"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t-dsn"), "{dsn:?} leaked: {text}");
    }
    let s = load(
        None,
        &env(&[("SENTRY_DSN", "https://public-key@sentry.example/42")]),
        Context::Cli,
    )
    .unwrap();
    let dsn = s.sentry_dsn.as_ref().unwrap().expose();
    assert_eq!(dsn.public_key(), "public-key");
    assert_eq!(dsn.host(), "sentry.example");
    assert_eq!(format!("{:?}", s.sentry_dsn), "Some(Secret(****))");
}

#[test]
fn a_token_must_fit_in_an_http_header_and_is_never_shown() {
    for (token, what) in [
        ("ghp_s3cr3t\ninjected", "a line break"),
        ("ghp_s3cr3t\rinjected", "a line break"),
        ("ghp_s3cr3t\u{0}x", "a control character"),
        ("ghp_s3cr3t\u{7f}x", "a control character"),
        ("ghp_s3cr3t and more", "a space"),
        ("ghp_s3cr3t\u{e9}", "a character outside visible ASCII"),
        ("ghp_s3cr3t\u{202e}", "a character outside visible ASCII"),
    ] {
        for name in ["GITHUB_API_KEY", "WDIV_API_KEY"] {
            let e = load(None, &env(&[(name, token)]), Context::Cli).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(&format!("{name} (from environment variable) holds {what}")),
                "{token:?}: {text}"
            );
            assert!(!text.contains("s3cr3t"), "{token:?} leaked: {text}");
        }
    }
    // Whitespace around a token is trimmed, not refused; digits stay text.
    let s = load(
        None,
        &env(&[
            ("GITHUB_API_KEY", " 0123\n"),
            ("WDIV_API_KEY", "Ab-_.~+/=09"),
        ]),
        Context::Cli,
    )
    .unwrap();
    assert_eq!(
        s.values.secret(&WDIV_API_KEY).unwrap().expose(),
        "Ab-_.~+/=09"
    );
}

#[test]
fn urls_in_problems_and_debug_are_masked() {
    let e = load(
        None,
        &env(&[
            (
                "WDIV_WEBHOOK_URL",
                "ftp://user:hunter2@wdiv.example/hook?key=abc",
            ),
            ("WDIV_API_URL", "user:hunter2@wdiv.example?key=abc"),
            ("GITHUB_API_URL", "https://api.example/a\nb?key=abc"),
            ("AWS_ENDPOINT_URL", "https://user:hunter2@@?key=abc"),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap_err();
    let text = e.to_string();
    assert_eq!(e.problems.len(), 4, "{text}");
    assert!(
        text.contains("WDIV_WEBHOOK_URL \"ftp://****@wdiv.example/hook?****\""),
        "{text}"
    );
    assert!(text.contains("WDIV_API_URL \"****@****\""), "{text}");
    assert!(
        text.contains("GITHUB_API_URL \"https://api.example/a\\nb?****\""),
        "{text}"
    );
    assert!(
        text.contains("AWS_ENDPOINT_URL \"https://****@****\""),
        "{text}"
    );
    for secret in ["hunter2", "key=abc", "user:"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }

    let s = load(
        None,
        &env(&[
            (
                "WDIV_WEBHOOK_URL",
                "https://user:hunter2@wdiv.example/hook?key=abc",
            ),
            ("WDIV_API_KEY", "wdiv-token"),
            ("AWS_ENDPOINT_URL", "http://user:hunter2@127.0.0.1:9000"),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap();
    // The values themselves are kept whole: the clients need them.
    assert_eq!(
        s.values.url(&WDIV_WEBHOOK_URL).map(|u| u.as_str()),
        Some("https://user:hunter2@wdiv.example/hook?key=abc")
    );
    let debug = format!("{s:?}");
    for secret in ["hunter2", "key=abc", "user:"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(
        debug.contains("wdiv_webhook_url: Some(\"https://****@wdiv.example/hook?****\")"),
        "{debug}"
    );
}

#[test]
fn api_urls_with_credentials_a_query_or_a_fragment_are_refused() {
    let e = load(
        None,
        &env(&[
            ("WDIV_API_URL", "https://user:hunter2@wdiv.example/api"),
            (
                "GITHUB_API_URL",
                "http://gh.example/api/v3?access_token=abc#x",
            ),
            (
                "WDIV_WEBHOOK_URL",
                "https://user:hunter2@wdiv.example/hook?key=abc",
            ),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap_err();
    let text = e.to_string();
    assert_eq!(
        e.problems,
        [
            "GITHUB_API_URL \"http://gh.example/api/v3?****\" (from environment variable) \
             must not hold a query (?…) or a fragment (#…): the URLs built on it are logged; \
             put the token in GITHUB_API_KEY",
            "WDIV_API_URL \"https://****@wdiv.example/api\" (from environment variable) \
             must not hold a user name or password (user:pass@): the URLs built on it are \
             logged; put the token in WDIV_API_KEY",
        ],
        "{text}"
    );
    for secret in ["hunter2", "access_token", "key=abc"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // A bare `@` in a path is not user-info, and an empty query is still a query.
    let s = load(
        None,
        &env(&[
            ("GITHUB_API_URL", "https://gh.example/api/@v3/"),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap();
    assert_eq!(
        s.values.url(&GITHUB_API_URL).unwrap().as_str(),
        "https://gh.example/api/@v3/"
    );
    let e = load(
        None,
        &env(&[
            ("WDIV_API_URL", "https://wdiv.example/api?"),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
        ]),
        Context::Cli,
    )
    .unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
}

#[test]
fn other_values_are_quoted_on_one_line_and_bounded() {
    let e = load(
        None,
        &env(&[
            ("DRY_RUN", "maybe\n  - FORGED problem"),
            ("CLOUDFRONT_PATHS", &"x".repeat(10_000)),
        ]),
        Context::Cli,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("DRY_RUN \"maybe\\n  - FORGED problem\""),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.len() < 1000, "{text}");
}

#[test]
fn a_toml_syntax_error_names_the_place_but_shows_no_line() {
    let dir = tempfile::tempdir().unwrap();
    for (contents, line, column) in [
        (
            "TEMP_BUCKET_NAME = \"t-bucket\"\nGITHUB_API_KEY = \"ghp_s3cr3t\nX = 1\n",
            2,
            29,
        ),
        ("SENTRY_DSN = https://s3cr3t@sentry.example/1\n", 1, 14),
        ("\n\n  WDIV_API_KEY = 's3cr3t' 's3cr3t'\n", 3, 27),
        ("\"s3cr3t-key\" = 1\n\"s3cr3t-key\" = 2\n", 2, 1),
        ("WDIV_API_KEY = \"\"\"s3cr3t\n\u{e9}\u{e9}\n", 3, 1),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, contents).unwrap();
        let e = load(Some(&file), &[], Context::Cli).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad.toml"), "{text}");
        assert!(
            text.contains(&format!(
                ", line {line}, column {column} is not valid TOML: "
            )),
            "{contents:?}: {text}"
        );
        assert!(!text.contains("s3cr3t"), "{contents:?} leaked: {text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}

#[test]
fn figment_errors_are_not_shown_either() {
    // A file that is not UTF-8: the read fails before any parse.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.toml");
    std::fs::write(&file, b"GITHUB_API_KEY = \"s3cr3t\xe9\"\n").unwrap();
    let text = load(Some(&file), &[], Context::Cli)
        .unwrap_err()
        .to_string();
    assert!(text.contains("cannot read the settings file"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

/// TOML's basic string for `value`: every value can be written this way.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn the_upload_limits_default_to_what_the_browser_check_assumes() {
    // The browser's check (crates/checks-web) knows no settings: it assumes the engine's
    // `Limits::default()`, so the two defaults must agree.
    let limits = wdiv_checks::Limits::default();
    assert_eq!(
        super::schema::MAX_FILES_PER_UPLOAD.default,
        Some(limits.max_files.to_string().as_str())
    );
    assert_eq!(
        super::schema::MAX_UPLOAD_BYTES.default,
        Some(limits.max_bytes.to_string().as_str())
    );
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// Any text a setting could be given: arbitrary Unicode, control characters and line
    /// breaks, long runs, and shapes close to real values (URLs with credentials, DSNs,
    /// numbers with leading zeros, booleans).
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<String>(),
            2 => "[ -~\n\r\t\u{0}\u{7f}\u{85}\u{a0}\u{202e}\u{2028}\u{feff}é]{0,40}",
            1 => "(https?|ftp)://([a-z]{1,6}(:[a-z0-9]{0,6})?@)?[a-z0-9.\\[\\]:-]{0,15}(/[ -~]{0,12})?(\\?[ -~]{0,8})?",
            1 => "https?://[a-z0-9]{1,8}(:[a-z]{1,4})?@[a-z0-9.-]{1,10}(:[0-9]{1,5})?(/[a-z0-9%._-]{0,6}){0,3}",
            1 => "0[0-9]{0,5}|true|false|yes|prefix|files|[a-z]{1,8}/[a-z]{1,8}|[a-z]{1,5}@[a-z]{1,5}\\.org",
            1 => "[a-z\n]{1000,5000}",
        ]
    }

    /// A secret value: hostile text around a marker that is unique to the setting, or a
    /// URL (a DSN, often valid) with the marker as its user.
    fn secret(marker: &'static str) -> impl Strategy<Value = String> {
        let around = prop_oneof![
            Just(String::new()),
            "https://[a-z]{0,3}",
            "[ -~\n\r\t\u{0}é]{0,12}",
            any::<String>(),
        ];
        let hostile = (around.clone(), around)
            .prop_map(move |(before, after)| format!("{before}{marker}{after}"));
        let dsn = (
            "https?://",
            "(:[ -~]{0,4})?",
            "[a-z0-9.-]{1,10}|\\[[0-9a-f:]{2,8}\\]|[ -~]{0,8}",
            "(:[0-9]{1,6})?",
            "(/[ -~]{0,6}){0,3}",
        )
            .prop_map(move |(scheme, password, host, port, path)| {
                format!("{scheme}{marker}{password}@{host}{port}{path}")
            });
        prop_oneof![hostile, dsn]
    }

    const MARKERS: [(&str, &str); 3] = [
        ("SENTRY_DSN", "SentryS3cr3tMark"),
        ("GITHUB_API_KEY", "GithubS3cr3tMark"),
        ("WDIV_API_KEY", "WdivS3cr3tMark"),
    ];

    /// Checks one load: it returned (a panic fails the property), showed no marker, and what
    /// it accepted cannot make a client panic later.
    fn check(result: Result<Settings, SettingsError>) -> Result<(), TestCaseError> {
        let shown = match &result {
            Ok(settings) => {
                if let Some(dsn) = &settings.sentry_dsn {
                    // What Sentry's transport builds from the DSN, and panics on if it can't.
                    let _ = dsn.expose().envelope_api_url();
                    let _ = dsn.expose().to_auth(Some("wdiv-s3-trigger")).to_string();
                }
                for token in [
                    settings.values.secret(&GITHUB_API_KEY),
                    settings.values.secret(&WDIV_API_KEY),
                ]
                .into_iter()
                .flatten()
                {
                    let header = format!("Bearer {}", token.expose());
                    prop_assert!(reqwest::header::HeaderValue::from_str(&header).is_ok());
                }
                format!("{settings:?}")
            }
            Err(e) => e.to_string(),
        };
        for (_, marker) in MARKERS {
            prop_assert!(!shown.contains(marker), "{} leaked:\n{}", marker, shown);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_values_load_or_fail_without_panic_or_leak(
            values in proptest::collection::vec(proptest::option::weighted(0.8, value()), NAMES.len()),
            secrets in (secret(MARKERS[0].1), secret(MARKERS[1].1), secret(MARKERS[2].1)),
            in_file in proptest::collection::vec(any::<bool>(), NAMES.len()),
        ) {
            let secrets = [secrets.0, secrets.1, secrets.2];
            let mut all: Vec<(String, String)> = Vec::new();
            for (name, value) in NAMES.iter().zip(&values) {
                let value = match MARKERS.iter().position(|(secret, _)| secret == name) {
                    Some(i) => Some(secrets[i].clone()),
                    None => value.clone(),
                };
                if let Some(value) = value {
                    all.push((name.to_string(), value));
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("settings.toml");

            // Everything in the environment.
            for context in [Context::Cli, Context::Lambda] {
                check(load(None, &all, context))?;
            }

            // Everything in a file, each value written as a TOML string; and split between
            // the file and the environment.
            let toml: String = all
                .iter()
                .map(|(k, v)| format!("{k} = {}\n", toml_string(v)))
                .collect();
            std::fs::write(&file, &toml).unwrap();
            check(load(Some(&file), &[], Context::Lambda))?;
            let (file_part, env_part): (Vec<_>, Vec<_>) = all
                .iter()
                .cloned()
                .zip(&in_file)
                .partition(|(_, in_file)| **in_file);
            let file_part: String = file_part
                .iter()
                .map(|((k, v), _)| format!("{k} = {}\n", toml_string(v)))
                .collect();
            let env_part: Vec<(String, String)> =
                env_part.into_iter().map(|(kv, _)| kv).collect();
            std::fs::write(&file, &file_part).unwrap();
            check(load(Some(&file), &env_part, Context::Cli))?;

            // Each value pasted into the file as it is, between quotes or bare: mostly a
            // syntax error, with the secrets on the broken lines.
            let raw: String = all
                .iter()
                .enumerate()
                .map(|(i, (k, v))| if i % 2 == 0 { format!("{k} = \"{v}\"\n") } else { format!("{k} = {v}\n") })
                .collect();
            std::fs::write(&file, &raw).unwrap();
            check(load(Some(&file), &[], Context::Cli))?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// One secret alone, so that what validation accepts reaches the checks on the
        /// accepted settings (the DSN Sentry's transport uses, the tokens' headers).
        #[test]
        fn an_accepted_secret_cannot_make_a_client_panic(
            secrets in (secret(MARKERS[0].1), secret(MARKERS[1].1), secret(MARKERS[2].1)),
        ) {
            let secrets = [secrets.0, secrets.1, secrets.2];
            for ((name, _), value) in MARKERS.iter().zip(&secrets) {
                check(load(None, &[(name.to_string(), value.clone())], Context::Cli))?;
            }
        }
    }
}
