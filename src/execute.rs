//! The executor: the only place side effects happen. It walks a plan's steps in order and, for
//! each, reads the graph: a step whose dependency failed is not attempted; a step the upload's
//! [`Ledger`] records as done by an earlier run is not repeated (when its record can be trusted);
//! any other is performed and recorded. It never names a kind of effect: each effect performs
//! itself and takes its own output into the run (the issue URL into the report).

use serde::Serialize;

use crate::effects::{Clients, Effect, EffectError, FailureKind, Run};
use crate::ledger::Ledger;
use crate::plan::{Disposition, Plan};
use crate::report::UploadReport;

/// Why a step failed: its kind, what it acted on, and the cause, kept typed until shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub target: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum StepResult {
    Done(String),
    /// An earlier run did it (redelivered event, retry, concurrent run): not repeated.
    AlreadyDone(String),
    Previewed(String),
    Skipped(String),
    /// Not attempted because a step it waits for failed (or the effects record could not be
    /// written).
    NotAttempted(String),
    Failed(Failure),
}

impl StepResult {
    pub fn failed(&self) -> bool {
        matches!(self, StepResult::Failed(_) | StepResult::NotAttempted(_))
    }

    /// Why it failed, when it did.
    pub fn why_failed(&self) -> Option<String> {
        match self {
            StepResult::Failed(failure) => Some(failure.message.clone()),
            StepResult::NotAttempted(why) => Some(why.clone()),
            _ => None,
        }
    }
}

/// When a run must be done: its steps start only before it, and a step still going at it is
/// stopped (a transient failure: Lambda's retry, or the next run, does what is left). In Lambda
/// mode it is the invocation's own deadline less a margin; elsewhere `RUN_DEADLINE_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: std::time::Duration) -> Deadline {
        Deadline(tokio::time::Instant::now() + budget)
    }

    /// A Lambda invocation's deadline (milliseconds since the epoch, as the Runtime API gives
    /// it), less `margin` — but at most a tenth of the time left, so that a function with a
    /// short timeout (an emulator's default of a few seconds) still runs — for the run to
    /// record and report what it did. A deadline already past (a Runtime API that sends none)
    /// gives `fallback` from now.
    pub fn lambda(
        deadline_ms: u64,
        margin: std::time::Duration,
        fallback: std::time::Duration,
    ) -> Deadline {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        if left.is_zero() {
            tracing::warn!(
                deadline_ms,
                "the invocation's deadline has passed already; using {fallback:?} from now"
            );
            return Deadline::after(fallback);
        }
        Deadline::after(left - margin.min(left / 10))
    }

    /// The time left, zero once it has passed.
    pub fn remaining(&self) -> std::time::Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

/// Carries out `plan` for `report`; returns one result per step, in order. With a ledger, what
/// is done is recorded as it is done, and what an earlier run did is skipped. No step starts
/// after `deadline`, and one still going at it is stopped.
pub async fn execute(
    plan: &Plan,
    report: &UploadReport,
    clients: &Clients,
    mut ledger: Option<&mut Ledger<'_>>,
    deadline: Deadline,
) -> Vec<StepResult> {
    let index = plan.index();
    let mut run = Run {
        clients,
        report: report.clone(),
    };
    let mut results: Vec<StepResult> = Vec::with_capacity(plan.steps.len());
    // Set when the effects record cannot be written: nothing more is done, so that nothing is
    // done twice.
    let mut stopped: Option<String> = None;
    for step in &plan.steps {
        let effect = step.effect.as_ref();
        let verb = effect.verb();
        let target = plan.target(step);
        let blocked = step
            .waits_for
            .iter()
            .find(|w| w.blocks && results[index[w.step.as_str()]].failed())
            .map(|w| w.because.to_owned());
        // What a step that goes ahead without a failed dependency says of it.
        let without: Vec<&str> = step
            .waits_for
            .iter()
            .filter(|w| !w.blocks && results[index[w.step.as_str()]].failed())
            .map(|w| w.because)
            .collect();
        let late = deadline.passed().then(|| {
            "not attempted: the run's deadline passed before it could start; a retry does it"
                .to_owned()
        });
        let result = match &step.disposition {
            Disposition::Skip(why) => StepResult::Skipped(why.clone()),
            Disposition::Preview(why) => StepResult::Previewed(why.clone()),
            Disposition::Do => {
                if let Some(why) = stopped.clone().or(blocked).or(late) {
                    StepResult::NotAttempted(why)
                } else if let Some(done) = ledger
                    .as_deref()
                    .and_then(|l| l.done(&step.id))
                    .map(|d| d.output.clone())
                    .filter(|output| effect.adopt(output, &mut run))
                {
                    tracing::info!(action = verb, target, "done by an earlier run");
                    StepResult::AlreadyDone(done)
                } else {
                    let performed = perform(effect, &mut run, deadline).await;
                    let performed = performed.map(|output| match without.is_empty() {
                        true => output,
                        false => format!("{output}; {}", without.join("; ")),
                    });
                    match performed {
                        Ok(output) => {
                            tracing::info!(action = verb, target, "{output}");
                            if let Some(ledger) = ledger.as_deref_mut() {
                                if let Err(e) = ledger.mark_done(&step.id, &output).await {
                                    tracing::error!("cannot record {verb}: {e}");
                                    stopped = Some(format!("the effects record failed: {e}"));
                                }
                            }
                            StepResult::Done(output)
                        }
                        Err(e) => failed(e, &plan.prefix, report, verb, target),
                    }
                }
            }
        };
        results.push(result);
    }
    results
}

/// Performs one step, stopped at `deadline`, and takes its output into the run; an output the
/// effect does not trust is a refusal.
async fn perform(
    effect: &dyn Effect,
    run: &mut Run<'_>,
    deadline: Deadline,
) -> Result<String, EffectError> {
    let performing = tokio::time::timeout(deadline.remaining(), effect.perform(run));
    match performing.await.unwrap_or_else(|_| {
        Err(EffectError::new(
            FailureKind::Transient,
            "stopped at the run's deadline before it finished; a retry does it",
        ))
    }) {
        Ok(output) if effect.adopt(&output, run) => Ok(output),
        Ok(output) => Err(EffectError::new(
            FailureKind::Refused,
            format!(
                "the answer cannot be trusted: {}",
                wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(&output, 200))
            ),
        )),
        Err(e) => Err(e),
    }
}

/// A step's failure, logged and sent to Sentry.
fn failed(
    e: EffectError,
    prefix: &str,
    report: &UploadReport,
    verb: &str,
    target: String,
) -> StepResult {
    let failure = Failure {
        kind: e.kind,
        target: target.clone(),
        message: e.to_string(),
    };
    tracing::error!(
        action = verb,
        target,
        kind = ?failure.kind,
        "failed: {}",
        failure.message
    );
    crate::telemetry::effect_failed(prefix, &report.gss, verb, &failure.message);
    StepResult::Failed(failure)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::effects::{Effect, Names, StepKind};
    use crate::plan::{Step, Wait};
    use crate::storage::LocalStorage;

    /// An effect that records its calls and fails on demand, by its id.
    #[derive(Debug)]
    struct Fake {
        id: &'static str,
        calls: Arc<Mutex<Vec<String>>>,
        failing: Arc<Mutex<Vec<&'static str>>>,
        /// Ids whose effect takes 5 s.
        slow: Arc<Mutex<Vec<&'static str>>>,
        /// The output it gives, and the outputs it trusts.
        output: &'static str,
    }

    #[async_trait]
    impl Effect for Fake {
        fn kind(&self) -> StepKind {
            StepKind::new(self.id)
        }
        fn target(&self, _: &Names) -> String {
            format!("target of {}", self.id)
        }
        fn data(&self) -> serde_json::Value {
            serde_json::json!({})
        }
        async fn perform(&self, _: &Run<'_>) -> Result<String, EffectError> {
            self.calls.lock().unwrap().push(self.id.to_owned());
            if self.slow.lock().unwrap().contains(&self.id) {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            if self.failing.lock().unwrap().contains(&self.id) {
                return Err(EffectError::new(
                    FailureKind::Transient,
                    "503 from the fake",
                ));
            }
            Ok(self.output.to_owned())
        }
        fn adopt(&self, output: &str, run: &mut Run<'_>) -> bool {
            let trusted = !output.contains("evil");
            if trusted && self.id == "issue" {
                run.report.github_issue = output.to_owned();
            }
            trusted
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        storage: Arc<LocalStorage>,
        clients: Clients,
        calls: Arc<Mutex<Vec<String>>>,
        failing: Arc<Mutex<Vec<&'static str>>>,
        slow: Arc<Mutex<Vec<&'static str>>>,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(LocalStorage::new(dir.path()));
        storage.create_bucket("temp").unwrap();
        let clients = Clients::new(storage.clone());
        World {
            _dir: dir,
            storage,
            clients,
            calls: Arc::default(),
            failing: Arc::default(),
            slow: Arc::default(),
        }
    }

    fn report() -> UploadReport {
        crate::effects::tests_support::report(true)
    }

    /// issue; copy; report (after copy and issue); cdn (after report); webhook (after nothing).
    fn plan(w: &World) -> Plan {
        let step = |id: &'static str, output: &'static str, after: &[&'static str]| Step {
            id: id.to_owned(),
            effect: Arc::new(Fake {
                id,
                calls: w.calls.clone(),
                failing: w.failing.clone(),
                slow: w.slow.clone(),
                output,
            }),
            disposition: Disposition::Do,
            waits_for: after
                .iter()
                .map(|a| Wait {
                    step: a.to_string(),
                    because: "it waits",
                    blocks: true,
                })
                .collect(),
        };
        Plan {
            prefix: "X01/2024-05-02/t".into(),
            valid: true,
            steps: vec![
                step("issue", "https://github.example/o/r/issues/1", &[]),
                step("copy", "copied", &[]),
                step("report", "written", &["copy", "issue"]),
                step("cdn", "invalidation I1", &["report"]),
                step("webhook", "HTTP 200", &[]),
            ],
            names: Names::default(),
        }
    }

    fn kinds(results: &[StepResult]) -> Vec<&'static str> {
        results
            .iter()
            .map(|r| match r {
                StepResult::Done(_) => "done",
                StepResult::AlreadyDone(_) => "earlier",
                StepResult::Previewed(_) => "previewed",
                StepResult::Skipped(_) => "skipped",
                StepResult::NotAttempted(_) => "blocked",
                StepResult::Failed(_) => "failed",
            })
            .collect()
    }

    const LEASE: Duration = Duration::from_secs(60);

    /// A deadline no test reaches.
    fn later() -> Deadline {
        Deadline::after(Duration::from_secs(60))
    }

    #[test]
    fn a_lambda_deadline_keeps_a_margin_of_at_most_a_tenth() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let margin = Duration::from_secs(10);
        let fallback = Duration::from_secs(110);
        let secs = |d: Deadline| d.remaining().as_secs_f64();
        // 120 s left: 10 s kept back.
        let full = secs(Deadline::lambda(now_ms + 120_000, margin, fallback));
        assert!((109.0..=110.0).contains(&full), "{full}");
        // 3 s left (an emulator's default timeout): 0.3 s kept back, not all of it.
        let short = secs(Deadline::lambda(now_ms + 3_000, margin, fallback));
        assert!((2.5..=2.7).contains(&short), "{short}");
        // A deadline in the past, or none (0): the fallback.
        for past in [0, now_ms - 1_000] {
            let d = secs(Deadline::lambda(past, margin, fallback));
            assert!((109.0..=110.0).contains(&d), "{d}");
        }
    }

    #[tokio::test]
    async fn no_step_starts_after_the_deadline_and_a_step_going_at_it_is_stopped() {
        let w = world();
        let results = execute(
            &plan(&w),
            &report(),
            &w.clients,
            None,
            Deadline::after(Duration::ZERO),
        )
        .await;
        assert_eq!(kinds(&results), ["blocked"; 5]);
        assert!(
            matches!(&results[0], StepResult::NotAttempted(why) if why.contains("deadline passed"))
        );
        assert!(w.calls.lock().unwrap().is_empty());

        w.slow.lock().unwrap().push("copy");
        let started = std::time::Instant::now();
        let results = execute(
            &plan(&w),
            &report(),
            &w.clients,
            None,
            Deadline::after(Duration::from_millis(300)),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // The copy is stopped, transient; what waits for it is blocked; the rest starts no more.
        assert_eq!(
            kinds(&results),
            ["done", "failed", "blocked", "blocked", "blocked"]
        );
        let StepResult::Failed(failure) = &results[1] else {
            unreachable!()
        };
        assert_eq!(failure.kind, FailureKind::Transient);
        assert!(
            failure.message.contains("stopped at the run's deadline"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn a_step_that_waits_without_blocking_goes_ahead_and_says_what_it_lacks() {
        let w = world();
        let mut plan = plan(&w);
        plan.steps[4].waits_for.push(Wait {
            step: "issue".into(),
            because: "posted without the issue's link",
            blocks: false,
        });
        w.failing.lock().unwrap().push("issue");
        let results = execute(&plan, &report(), &w.clients, None, later()).await;
        assert_eq!(
            kinds(&results),
            ["failed", "done", "blocked", "blocked", "done"]
        );
        assert_eq!(
            results[4],
            StepResult::Done("HTTP 200; posted without the issue's link".into())
        );
        // When the issue step succeeds, nothing is added.
        w.failing.lock().unwrap().clear();
        let results = execute(&plan, &report(), &w.clients, None, later()).await;
        assert_eq!(results[4], StepResult::Done("HTTP 200".into()));
    }

    #[tokio::test]
    async fn a_failed_step_blocks_what_waits_for_it_and_nothing_else() {
        let w = world();
        w.failing.lock().unwrap().push("copy");
        let results = execute(&plan(&w), &report(), &w.clients, None, later()).await;
        assert_eq!(
            kinds(&results),
            ["done", "failed", "blocked", "blocked", "done"]
        );
        assert_eq!(results[2], StepResult::NotAttempted("it waits".into()));
        let StepResult::Failed(failure) = &results[1] else {
            unreachable!()
        };
        assert_eq!(failure.kind, FailureKind::Transient);
        assert_eq!(failure.target, "target of copy");
        assert_eq!(*w.calls.lock().unwrap(), ["issue", "copy", "webhook"]);
    }

    #[tokio::test]
    async fn a_retry_does_only_what_is_left_and_finishes_the_graph() {
        let w = world();
        let plan = plan(&w);
        w.failing.lock().unwrap().push("copy");
        let mut ledger = Ledger::acquire(w.storage.as_ref(), "temp", &report(), "a", LEASE, LEASE)
            .await
            .unwrap();
        execute(&plan, &report(), &w.clients, Some(&mut ledger), later()).await;
        ledger.release().await.unwrap();
        w.calls.lock().unwrap().clear();
        w.failing.lock().unwrap().clear();

        let mut ledger = Ledger::acquire(w.storage.as_ref(), "temp", &report(), "b", LEASE, LEASE)
            .await
            .unwrap();
        let results = execute(&plan, &report(), &w.clients, Some(&mut ledger), later()).await;
        assert_eq!(
            kinds(&results),
            ["earlier", "done", "done", "done", "earlier"]
        );
        assert_eq!(*w.calls.lock().unwrap(), ["copy", "report", "cdn"]);
    }

    #[tokio::test]
    async fn an_earlier_output_that_cannot_be_trusted_is_done_again() {
        let w = world();
        let mut ledger = Ledger::acquire(w.storage.as_ref(), "temp", &report(), "a", LEASE, LEASE)
            .await
            .unwrap();
        ledger
            .mark_done("issue", "https://evil.example/phish")
            .await
            .unwrap();
        ledger.mark_done("webhook", "HTTP 200").await.unwrap();
        let results = execute(&plan(&w), &report(), &w.clients, Some(&mut ledger), later()).await;
        assert_eq!(kinds(&results), ["done", "done", "done", "done", "earlier"]);
        assert_eq!(*w.calls.lock().unwrap(), ["issue", "copy", "report", "cdn"]);
        assert_eq!(
            ledger.done("issue").unwrap().output,
            "https://github.example/o/r/issues/1"
        );
    }

    #[tokio::test]
    async fn skipped_and_previewed_steps_are_not_performed() {
        let w = world();
        let mut plan = plan(&w);
        plan.steps[0].disposition = Disposition::Skip("GITHUB_REPO not set".into());
        plan.steps[4].disposition = Disposition::Preview("dry run".into());
        let results = execute(&plan, &report(), &w.clients, None, later()).await;
        // A skipped step is not a failure: what waits for it goes ahead.
        assert_eq!(
            kinds(&results),
            ["skipped", "done", "done", "done", "previewed"]
        );
        assert_eq!(*w.calls.lock().unwrap(), ["copy", "report", "cdn"]);
    }
}
