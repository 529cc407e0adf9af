//! The scenarios: the real binary against the fakes of crates/test-support (or moto), one test
//! binary whose modules are the files beside this one. Run one module with
//! `cargo test --test scenarios pipeline::`, one test with its full name
//! (`cargo test --test scenarios pipeline::some_name`). docs/testing.md says what each proves.
//!
//! The scenarios share this process: none may change its environment, its current folder or a
//! process-wide client; a child process gets its own environment instead.

mod cases;
mod crash;
mod deploy_template;
mod effects;
mod events;
mod fuzz_equivalents;
mod github_bounds;
mod history;
mod hostile_checks;
mod lambda;
mod load;
mod local_buckets;
mod metrics;
mod overrides;
mod pipeline;
mod replay;
mod settings_hostile;
mod simulate;
mod startup_warning;
mod storage_contract;
mod untrusted;

use serde_json::Value;
use wdiv_test_support::{Run, World};

/// The actions of a run's summary (`actions` of an upload) that are done, by name.
fn done(actions: &Value) -> Vec<&str> {
    let actions = actions.as_array().expect("a list of actions");
    actions
        .iter()
        .filter(|a| a["result"]["result"] == "done")
        .map(|a| a["action"].as_str().unwrap())
        .collect()
}

/// The world's uploads as the events S3 sends for them, made by the program's own
/// `event::object_created`, and runs of the binary for them.
trait S3Events {
    /// The S3 event for `keys` in the temp bucket, as S3 sends it.
    async fn event_for(&self, keys: &[&str]) -> Value;
    /// `run -` for the event S3 sends when `keys` are created in the temp bucket.
    async fn run_for(&self, keys: &[&str]) -> Run;
    /// [`S3Events::run_for`], with the program's peak resident memory in KB (GNU time).
    async fn run_measured(&self, keys: &[&str]) -> (Run, u64);
}

impl S3Events for World {
    async fn event_for(&self, keys: &[&str]) -> Value {
        self.event_with(keys, wdiv_s3_trigger::object_created).await
    }

    async fn run_for(&self, keys: &[&str]) -> Run {
        self.run_event(&self.event_for(keys).await, &[]).await
    }

    async fn run_measured(&self, keys: &[&str]) -> (Run, u64) {
        self.run_measured_event(&self.event_for(keys).await).await
    }
}
