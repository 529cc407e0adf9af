//! The world a scenario runs in: AWS — S3, SES v2 and CloudFront — on the in-process fake,
//! or on an emulator such as moto's server when `WDIV_TEST_S3_ENDPOINT` is set; the WDIV fake,
//! which answers council names and records webhook posts; the GitHub fake; and the real
//! binary, run as a separate process.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::fakes::lambda_runtime::FakeLambdaRuntime;
use crate::fakes::{aws, github, wdiv};

pub const WDIV_TOKEN: &str = "wdiv-token-s3cr3t";
pub const GITHUB_TOKEN: &str = "ghp_github-s3cr3t";
pub const SENTRY_DSN: &str = "https://sentrykey-s3cr3t@sentry.example/42";
pub const COUNCIL_NAME: &str = "Testshire District Council";
pub const GITHUB_REPO: &str = "DemocracyClub/UK-Polling-Stations";
pub const DISTRIBUTION: &str = "E2TESTDISTRIB01";
pub const STAFF: &str = "staff@example.org";
pub const SENDER: &str = "pollingstations@example.org";

/// The repository's root folder.
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The repository's own fixtures.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = repo_root().join("fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The program under test, as cargo built it for the scenarios: cargo names it to the
/// scenarios in `CARGO_BIN_EXE_wdiv-s3-trigger`; a test binary not built by cargo finds it
/// beside its own folder (`target/debug/deps/..`).
pub fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_wdiv-s3-trigger") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's folder");
    deps.parent()
        .unwrap_or(deps)
        .join(format!("wdiv-s3-trigger{}", std::env::consts::EXE_SUFFIX))
}

pub enum Backend {
    Fake(aws::FakeAws),
    External(String),
}

pub struct World {
    pub backend: Backend,
    /// The AWS configuration of the test's own clients (endpoint = the fake or the emulator).
    pub sdk: aws_config::SdkConfig,
    pub client: aws_sdk_s3::Client,
    pub wdiv: wdiv::FakeWdiv,
    pub github: github::FakeGitHub,
    pub temp: String,
    pub final_bucket: String,
    pub dir: tempfile::TempDir,
    /// Settings for the binary, on top of the world's own.
    pub env: Vec<(String, String)>,
    /// The CloudFront distribution the binary invalidates (CLOUDFRONT_DISTRIBUTION_ID): on the
    /// fake, [`DISTRIBUTION`]; on an emulator, the one [`World::enable_effects`] created there,
    /// as emulators choose distribution ids themselves.
    pub distribution: String,
    /// The SES sender (EMAIL_FROM): on the fake, [`SENDER`]; on an emulator, one per world, so
    /// that a world reads back only its own mail from an emulator the tests share.
    pub sender: String,
    /// Unique to this world, so tests can share one emulator.
    run: String,
}

/// The S3 notification for one object: (bucket, key, size, ETag) to the event.
pub type ObjectCreated = fn(&str, &str, u64, &str) -> Value;

static WORLDS: AtomicUsize = AtomicUsize::new(0);

impl World {
    pub async fn new() -> World {
        let backend = match std::env::var("WDIV_TEST_S3_ENDPOINT") {
            Ok(url) if !url.is_empty() => Backend::External(url),
            _ => Backend::Fake(aws::FakeAws::start()),
        };
        let endpoint = match &backend {
            Backend::Fake(fake) => fake.endpoint(),
            Backend::External(url) => url.clone(),
        };
        let sdk = aws::client_config(&endpoint).await;
        let client = aws::s3_client(&sdk);
        // Unique names, so tests can share one emulator.
        let n = WORLDS.fetch_add(1, Ordering::SeqCst);
        let run = format!("{}-{n}", std::process::id());
        let sender = match &backend {
            Backend::Fake(_) => SENDER.to_owned(),
            Backend::External(_) => format!("pollingstations-{run}@example.org"),
        };
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
        let wdiv = wdiv::FakeWdiv::start(COUNCIL_NAME);
        World {
            backend,
            sdk,
            client,
            wdiv,
            github: github::FakeGitHub::start(GITHUB_TOKEN, GITHUB_REPO),
            temp,
            final_bucket,
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
            distribution: DISTRIBUTION.to_owned(),
            sender,
            run,
        }
    }

    /// A world with every effect turned on (see [`World::enable_effects`]).
    pub async fn with_effects() -> World {
        let mut world = World::new().await;
        world.enable_effects().await;
        world
    }

    /// Uploads the Xpress DC fixture as `stations.csv` under `prefix`: a valid upload.
    pub async fn upload_xpress(&self, prefix: &str) -> String {
        self.upload(
            prefix,
            "stations.csv",
            &fixture("uploads/ems/xpress-dc.csv"),
        )
        .await
    }

    /// Uploads a file that fails its checks (a row short of fields mid-file) as `stations.csv`
    /// under `prefix`.
    pub async fn upload_invalid(&self, prefix: &str) -> String {
        let bytes = fixture("uploads/records/short-row-in-middle.csv");
        self.upload(prefix, "stations.csv", &bytes).await
    }

    /// Uploads the Democracy Counts stations file under `prefix`, alone.
    pub async fn upload_dc_stations(&self, prefix: &str) -> String {
        let bytes = fixture("uploads/democracy-counts/stations.csv");
        self.upload(prefix, "stations.csv", &bytes).await
    }

    /// Uploads the Democracy Counts districts file under `prefix`, alone.
    pub async fn upload_dc_districts(&self, prefix: &str) -> String {
        let bytes = fixture("uploads/democracy-counts/districts.csv");
        self.upload(prefix, "districts.csv", &bytes).await
    }

    /// Uploads the Idox Eros fixture as `stations.csv` under `prefix`: a valid upload.
    pub async fn upload_idox(&self, prefix: &str) -> String {
        let bytes = fixture("uploads/ems/idox-eros.csv");
        self.upload(prefix, "stations.csv", &bytes).await
    }

    pub fn fake(&self) -> Option<&aws::FakeAws> {
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

    /// Makes the WDIV fake answer webhook posts as the real site does ([`wdiv::Site`]), the
    /// first `row_missing_posts` with a 500 as when a post beats the upload's row.
    pub async fn answer_as_the_site(&self, row_missing_posts: usize) -> std::sync::Arc<wdiv::Site> {
        let site = std::sync::Arc::new(wdiv::Site::new(row_missing_posts));
        self.wdiv.answer_as(site.clone());
        site
    }

    pub fn webhook_url(&self) -> String {
        self.wdiv.webhook_url()
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
            ("WDIV_API_URL", self.wdiv.api_url()),
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
    /// with a short lease so a crashed run is taken over quickly. On an emulator this creates a
    /// CloudFront distribution and verifies the sender (SES refuses mail from an unverified one).
    pub async fn enable_effects(&mut self) {
        match &self.backend {
            Backend::Fake(fake) => fake.create_distribution(DISTRIBUTION),
            Backend::External(_) => {
                self.distribution = self.create_distribution().await;
                self.sesv2()
                    .create_email_identity()
                    .email_identity(&self.sender)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("SES create email identity {}: {e:?}", self.sender));
            }
        }
        self.set("GITHUB_API_URL", &self.github.url());
        self.set("GITHUB_REPO", GITHUB_REPO);
        self.set("CLOUDFRONT_DISTRIBUTION_ID", &self.distribution.clone());
        self.set("ERROR_REPORT_EMAIL", STAFF);
        self.set("EMAIL_FROM", &self.sender.clone());
        self.set("LEASE_SECONDS", "4");
    }

    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk)
    }

    pub fn sesv2(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.sdk)
    }

    /// A minimal distribution (one custom origin), on the emulator; returns the id it chose.
    async fn create_distribution(&self) -> String {
        use aws_sdk_cloudfront::types::{
            CustomOriginConfig, DefaultCacheBehavior, DistributionConfig, Origin,
            OriginProtocolPolicy, Origins, ViewerProtocolPolicy,
        };
        let origin = Origin::builder()
            .id("site")
            .domain_name("wheredoivote.example")
            .custom_origin_config(
                CustomOriginConfig::builder()
                    .http_port(80)
                    .https_port(443)
                    .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let config = DistributionConfig::builder()
            // Distinct per world: CloudFront (and moto) refuse a second distribution with the
            // same CallerReference.
            .caller_reference(format!("wdiv-test-{}", self.run))
            .origins(
                Origins::builder()
                    .quantity(1)
                    .items(origin)
                    .build()
                    .unwrap(),
            )
            .default_cache_behavior(
                DefaultCacheBehavior::builder()
                    .target_origin_id("site")
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .build()
                    .unwrap(),
            )
            .comment("wdiv-s3-trigger tests")
            .enabled(true)
            .build()
            .unwrap();
        let out = self
            .cloudfront()
            .create_distribution()
            .distribution_config(config)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CloudFront create distribution: {e:?}"));
        let id = out.distribution().map(|d| d.id().to_owned());
        id.filter(|id| !id.is_empty())
            .expect("CloudFront returned a distribution id")
    }

    /// Every email SES accepted from this world's sender, oldest first. On an emulator, read
    /// from moto's internal state (`GET /moto-api/data.json`, the SES backend's `Message`s,
    /// which SES v2 `SendEmail` with simple content also records); moto keeps only the text
    /// part, or the HTML part if there is one, as the body.
    pub async fn sent_emails(&self) -> Vec<aws::SentEmail> {
        let url = match &self.backend {
            Backend::Fake(fake) => return fake.sent_emails(),
            Backend::External(url) => format!("{}/moto-api/data.json", url.trim_end_matches('/')),
        };
        let data: Value = reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let messages = data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let text = |m: &Value, field: &str| m[field].as_str().unwrap_or_default().to_owned();
        let addresses = |m: &Value, field: &str| -> Vec<String> {
            let list = m["destinations"][field]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        };
        messages
            .iter()
            .filter(|m| m["source"] == self.sender.as_str())
            .map(|m| aws::SentEmail {
                message_id: text(m, "id"),
                from: text(m, "source"),
                to: addresses(m, "ToAddresses"),
                cc: addresses(m, "CcAddresses"),
                subject: text(m, "subject"),
                text: text(m, "body"),
                html: None,
            })
            .collect()
    }

    /// Every invalidation of this world's distribution, oldest first. On an emulator, read with
    /// CloudFront's own ListInvalidations and GetInvalidation; the status is as it reports it.
    pub async fn invalidations(&self) -> Vec<aws::Invalidation> {
        if let Backend::Fake(fake) = &self.backend {
            return fake.invalidations();
        }
        let cloudfront = self.cloudfront();
        let mut summaries = Vec::new();
        let mut marker = None;
        loop {
            let out = cloudfront
                .list_invalidations()
                .distribution_id(&self.distribution)
                .set_marker(marker.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("CloudFront list invalidations: {e:?}"));
            let Some(list) = out.invalidation_list() else {
                break;
            };
            summaries.extend(
                list.items()
                    .iter()
                    .map(|s| (s.create_time().as_nanos(), s.id().to_owned())),
            );
            match list.next_marker() {
                Some(next) if list.is_truncated() && !next.is_empty() => {
                    marker = Some(next.to_owned())
                }
                _ => break,
            }
        }
        // Oldest first, as the fake reports them (a stable sort keeps the listed order of ties).
        summaries.sort_by_key(|(created, _)| *created);
        let mut invalidations = Vec::new();
        for (_, id) in summaries {
            let out = cloudfront
                .get_invalidation()
                .distribution_id(&self.distribution)
                .id(&id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CloudFront get invalidation {id}: {e:?}"));
            let inv = out.invalidation().expect("GetInvalidation returns it");
            let batch = inv.invalidation_batch();
            invalidations.push(aws::Invalidation {
                id: inv.id().to_owned(),
                distribution_id: self.distribution.clone(),
                caller_reference: batch
                    .map(|b| b.caller_reference().to_owned())
                    .unwrap_or_default(),
                paths: batch
                    .and_then(|b| b.paths())
                    .map(|p| p.items().to_vec())
                    .unwrap_or_default(),
                status: inv.status().to_owned(),
            });
        }
        invalidations
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

    /// The S3 event for `keys` in the temp bucket, as S3 sends it, each record made by
    /// `object_created` (the program's `event::object_created`: this crate does not depend on
    /// the program, so that editing it rebuilds no fake).
    pub async fn event_with(&self, keys: &[&str], object_created: ObjectCreated) -> Value {
        let mut records = Vec::new();
        for key in keys {
            let etag = self.etag(&self.temp, key).await;
            let event = object_created(&self.temp, key, 0, &etag);
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
        let mut command = tokio::process::Command::new(program());
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
        // A binary that stops before reading its input (a settings error) closes the pipe: that
        // is an outcome to assert on, not a test failure.
        match input.write_all(stdin).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("the event is written to the binary's stdin"),
        }
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        Run::from(output)
    }

    /// The binary started as Lambda starts it (`AWS_LAMBDA_RUNTIME_API` set, with the world's
    /// settings), polling `runtime` for events. Its output is piped; it is killed when dropped.
    pub fn start_lambda(&self, runtime: &FakeLambdaRuntime) -> tokio::process::Child {
        let mut command = tokio::process::Command::new(program());
        command
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in self.settings().into_iter().chain(runtime.lambda_env()) {
            command.env(k, v);
        }
        command.spawn().expect("the binary starts")
    }

    /// `run -` for `event`, with the program's peak resident memory in KB, measured by GNU
    /// time (`/usr/bin/time`, from Debian's `time`, which `.ci/run` installs where it is
    /// missing).
    pub async fn run_measured_event(&self, event: &Value) -> (Run, u64) {
        let event = event.to_string();
        let figure = self
            .dir
            .path()
            .join(format!("rss-{}", WORLDS.fetch_add(1, Ordering::SeqCst)));
        let time = Path::new("/usr/bin/time");
        assert!(
            time.exists(),
            "measuring memory needs GNU time at /usr/bin/time (apt install time)"
        );
        let mut command = tokio::process::Command::new(time);
        command
            .args(["-f", "%M", "-o"])
            .arg(&figure)
            .arg(program())
            .args(["run", "-"])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info")
            .envs(self.settings().into_iter().filter(|(_, v)| !v.is_empty()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let mut input = child.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut input, event.as_bytes())
            .await
            .unwrap();
        drop(input);
        let run = Run::from(child.wait_with_output().await.unwrap());
        let text = std::fs::read_to_string(&figure).unwrap();
        // GNU time writes "Command exited with non-zero status 1" before the figure.
        let kb = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no figure from /usr/bin/time: {text}"));
        (run, kb)
    }

    /// Uploads the Democracy Counts fixture pair under `prefix`; returns (stations, districts).
    pub async fn upload_dc_pair(&self, prefix: &str) -> (String, String) {
        let stations = self.upload_dc_stations(prefix).await;
        (stations, self.upload_dc_districts(prefix).await)
    }

    /// `run -` with the event on stdin.
    pub async fn run_event(&self, event: &Value, extra_args: &[&str]) -> Run {
        let mut args = vec!["run"];
        args.extend_from_slice(extra_args);
        args.push("-");
        self.cli(&args, event.to_string().as_bytes()).await
    }

    /// The bodies POSTed to the webhook, and their Authorization headers, whoever answered.
    pub async fn webhook_posts(&self) -> Vec<(Value, String)> {
        self.wdiv
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| (serde_json::from_slice(&r.body).unwrap(), r.authorization()))
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
    aws::s3_client(&aws::client_config(endpoint).await)
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
