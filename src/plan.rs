//! The plan: what to do about a report, as data. `plan` has no I/O; a dry run prints it; the
//! executor carries it out. Every action is in the plan, either to do or with the reason it is not
//! done, so a preview names every effect the program has.

use std::fmt;

use serde::Serialize;

use crate::event::REPORT_FILE;
use crate::report::UploadReport;
use crate::settings::{Settings, StorageMode};

/// One side effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Copy a checked file to the final bucket, only if it is still the bytes that were checked.
    CopyFile {
        from_bucket: String,
        to_bucket: String,
        key: String,
        etag: String,
    },
    /// Write `report.json` next to the files in the final bucket.
    WriteReport { bucket: String, key: String },
    /// POST the report to WDIV.
    PostWebhook { url: String },
}

impl Action {
    /// A short name, for previews and logs.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::CopyFile { .. } => "copy",
            Action::WriteReport { .. } => "write report",
            Action::PostWebhook { .. } => "post webhook",
        }
    }

    /// Whether the action leaves our own buckets (a preview on local runs).
    fn external(&self) -> bool {
        matches!(self, Action::PostWebhook { .. })
    }
}

/// Whether an action will be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "disposition", content = "reason", rename_all = "snake_case")]
pub enum Disposition {
    Do,
    /// Would be done, but this run only previews it (a dry run, or an external effect on a local run).
    Preview(String),
    /// Not done, and why.
    Skip(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    #[serde(flatten)]
    pub disposition: Disposition,
}

/// The ordered actions for one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub prefix: String,
    pub valid: bool,
    pub steps: Vec<Step>,
    /// How to name objects in previews: `s3://bucket/key`, or a folder for local runs.
    #[serde(skip)]
    pub local_root: Option<std::path::PathBuf>,
}

/// What to do about `report`, given the settings. `dry_run` previews everything.
pub fn plan(report: &UploadReport, settings: &Settings, dry_run: bool) -> Plan {
    let prefix = format!(
        "{}/{}/{}",
        report.gss, report.election_date, report.timestamp
    );
    let valid = report.all_valid();
    let mut steps = Vec::new();
    let local_preview = settings.previews_external_effects();
    let decide = |action: &Action, skip: Option<String>| -> Disposition {
        if let Some(reason) = skip {
            Disposition::Skip(reason)
        } else if dry_run {
            Disposition::Preview("dry run".into())
        } else if local_preview && action.external() {
            Disposition::Preview("local run; set DRY_RUN=false to perform it".into())
        } else {
            Disposition::Do
        }
    };
    let invalid = (!valid).then(|| "the upload failed its checks".to_owned());

    for file in &report.file_set {
        let action = Action::CopyFile {
            from_bucket: settings.temp_bucket.clone(),
            to_bucket: settings.final_bucket.clone(),
            key: file.key.clone(),
            etag: file.details.etag.clone().unwrap_or_default(),
        };
        let disposition = decide(&action, invalid.clone());
        steps.push(Step {
            action,
            disposition,
        });
    }
    let action = Action::WriteReport {
        bucket: settings.final_bucket.clone(),
        key: format!("{prefix}/{REPORT_FILE}"),
    };
    let disposition = decide(&action, invalid.clone());
    steps.push(Step {
        action,
        disposition,
    });

    let (url, skip) = match (&settings.wdiv_webhook_url, &settings.wdiv_api_key) {
        (None, _) => (String::new(), Some("WDIV_WEBHOOK_URL not set".to_owned())),
        (Some(url), None) => (url.clone(), Some("WDIV_API_KEY not set".to_owned())),
        (Some(url), Some(_)) => (url.clone(), None),
    };
    let action = Action::PostWebhook { url };
    let disposition = decide(&action, skip);
    steps.push(Step {
        action,
        disposition,
    });

    Plan {
        prefix,
        valid,
        steps,
        local_root: match &settings.storage {
            StorageMode::Local(root) => Some(root.clone()),
            StorageMode::S3 => None,
        },
    }
}

impl Plan {
    fn object(&self, bucket: &str, key: &str) -> String {
        match &self.local_root {
            Some(root) => root.join(bucket).join(key).display().to_string(),
            None => format!("s3://{bucket}/{key}"),
        }
    }

    /// What the action acts on, as a person reads it. Never holds a secret: tokens are only
    /// ever in headers, shown masked.
    pub fn target(&self, action: &Action) -> String {
        match action {
            Action::CopyFile {
                from_bucket,
                to_bucket,
                key,
                ..
            } => format!(
                "{} -> {}",
                self.object(from_bucket, key),
                self.object(to_bucket, key)
            ),
            Action::WriteReport { bucket, key } => self.object(bucket, key),
            Action::PostWebhook { url } if url.is_empty() => "(no URL)".into(),
            Action::PostWebhook { url } => {
                format!("POST {url} (Authorization: Token ****)")
            }
        }
    }
}

/// The preview: one line per action with its target, like a deploy tool's dry run.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.valid { "passed" } else { "failed" };
        writeln!(
            f,
            "Plan for {} (checks {verdict}), {} actions:",
            self.prefix,
            self.steps.len()
        )?;
        for step in &self.steps {
            let (mark, note) = match &step.disposition {
                Disposition::Do => ("+", String::new()),
                Disposition::Preview(why) => ("~", format!("  [would do: {why}]")),
                Disposition::Skip(why) => ("-", format!("  [skip: {why}]")),
            };
            writeln!(
                f,
                "  {mark} {:<13} {}{note}",
                step.action.verb(),
                self.target(&step.action)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FileReport, Problem};
    use crate::settings::{load, Context};

    fn settings(env: &[(&str, &str)]) -> Settings {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(None, &env, Context::Lambda).unwrap()
    }

    fn report(valid: bool) -> UploadReport {
        let mut file = FileReport::new("X01/2024-05-02/t1/a.csv");
        file.details.etag = Some("\"e1\"".into());
        if !valid {
            file.problems.push(Problem::error("x", "broken"));
        }
        UploadReport {
            gss: "X01".into(),
            council_name: "Somewhere".into(),
            timestamp: "t1".into(),
            election_date: "2024-05-02".into(),
            github_issue: String::new(),
            file_set: vec![file],
        }
    }

    const S3: &[(&str, &str)] = &[
        ("TEMP_BUCKET_NAME", "temp-b"),
        ("FINAL_BUCKET_NAME", "final-b"),
        ("WDIV_WEBHOOK_URL", "https://wdiv.example/api/upload"),
        ("WDIV_API_KEY", "tok-secret"),
    ];

    #[test]
    fn a_valid_upload_copies_writes_the_report_and_posts() {
        let plan = plan(&report(true), &settings(S3), false);
        let verbs: Vec<_> = plan.steps.iter().map(|s| s.action.verb()).collect();
        assert_eq!(verbs, ["copy", "write report", "post webhook"]);
        assert!(plan.steps.iter().all(|s| s.disposition == Disposition::Do));
        let text = plan.to_string();
        assert!(text.contains(
            "s3://temp-b/X01/2024-05-02/t1/a.csv -> s3://final-b/X01/2024-05-02/t1/a.csv"
        ));
        assert!(text.contains("s3://final-b/X01/2024-05-02/t1/report.json"));
        assert!(!text.contains("tok-secret"));
    }

    #[test]
    fn an_invalid_upload_only_posts() {
        let plan = plan(&report(false), &settings(S3), false);
        assert_eq!(
            plan.steps[0].disposition,
            Disposition::Skip("the upload failed its checks".into())
        );
        assert_eq!(plan.steps[2].disposition, Disposition::Do);
    }

    #[test]
    fn each_missing_setting_is_a_named_skip_and_dry_run_previews_the_rest() {
        let plan = plan(
            &report(true),
            &settings(&[
                ("TEMP_BUCKET_NAME", "temp-b"),
                ("FINAL_BUCKET_NAME", "final-b"),
            ]),
            true,
        );
        assert_eq!(
            plan.steps[2].disposition,
            Disposition::Skip("WDIV_WEBHOOK_URL not set".into())
        );
        assert_eq!(
            plan.steps[0].disposition,
            Disposition::Preview("dry run".into())
        );
        let mut with_url = S3.to_vec();
        with_url.retain(|(k, _)| *k != "WDIV_API_KEY");
        let plan2 = super::plan(&report(true), &settings(&with_url), false);
        assert!(plan2.to_string().contains("[skip: WDIV_API_KEY not set]"));
    }
}
