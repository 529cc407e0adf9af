//! The Lambda envelope of a binary: how soon it is ready, and what one big upload costs it in
//! time and memory, run as Lambda runs it. `scripts/envelope.py` builds this and prints the
//! table in `docs/operations.md` ("Lambda envelope"); run that, not this.
//!
//! ```text
//! envelope --binary PATH --file PATH [--ready-runs N] [--timeout SECONDS]
//! ```
//!
//! * **Ready:** the binary is started as Lambda starts it, with `AWS_LAMBDA_RUNTIME_API` set to a
//!   bare TCP listener here; the time from the spawn to the first `GET .../invocation/next`
//!   request, median of `--ready-runs`.
//! * **One upload, cold:** FILE is put into the in-process AWS fake
//!   (`crates/test-support/src/fakes/aws.rs`) as a one
//!   file upload; its `ObjectCreated` event is queued on the fake Runtime API
//!   (`crates/test-support/src/fakes/lambda_runtime.rs`) before the binary starts, as for a cold invocation. The
//!   time from the spawn to the posted response, the process's peak RSS (`VmHWM`, read before it
//!   is stopped) and its CPU time (`getrusage` of the reaped child). The response must say the upload was handled and the
//!   final bucket must hold the file, byte for byte, and `report.json`.
//!
//! Prints one JSON object on stdout. The external effects are off (their settings are unset);
//! council names come from a stub.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use wdiv_test_support::fakes::{aws, lambda_runtime};

const PREFIX: &str = "E07000223/2024-05-02/2024-04-01T12:00:00.000001";
const TEMP: &str = "wdiv-envelope-temp";
const FINAL: &str = "wdiv-envelope-final";

struct Args {
    binary: PathBuf,
    file: PathBuf,
    ready_runs: usize,
    timeout: Duration,
}

fn args() -> Result<Args> {
    let mut binary = None;
    let mut file = None;
    let mut ready_runs = 5;
    let mut timeout = Duration::from_secs(300);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--binary" => binary = Some(PathBuf::from(value()?)),
            "--file" => file = Some(PathBuf::from(value()?)),
            "--ready-runs" => ready_runs = value()?.parse().context("--ready-runs")?,
            "--timeout" => timeout = Duration::from_secs(value()?.parse().context("--timeout")?),
            _ => bail!("unknown argument {flag}; usage: envelope --binary PATH --file PATH [--ready-runs N] [--timeout SECONDS]"),
        }
    }
    Ok(Args {
        binary: binary.context("--binary PATH is required")?,
        file: file.context("--file PATH is required")?,
        ready_runs: ready_runs.max(1),
        timeout,
    })
}

/// Lambda's environment for the function and the settings it needs, without our own: no setting
/// of an effect leaks in.
fn lambda_command(binary: &PathBuf, runtime_api: &str, aws: &str, wdiv: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", lambda_runtime::FUNCTION_NAME)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "eu-west-2")
        .env("AWS_ENDPOINT_URL", aws)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("TEMP_BUCKET_NAME", TEMP)
        .env("FINAL_BUCKET_NAME", FINAL)
        .env("WDIV_API_URL", wdiv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Kills and reaps a child; its resource use then counts in `RUSAGE_CHILDREN`.
fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Spawn → first `next` request on a bare listener.
fn time_to_ready(binary: &PathBuf, timeout: Duration) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let start = Instant::now();
    // Nothing listens on port 9: start-up must not need S3 or WDIV.
    let child = lambda_command(
        binary,
        &addr,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/api",
    )
    .spawn()
    .with_context(|| format!("starting {}", binary.display()))?;
    listener.set_nonblocking(true)?;
    let (mut stream, ready) = loop {
        match listener.accept() {
            Ok((stream, _)) => break (stream, start.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > timeout {
                    reap(child);
                    bail!("no Runtime API request within {timeout:?}");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap_or(0);
    reap(child);
    let head = String::from_utf8_lossy(&head[..n]);
    ensure!(
        head.starts_with("GET /2018-06-01/runtime/invocation/next"),
        "the first request was not `next`: {head:?}"
    );
    Ok(ready)
}

/// `VmHWM` of a live process: the peak resident set of its own address space, in KiB.
fn vm_hwm_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status (Linux only)")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

fn peak_rss_and_cpu_of_children() -> (u64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // ru_maxrss is in KiB on Linux.
    (
        usage.ru_maxrss as u64,
        secs(usage.ru_utime) + secs(usage.ru_stime),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = args()?;
    let body = std::fs::read(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .context("FILE has no name")?;
    let key = format!("{PREFIX}/{name}");

    let mut ready = Vec::new();
    for _ in 0..args.ready_runs {
        ready.push(time_to_ready(&args.binary, Duration::from_secs(30))?);
    }
    ready.sort();
    let (_, ready_cpu) = peak_rss_and_cpu_of_children();

    let aws = aws::FakeAws::start();
    let http = reqwest::Client::new();
    for bucket in [TEMP, FINAL] {
        let r = http
            .put(format!("{}/{bucket}", aws.endpoint()))
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "CreateBucket {bucket}: {}",
            r.status()
        );
    }
    let put = http
        .put(format!("{}/{TEMP}/{key}", aws.endpoint()))
        .body(body.clone())
        .send()
        .await?;
    ensure!(put.status().is_success(), "PutObject: {}", put.status());
    let etag = put
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .context("PutObject without an ETag")?
        .trim_matches('"')
        .to_string();

    let wdiv = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"name": "Tendring District Council"})),
        )
        .mount(&wdiv)
        .await;

    let runtime = lambda_runtime::FakeLambdaRuntime::start();
    runtime.push_event(wdiv_s3_trigger::object_created(
        TEMP,
        &key,
        body.len() as u64,
        &etag,
    ));
    let mut command = lambda_command(
        &args.binary,
        &runtime.address(),
        &aws.endpoint(),
        &format!("{}/api", wdiv.uri()),
    );
    let start = Instant::now();
    let child = command.spawn().context("starting the binary")?;
    let invocations = tokio::task::block_in_place(|| runtime.wait_for_outcomes(1, args.timeout));
    let end_to_end = start.elapsed();
    // The child's own high-water mark. Not getrusage's ru_maxrss: Linux carries the RSS of the
    // address space an exec replaces into it, and a spawned child starts in a copy of ours,
    // which holds the whole object.
    let peak_rss_kib = vm_hwm_kib(child.id())?;
    reap(child);
    let (_, all_cpu) = peak_rss_and_cpu_of_children();
    let cpu_seconds = all_cpu - ready_cpu;

    let outcome = invocations
        .first()
        .and_then(|i| i.outcome.clone())
        .with_context(|| format!("no answer within {:?}", args.timeout))?;
    let response = match outcome {
        lambda_runtime::Outcome::Response(v) => v,
        other => bail!("the invocation failed: {other:?}"),
    };
    let valid = response["uploads"][0]["valid"] == Value::Bool(true);
    ensure!(valid, "the upload was not valid: {response}");
    let copied = aws
        .object(FINAL, &key)
        .context("the file is not in the final bucket")?;
    ensure!(
        copied == body,
        "the final bucket's copy differs from the file"
    );
    let report: Value = serde_json::from_slice(
        &aws.object(FINAL, &format!("{PREFIX}/report.json"))
            .context("no report.json in the final bucket")?,
    )?;
    let file = &report["file_set"][0];

    println!(
        "{}",
        json!({
            "binary": args.binary,
            "object_bytes": body.len(),
            "ready_ms_median": ready[ready.len() / 2].as_secs_f64() * 1e3,
            "ready_ms_min": ready[0].as_secs_f64() * 1e3,
            "ready_ms_max": ready[ready.len() - 1].as_secs_f64() * 1e3,
            "end_to_end_s": end_to_end.as_secs_f64(),
            "peak_rss_kib": peak_rss_kib,
            "cpu_s": cpu_seconds,
            "csv_rows": file["csv_rows"],
            "ems": file["ems"],
        })
    );
    Ok(())
}
