//! Hostile settings through the real binary: values an attacker or a careless operator can put in
//! the environment or the settings file. Each must end as a settings problem (exit 2, the setting
//! named) or a normal run — never a panic — and no secret, URL user-info or URL query may appear
//! in anything the program prints.
//!
//! The binary runs on local folders in a fresh directory (so no `settings/local.toml` is read),
//! with a cleared environment.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::S3Events;

const BIN: &str = env!("CARGO_BIN_EXE_wdiv-s3-trigger");

/// What a run printed, and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the run did not panic, and that none of `secrets` is in its output.
    #[track_caller]
    fn assert_no_panic_and_no(&self, secrets: &[&str]) -> &Run {
        let all = self.all();
        assert_ne!(self.code, Some(101), "the program panicked:\n{all}");
        assert!(!all.contains("panicked"), "the program panicked:\n{all}");
        for secret in secrets {
            assert!(!all.contains(secret), "{secret:?} leaked:\n{all}");
        }
        self
    }
}

/// Runs the binary in `dir` with only `env` (and PATH, HOME) set; `stdin` is fed to it.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    // A run that stops at its settings may exit before it reads stdin (a broken pipe here).
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `run -` with an S3 event whose one record is for another bucket: the run gets past the event
/// to the clients (Sentry, GitHub), and then ignores the record. `global` goes before `run`.
fn run_ignored_event(dir: &Path, global: &[&str], env: &[(&str, &str)]) -> Run {
    let event = wdiv_s3_trigger::object_created(
        "another-bucket",
        "E07000223/2024-05-02/2024-04-01T10:11:12.123456/stations.csv",
        1,
        "\"etag\"",
    );
    let mut args = global.to_vec();
    args.extend(["run", "-"]);
    run(dir, &args, env, event.to_string().as_bytes())
}

/// A loopback URL on which nothing listens: connections are refused at once.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_malformed_sentry_dsn_is_a_settings_problem_that_does_not_show_the_dsn() {
    let dir = tempfile::tempdir().unwrap();
    // Parses as a URL, but has no public key or project: sentry::init would panic on it.
    let dsn = "htps:/dsn-s3cr3t-4711@sentry.example";
    let run = run_ignored_event(dir.path(), &[], &[("SENTRY_DSN", dsn)]);
    run.assert_no_panic_and_no(&[dsn, "dsn-s3cr3t-4711"])
        .assert_code(2);
    assert!(
        run.stderr.contains("the settings are not valid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("SENTRY_DSN (from environment variable) is not a valid Sentry DSN"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_github_token_with_a_newline_is_a_settings_problem_that_does_not_show_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_ignored_event(
        dir.path(),
        &[],
        &[
            ("GITHUB_REPO", "DemocracyClub/UK-Polling-Stations"),
            ("GITHUB_API_KEY", "ghp_line-one-s3cr3t\nInjected: header"),
        ],
    );
    run.assert_no_panic_and_no(&["ghp_line-one-s3cr3t", "Injected"])
        .assert_code(2);
    assert!(
        run.stderr.contains("the settings are not valid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("GITHUB_API_KEY (from environment variable) holds a line break"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_toml_syntax_error_names_the_file_and_line_but_not_the_secret_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.toml");
    std::fs::write(
        &file,
        "TEMP_BUCKET_NAME = \"temp-bucket\"\n\
         GITHUB_API_KEY = \"ghp_secretTOML-s3cr3t\n\
         FINAL_BUCKET_NAME = \"final-bucket\"\n",
    )
    .unwrap();
    let run = run_ignored_event(dir.path(), &["--settings", file.to_str().unwrap()], &[]);
    run.assert_no_panic_and_no(&["ghp_secretTOML", "s3cr3t"])
        .assert_code(2);
    assert!(
        run.stderr.contains("hostile.toml, line 2, column "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("is not valid TOML"), "{}", run.stderr);
}

#[test]
fn a_webhook_url_with_credentials_and_a_query_is_shown_masked_in_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let upload = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads/ems/idox-eros.csv");
    // The council name's lookup fails at once. (`WDIV_API_URL` may hold no credentials.)
    let api = format!("{}/api", closed_port_url());
    let run = run(
        dir.path(),
        &[
            "-v",
            "simulate",
            "--dry-run",
            "--council",
            "E07000223",
            "--election-date",
            "2024-05-02",
            upload.to_str().unwrap(),
        ],
        &[
            (
                "WDIV_WEBHOOK_URL",
                "https://user:hunter2@wdiv.example/hook?key=abc#frag",
            ),
            ("WDIV_API_KEY", "wdiv-token-s3cr3t"),
            ("WDIV_API_URL", &api),
        ],
        b"",
    );
    run.assert_no_panic_and_no(&["hunter2", "key=abc", "wdiv-token-s3cr3t"])
        .assert_code(0);
    // The plan still says where the report would go.
    assert!(
        run.stdout
            .contains("POST https://****@wdiv.example/hook?**** (Authorization: Token ****)"),
        "{}",
        run.stdout
    );
}

#[test]
fn in_lambda_mode_the_same_values_are_logged_as_settings_problems_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let runtime_api = closed_port_url().replace("http://", "");
    let run = run(
        dir.path(),
        &[],
        &[
            ("AWS_LAMBDA_RUNTIME_API", &runtime_api),
            ("TEMP_BUCKET_NAME", "temp-bucket"),
            ("FINAL_BUCKET_NAME", "final-bucket"),
            ("SENTRY_DSN", "https://sentry.example/42?dsn-s3cr3t"),
            ("GITHUB_REPO", "DemocracyClub/UK-Polling-Stations"),
            ("GITHUB_API_KEY", "ghp_lambda-s3cr3t\r\nX: y"),
            (
                "WDIV_WEBHOOK_URL",
                "ftp://user:hunter2@wdiv.example/hook?key=abc",
            ),
        ],
        b"",
    );
    run.assert_no_panic_and_no(&["s3cr3t", "hunter2", "key=abc"])
        .assert_code(1);
    // One JSON log line on stdout lists every problem.
    for expected in [
        "the settings are not valid (3 problems)",
        "SENTRY_DSN (from environment variable) is not a valid Sentry DSN",
        "GITHUB_API_KEY (from environment variable) holds a line break",
        "WDIV_WEBHOOK_URL \\\"ftp://****@wdiv.example/hook?****\\\"",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
}

/// Issue 25: at `RUST_LOG=debug`, octocrab's span printed `GITHUB_API_URL` whole, credentials
/// and all. A full run against the fakes, at `trace`, with a secret in every secret setting and
/// GitHub failing (so errors, retries and a Sentry event are logged too): no secret is printed.
/// And `GITHUB_API_URL` with credentials is refused before any client is made.
#[tokio::test]
async fn at_trace_level_no_secret_is_printed() {
    use wdiv_test_support::{World, GITHUB_TOKEN, WDIV_TOKEN};
    let mut world = World::with_effects().await;
    let sentry = wdiv_test_support::fakes::sentry::FakeSentry::start();
    world.set("SENTRY_DSN", &sentry.dsn());
    let hook = world
        .webhook_url()
        .replace("http://", "http://hookuser:hookpass-s3cr3t@")
        + "?hooktoken=q-s3cr3t";
    world.set("WDIV_WEBHOOK_URL", &hook);
    world.set("RUST_LOG", "trace");
    let key = world
        .upload_xpress("E07000223/2024-05-02/2024-04-01T10:11:12.123456")
        .await;
    world.github.fail_next("ListIssues", 503, 3);
    let secrets = [
        GITHUB_TOKEN,
        WDIV_TOKEN,
        "hookuser",
        "hookpass-s3cr3t",
        "q-s3cr3t",
        // `hookuser:hookpass-s3cr3t` as a Basic Authorization header carries it.
        "aG9va3VzZXI6aG9va3Bhc3MtczNjcjN0",
        wdiv_test_support::fakes::sentry::PUBLIC_KEY,
    ];

    let run = world.run_for(&[&key]).await;
    assert_eq!(run.code, 1, "GitHub failed: {}", run.stderr);
    // The run did log at trace level, its dependencies included, and it did reach every party.
    assert!(run.stderr.contains("TRACE"), "{}", run.stderr);
    assert_eq!(world.webhook_posts().await.len(), 1);
    let events = tokio::task::spawn_blocking(move || {
        sentry.wait_for_events(1, std::time::Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(!events.is_empty(), "no Sentry event");
    let all = format!("{}\n{}", run.stdout, run.stderr);
    for secret in secrets {
        assert!(
            !all.contains(secret),
            "{secret:?} leaked at trace level:\n{all}"
        );
    }

    let github = world
        .github
        .url()
        .replace("http://", "http://guser:gpass-s3cr3t@");
    world.set("GITHUB_API_URL", &github);
    let run = world.run_for(&[&key]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("GITHUB_API_URL \"http://****@127.0.0.1:")
            && run
                .stderr
                .contains("must not hold a user name or password (user:pass@)"),
        "{}",
        run.stderr
    );
    let all = format!("{}\n{}", run.stdout, run.stderr);
    for secret in ["guser", "gpass-s3cr3t"].iter().chain(&secrets) {
        assert!(
            !all.contains(secret),
            "{secret:?} leaked at trace level:\n{all}"
        );
    }
}
