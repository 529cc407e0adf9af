//! The world a pipeline test runs in: S3 (the in-process fake, or an emulator such as moto's
//! server when `WDIV_TEST_S3_ENDPOINT` is set), a WDIV fake (wiremock) that answers council names
//! and records webhook posts, and the real binary, run as a separate process.
#![allow(dead_code)]

#[path = "../fakes/github.rs"]
pub mod github;
#[path = "../fakes/s3.rs"]
pub mod s3;
#[path = "../fakes/sentry.rs"]
pub mod sentry;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const WDIV_TOKEN: &str = "wdiv-token-s3cr3t";
pub const GITHUB_TOKEN: &str = "ghp_github-s3cr3t";
pub const SENTRY_DSN: &str = "https://sentrykey-s3cr3t@sentry.example/42";
pub const COUNCIL_NAME: &str = "Testshire District Council";
pub const GITHUB_REPO: &str = "DemocracyClub/UK-Polling-Stations";
pub const DISTRIBUTION: &str = "E2TESTDISTRIB01";
pub const STAFF: &str = "staff@example.org";
pub const SENDER: &str = "pollingstations@example.org";

/// The repository's own fixtures.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub enum Backend {
    Fake(s3::FakeS3),
    External(String),
}

pub struct World {
    pub backend: Backend,
    pub client: aws_sdk_s3::Client,
    pub wdiv: MockServer,
    pub github: github::FakeGitHub,
    pub temp: String,
    pub final_bucket: String,
    pub dir: tempfile::TempDir,
    /// Settings for the binary, on top of the world's own.
    pub env: Vec<(String, String)>,
}

static WORLDS: AtomicUsize = AtomicUsize::new(0);

impl World {
    pub async fn new() -> World {
        let backend = match std::env::var("WDIV_TEST_S3_ENDPOINT") {
            Ok(url) if !url.is_empty() => Backend::External(url),
            _ => Backend::Fake(s3::FakeS3::start()),
        };
        let endpoint = match &backend {
            Backend::Fake(fake) => fake.endpoint(),
            Backend::External(url) => url.clone(),
        };
        let client = sdk_client(&endpoint).await;
        // Unique names, so tests can share one emulator.
        let n = WORLDS.fetch_add(1, Ordering::SeqCst);
        let run = format!("{}-{n}", std::process::id());
        let temp = format!("wdiv-temp-{run}");
        let final_bucket = format!("wdiv-final-{run}");
        for bucket in [&temp, &final_bucket] {
            client
                .create_bucket()
                .bucket(bucket)
                .create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
        }
        let wdiv = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/councils/[A-Za-z0-9-]+\.json$"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"council_id": "X", "name": COUNCIL_NAME})),
            )
            .mount(&wdiv)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/beta/uploads/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
            .mount(&wdiv)
            .await;
        World {
            backend,
            client,
            wdiv,
            github: github::FakeGitHub::start(GITHUB_TOKEN, GITHUB_REPO),
            temp,
            final_bucket,
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn fake(&self) -> Option<&s3::FakeS3> {
        match &self.backend {
            Backend::Fake(fake) => Some(fake),
            Backend::External(_) => None,
        }
    }

    pub fn endpoint(&self) -> String {
        match &self.backend {
            Backend::Fake(fake) => fake.endpoint(),
            Backend::External(url) => url.clone(),
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/api/beta/uploads/", self.wdiv.uri())
    }

    /// Every setting of a fully configured deploy, pointing at the fakes.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "eu-west-2".into()),
            ("TEMP_BUCKET_NAME", self.temp.clone()),
            ("FINAL_BUCKET_NAME", self.final_bucket.clone()),
            ("WDIV_API_URL", format!("{}/api", self.wdiv.uri())),
            ("WDIV_WEBHOOK_URL", self.webhook_url()),
            ("WDIV_API_KEY", WDIV_TOKEN.into()),
            ("GITHUB_API_KEY", GITHUB_TOKEN.into()),
            ("SENTRY_DSN", SENTRY_DSN.into()),
            ("SERVER_ENVIRONMENT", "test".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in &self.env {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// Turns on every effect: GitHub (the fake), CloudFront and SES (the AWS fake or emulator),
    /// with a short lease so a crashed run is taken over quickly.
    pub async fn enable_effects(&mut self) {
        self.set("GITHUB_API_URL", &self.github.url());
        self.set("GITHUB_REPO", GITHUB_REPO);
        self.set("CLOUDFRONT_DISTRIBUTION_ID", DISTRIBUTION);
        self.set("ERROR_REPORT_EMAIL", STAFF);
        self.set("EMAIL_FROM", SENDER);
        self.set("LEASE_SECONDS", "2");
        if let Some(fake) = self.fake() {
            fake.create_distribution(DISTRIBUTION);
        }
    }

    pub fn sent_emails(&self) -> Vec<s3::SentEmail> {
        self.fake().map(|f| f.sent_emails()).unwrap_or_default()
    }

    pub fn invalidations(&self) -> Vec<s3::Invalidation> {
        self.fake().map(|f| f.invalidations()).unwrap_or_default()
    }

    /// Sets (or, with "", unsets) a setting for the next runs.
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Puts a file in the temp bucket as the website does; returns its key.
    pub async fn upload(&self, prefix: &str, name: &str, bytes: &[u8]) -> String {
        let key = format!("{prefix}/{name}");
        self.put(&self.temp, &key, bytes).await;
        key
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    pub async fn etag(&self, bucket: &str, key: &str) -> String {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.e_tag().unwrap_or_default().to_owned()
    }

    /// The S3 event for `key` in the temp bucket, as S3 sends it.
    pub async fn event_for(&self, keys: &[&str]) -> Value {
        let mut records = Vec::new();
        for key in keys {
            let etag = self.etag(&self.temp, key).await;
            let event = wdiv_s3_trigger::event::object_created(&self.temp, key, 0, &etag);
            records.push(event["Records"][0].clone());
        }
        serde_json::json!({ "Records": records })
    }

    /// Runs the binary with the world's settings; `stdin` is fed to it.
    pub async fn cli(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.cli_with(args, stdin, &self.settings()).await
    }

    pub async fn cli_with(&self, args: &[&str], stdin: &[u8], env: &[(String, String)]) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wdiv-s3-trigger"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            if !v.is_empty() {
                command.env(k, v);
            }
        }
        let mut child = command.spawn().expect("the binary starts");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        Run::from(output)
    }

    /// `run -` with the event on stdin.
    pub async fn run_event(&self, event: &Value, extra_args: &[&str]) -> Run {
        let mut args = vec!["run"];
        args.extend_from_slice(extra_args);
        args.push("-");
        self.cli(&args, event.to_string().as_bytes()).await
    }

    /// The bodies POSTed to the webhook, and their Authorization headers.
    pub async fn webhook_posts(&self) -> Vec<(Value, String)> {
        self.wdiv
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| {
                let auth = r
                    .headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                (serde_json::from_slice(&r.body).unwrap(), auth)
            })
            .collect()
    }

    pub async fn report_json(&self, prefix: &str) -> Option<Value> {
        let bytes = self
            .get(&self.final_bucket, &format!("{prefix}/report.json"))
            .await?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }
}

pub async fn sdk_client(endpoint: &str) -> aws_sdk_s3::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-2"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// What a run of the binary printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
