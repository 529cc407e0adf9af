//! The pipeline as Lambda runs it, over and over: the real binary (`run -`) as a child process
//! against the in-process fakes (AWS, GitHub, WDIV), with a tripwire in every fake that can
//! SIGKILL the child at its k-th request, before the fake handles it or after (so between an
//! effect and the record of it), and each child's exit and peak memory read with `wait4`.
//! Used by the crash and load scenarios (tests/scenarios/crash.rs, load.rs).

use std::fs::File;
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fakes::Hook;
use crate::world::World;

/// Where the ledger keeps its records (src/event.rs `INTERNAL_PREFIX`), as it appears in a path.
pub const LEDGER_PATH: &str = "/.wdiv-s3-trigger/effects/";
/// SES v2 SendEmail.
pub const SEND_EMAIL: &str = "POST /v2/email/outbound-emails";
/// The WDIV webhook.
pub const WEBHOOK: &str = "POST /api/beta/uploads/";

/// A k that no run reaches: the requests are recorded, nothing is killed.
pub const COUNT_ONLY: usize = usize::MAX;

/// One request a child made, as the fakes saw it: "METHOD /path?query", and whether the fake
/// handled it (false: the child was killed before it was).
#[derive(Clone, Debug)]
pub struct Seen {
    pub request: String,
    pub handled: bool,
}

/// Where a child was killed.
#[derive(Clone, Debug)]
pub struct Kill {
    /// The child was killed at its k-th request…
    pub k: usize,
    /// …after the fake handled it (and before the child read the answer), or before.
    pub after: bool,
    pub request: String,
}

impl std::fmt::Display for Kill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = if self.after { "after" } else { "before" };
        write!(f, "killed {when} request {} ({})", self.k, self.request)
    }
}

#[derive(Default)]
struct TripState {
    /// The request to kill at (1-based); 0: not armed.
    target: AtomicUsize,
    /// Or the first request that starts with this ("POST /repos/"), when armed.
    matching: Mutex<Option<String>>,
    after: std::sync::atomic::AtomicBool,
    pid: AtomicI32,
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    fired: Mutex<Option<Kill>>,
}

/// Counts the requests every fake of a [`Lab`] receives, and kills the child at the k-th.
#[derive(Clone, Default)]
pub struct Tripwire(Arc<TripState>);

/// SIGKILLs `pid` and returns once it is dead (without reaping it: its runner does).
fn kill_and_wait(pid: i32) {
    if pid <= 0 {
        return;
    }
    // SAFETY: kill and waitid with WNOWAIT only signal and observe our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        // ECHILD (already reaped by the runner) also means it is dead.
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
}

impl Tripwire {
    /// The hook to install in each fake.
    pub fn hook(&self) -> Hook {
        let state = self.0.clone();
        Arc::new(move |method: &str, target: &str| {
            let request = format!("{method} {target}");
            let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
            let armed = state.target.load(Ordering::SeqCst);
            let pid = state.pid.load(Ordering::SeqCst);
            if armed == 0 {
                return Ok(None);
            }
            let hit = match &*state.matching.lock().unwrap() {
                Some(prefix) => {
                    state.fired.lock().unwrap().is_none() && request.starts_with(prefix)
                }
                None => n == armed,
            };
            if !hit {
                state.seen.lock().unwrap().push(Seen {
                    request,
                    handled: true,
                });
                return Ok(None);
            }
            let after = state.after.load(Ordering::SeqCst);
            let kill = Kill {
                k: n,
                after,
                request: request.clone(),
            };
            state.seen.lock().unwrap().push(Seen {
                request,
                handled: after,
            });
            *state.fired.lock().unwrap() = Some(kill);
            if after {
                Ok(Some(
                    Box::new(move || kill_and_wait(pid)) as Box<dyn FnOnce() + Send>
                ))
            } else {
                kill_and_wait(pid);
                Err(())
            }
        })
    }

    /// Counts from zero again, for the child `pid`, and kills it at its k-th request when
    /// `kill_at` = Some((k, after)) (k = [`COUNT_ONLY`]: never).
    fn arm(&self, pid: i32, kill_at: Option<(usize, bool)>, matching: Option<&str>) {
        let s = &self.0;
        *s.matching.lock().unwrap() = matching.map(str::to_owned);
        s.count.store(0, Ordering::SeqCst);
        s.seen.lock().unwrap().clear();
        *s.fired.lock().unwrap() = None;
        s.after
            .store(kill_at.is_some_and(|(_, a)| a), Ordering::SeqCst);
        s.pid.store(pid, Ordering::SeqCst);
        s.target
            .store(kill_at.map_or(0, |(k, _)| k), Ordering::SeqCst);
    }

    fn disarm(&self) -> (Vec<Seen>, Option<Kill>) {
        let s = &self.0;
        s.target.store(0, Ordering::SeqCst);
        *s.matching.lock().unwrap() = None;
        s.pid.store(0, Ordering::SeqCst);
        let seen = std::mem::take(&mut *s.seen.lock().unwrap());
        (seen, s.fired.lock().unwrap().take())
    }
}

/// A world with every effect on, a one-second lease (a killed run's lease expires quickly) and
/// a tripwire in every fake.
pub struct Lab {
    pub world: World,
    pub trip: Tripwire,
    runs: AtomicU64,
}

impl Lab {
    pub async fn new() -> Lab {
        let mut world = World::with_effects().await;
        world.set("LEASE_SECONDS", "1");
        // No Sentry: nothing fails for good here, and its host does not exist.
        world.set("SENTRY_DSN", "");
        let trip = Tripwire::default();
        let fake = world
            .fake()
            .expect("the harness needs the in-process AWS fake (WDIV_TEST_S3_ENDPOINT unset)");
        fake.set_hook(Some(trip.hook()));
        world.github.set_hook(Some(trip.hook()));
        world.wdiv.set_hook(Some(trip.hook()));
        Lab {
            world,
            trip,
            runs: AtomicU64::new(0),
        }
    }

    /// Runs `run -` with `event`, killing it at its k-th request when `kill_at` says so (see
    /// [`Tripwire`]; only one child of a lab may be armed at a time). Gives up after `limit`.
    pub async fn run(
        &self,
        event: &Value,
        kill_at: Option<(usize, bool)>,
        limit: Duration,
    ) -> Ended {
        self.run_armed(event, kill_at, None, limit).await
    }

    /// Runs `run -` with `event`, killing it at the first request that starts with `request`
    /// ("POST /repos/"), after the fake handled it or before.
    pub async fn run_killed_at(&self, event: &Value, request: &str, after: bool) -> Ended {
        let limit = Duration::from_secs(90);
        self.run_armed(event, Some((COUNT_ONLY, after)), Some(request), limit)
            .await
    }

    async fn run_armed(
        &self,
        event: &Value,
        kill_at: Option<(usize, bool)>,
        matching: Option<&str>,
        limit: Duration,
    ) -> Ended {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let dir = self.world.dir.path();
        let out = File::create(dir.join(format!("run-{n}.stdout"))).unwrap();
        let err_path = dir.join(format!("run-{n}.stderr"));
        let err = File::create(&err_path).unwrap();
        let mut command = std::process::Command::new(binary());
        command
            .args(["run", "-"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in self.world.settings() {
            if !v.is_empty() {
                command.env(k, v);
            }
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("the binary starts");
        let pid = child.id() as i32;
        if kill_at.is_some() {
            self.trip.arm(pid, kill_at, matching);
        }
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // A child killed early may not read it all.
            let _ = stdin.write_all(event.to_string().as_bytes());
        }
        let waited = tokio::task::spawn_blocking(move || reap(pid));
        let (status, max_rss_kb, cpu) = match tokio::time::timeout(limit, waited).await {
            Ok(done) => done.unwrap(),
            Err(_) => {
                kill_and_wait(pid);
                let _ = tokio::task::spawn_blocking(move || reap(pid)).await;
                panic!(
                    "run {n} did not end within {limit:?}; its log:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
        };
        let elapsed = started.elapsed();
        let (seen, kill) = match kill_at {
            Some(_) => self.trip.disarm(),
            None => (Vec::new(), None),
        };
        // std would reap it again on wait; it never waits for a dropped Child.
        drop(child);
        Ended {
            code: status,
            kill,
            seen,
            max_rss_kb,
            cpu,
            elapsed,
            stderr_path: err_path,
        }
    }
}

/// The program under test: this build's, or `WDIV_BIN` (scripts/load.sh points it at the
/// optimised build, as Lambda runs).
pub fn binary() -> std::path::PathBuf {
    match std::env::var_os("WDIV_BIN") {
        Some(path) if !path.is_empty() => path.into(),
        _ => crate::world::program(),
    }
}

/// Waits for `pid` and reaps it: its exit code (None when a signal ended it), its peak RSS (KB)
/// and the CPU time it used (user and system).
fn reap(pid: i32) -> (Option<i32>, u64, Duration) {
    // SAFETY: wait4 only writes the status and rusage it is given.
    unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        loop {
            let r = libc::wait4(pid, &mut status, 0, &mut usage);
            if r == pid {
                break;
            }
            let errno = std::io::Error::last_os_error();
            assert_eq!(
                errno.raw_os_error(),
                Some(libc::EINTR),
                "wait4({pid}): {errno}"
            );
        }
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        let cpu = time(usage.ru_utime) + time(usage.ru_stime);
        (code, usage.ru_maxrss as u64, cpu)
    }
}

/// How one child ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit code; None when it was killed.
    pub code: Option<i32>,
    pub kill: Option<Kill>,
    /// Every request it made while armed, in order.
    pub seen: Vec<Seen>,
    pub max_rss_kb: u64,
    /// User and system CPU time.
    pub cpu: Duration,
    /// From spawn to exit.
    pub elapsed: Duration,
    pub stderr_path: std::path::PathBuf,
}

impl Ended {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the child was killed after the fake accepted a request starting with `effect`
    /// (SEND_EMAIL, WEBHOOK) and before the ledger's record of it was written: the one window
    /// where an effect whose service cannot tell a repeat is done again by the next run.
    pub fn killed_in_window_of(&self, effect: &str) -> bool {
        if self.kill.is_none() {
            return false;
        }
        let handled = |pred: &dyn Fn(&str) -> bool| {
            self.seen
                .iter()
                .rposition(|s| s.handled && pred(&s.request))
        };
        let sent = handled(&|r| r.starts_with(effect));
        let recorded = handled(&|r| r.starts_with("PUT ") && r.contains(LEDGER_PATH));
        match (sent, recorded) {
            (Some(sent), Some(recorded)) => sent > recorded,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Whether the tests run against an emulator (`WDIV_TEST_S3_ENDPOINT`) rather than the
/// in-process fake: the harness needs the fake's hook, so it says "skipped" there.
pub fn skipped_on_emulator() -> bool {
    let external = std::env::var("WDIV_TEST_S3_ENDPOINT").is_ok_and(|v| !v.is_empty());
    if external {
        eprintln!("skipped: the harness kills at the in-process fake's requests");
    }
    external
}

/// A small, seedable generator (splitmix64): the harness's only source of chance.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 1..=n.
    pub fn one_to(&mut self, n: usize) -> usize {
        1 + (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A seed from the clock, for when none is given.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    Rng::new(nanos ^ u64::from(std::process::id())).next_u64()
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        _ => default,
    }
}
