//! What the effect modules' unit tests share: settings from a few variables, a report, and
//! clients whose buckets are folders in a temporary directory.

use std::sync::Arc;

use super::{Clients, Planning};
use crate::report::UploadReport;
use crate::settings::{load, Context, Settings};
use crate::storage::LocalStorage;
use wdiv_checks::{FileReport, Problem};

pub fn settings(env: &[(&str, &str)]) -> Settings {
    let mut all = vec![
        ("TEMP_BUCKET_NAME".to_owned(), "temp".to_owned()),
        ("FINAL_BUCKET_NAME".to_owned(), "final".to_owned()),
    ];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    load(None, &all, Context::Lambda).unwrap()
}

pub fn report(valid: bool) -> UploadReport {
    let mut file = FileReport::new("X01/2024-05-02/t/a.csv");
    file.details.etag = Some("\"e1\"".into());
    if !valid {
        file.problems
            .push(Problem::error(wdiv_checks::Code::IncompleteRow, "broken"));
    }
    UploadReport::example(vec![file])
}

/// What a planner reads, for `report` under `settings`, with the templates' real context.
pub fn planning<'a>(report: &'a UploadReport, settings: &'a Settings) -> Planning<'a> {
    Planning {
        report,
        settings,
        prefix: report.prefix(),
        valid: report.all_valid(),
        content_id: crate::ledger::content_id(report),
        context: crate::plan::template_context(report, settings),
    }
}

/// Clients on folder buckets `temp` and `final`; keep the directory while they are used.
pub fn clients() -> (tempfile::TempDir, Clients) {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    storage.create_bucket("temp").unwrap();
    storage.create_bucket("final").unwrap();
    let mut clients = Clients::new(Arc::new(storage));
    clients.insert(Arc::new(crate::webhook::Webhook::new(
        reqwest::Client::new(),
    )));
    (dir, clients)
}
