//! The plan: what to do about a report, as data. `plan` has no I/O; a dry run prints it; the
//! executor carries it out. Every action is in the plan, either to do or with the reason it is not
//! done, so a preview names every effect the program has.

use std::fmt;

use serde::Serialize;
use serde_json::json;

use crate::cdn::cdn_path;
use crate::event::REPORT_FILE;
use crate::github::IMPORT_LABEL;
use crate::ledger::content_id;
use crate::report::UploadReport;
use crate::settings::{CdnPaths, Settings, StorageMode};
use crate::templates::{bounded_email, render, render_line};

/// The labels of an import issue, which staff filter on.
pub const ISSUE_LABELS: [&str; 2] = [IMPORT_LABEL, "ready"];
/// The most paths one invalidation lists with `CLOUDFRONT_PATHS=files`; beyond, the prefix's
/// wildcard stands for them.
pub const MAX_CDN_PATHS: usize = 15;
/// The problem code of the upload rule that waits for a partner file (no email for it).
const MISSING_FILES: &str = "missing-files";

/// Which email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// To staff: the upload failed its checks.
    Failure,
    /// A confirmation: the upload passed.
    Success,
}

/// One side effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Open the import issue, or comment on the open one with the same title.
    OpenIssue {
        repo: String,
        title: String,
        labels: Vec<String>,
        body: String,
        comment: String,
        /// Unique to the upload's content: a retried comment finds it and is not repeated.
        marker: String,
    },
    /// Copy a checked file to the final bucket, only if it is still the bytes that were checked.
    CopyFile {
        from_bucket: String,
        to_bucket: String,
        key: String,
        etag: String,
        /// The copy's own `Content-Type`, from the file's extension.
        content_type: String,
    },
    /// Write `report.json` next to the files in the final bucket.
    WriteReport { bucket: String, key: String },
    /// Invalidate the CDN's cache for the upload's paths.
    Invalidate {
        distribution_id: String,
        paths: Vec<String>,
        caller_reference: String,
    },
    SendEmail {
        kind: EmailKind,
        from: String,
        to: String,
        subject: String,
        body: String,
    },
    /// POST the report to WDIV.
    PostWebhook { url: String },
}

impl Action {
    /// A short name, for previews and logs.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::OpenIssue { .. } => "open issue",
            Action::CopyFile { .. } => "copy",
            Action::WriteReport { .. } => "write report",
            Action::Invalidate { .. } => "invalidate",
            Action::SendEmail {
                kind: EmailKind::Failure,
                ..
            } => "email failure",
            Action::SendEmail {
                kind: EmailKind::Success,
                ..
            } => "email success",
            Action::PostWebhook { .. } => "post webhook",
        }
    }

    /// The name under which the effect is recorded as done (see [`crate::ledger`]).
    pub fn effect_id(&self) -> String {
        match self {
            Action::CopyFile { key, .. } => format!("copy:{key}"),
            other => other.verb().replace(' ', "-"),
        }
    }

    /// Whether the action leaves our own buckets (a preview on local runs).
    fn external(&self) -> bool {
        !matches!(self, Action::CopyFile { .. } | Action::WriteReport { .. })
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

/// Whether staff should hear of a failure: not when the only errors are a missing partner file,
/// which is on its way.
pub fn email_due(report: &UploadReport) -> bool {
    report
        .file_set
        .iter()
        .flat_map(|f| f.errors())
        .any(|p| p.code != MISSING_FILES)
}

/// The reason to skip an action when the setting `name` it needs is absent.
fn unless_set<T>(value: &Option<T>, name: &str) -> Option<String> {
    value.is_none().then(|| format!("{name} not set"))
}

/// What to do about `report`, given the settings. `dry_run` previews everything.
pub fn plan(report: &UploadReport, settings: &Settings, dry_run: bool) -> Plan {
    let prefix = report.prefix();
    let valid = report.all_valid();
    let content = content_id(report);
    let local_preview = settings.previews_external_effects();
    let mut steps = Vec::new();
    let mut add = |action: Action, skip: Option<String>| {
        let disposition = if let Some(reason) = skip {
            Disposition::Skip(reason)
        } else if dry_run {
            Disposition::Preview("dry run".into())
        } else if local_preview && action.external() {
            Disposition::Preview("local run; set DRY_RUN=false to perform it".into())
        } else {
            Disposition::Do
        };
        steps.push(Step {
            action,
            disposition,
        });
    };
    let invalid = (!valid).then(|| "the upload failed its checks".to_owned());
    let files: Vec<&str> = report.file_set.iter().map(|f| f.key.as_str()).collect();
    let test_instance = settings.is_test_instance();
    let context = json!({
        "gss": report.gss,
        "council_name": report.council_name,
        "election_date": report.election_date,
        "timestamp": report.timestamp,
        "prefix": prefix,
        "ems": report.ems(),
        "files": files,
        "test_instance": test_instance,
        "environment": settings.server_environment,
        "failing": report.file_set.iter().filter(|f| !f.csv_valid()).map(|f| json!({
            "key": f.key,
            "ems": f.ems,
            "rows": f.csv_rows,
            "errors": f.errors().map(|p| p.message.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });

    // The issue first: its URL goes into report.json and the webhook.
    let title = format!(
        "{}Import {}-{} for {}",
        if test_instance { "TEST " } else { "" },
        report.gss,
        crate::text::clean_name(&report.council_name, crate::councils::MAX_NAME_CHARS),
        report.election_date
    );
    let skip = invalid
        .clone()
        .or_else(|| unless_set(&settings.github_repo, "GITHUB_REPO"))
        .or_else(|| unless_set(&settings.github_api_key, "GITHUB_API_KEY"));
    add(
        Action::OpenIssue {
            repo: settings.github_repo.clone().unwrap_or_default(),
            title,
            labels: ISSUE_LABELS.iter().map(|l| l.to_string()).collect(),
            body: render("issue_body.md", &context),
            comment: render("issue_comment.md", &context),
            marker: format!("wdiv-s3-trigger:{content}"),
        },
        skip,
    );

    for file in &report.file_set {
        add(
            Action::CopyFile {
                from_bucket: settings.temp_bucket.clone(),
                to_bucket: settings.final_bucket.clone(),
                key: file.key.clone(),
                etag: file.details.etag.clone().unwrap_or_default(),
                content_type: crate::upload::served_type(&file.key)
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
            },
            invalid.clone(),
        );
    }
    let report_key = format!("{prefix}/{REPORT_FILE}");
    add(
        Action::WriteReport {
            bucket: settings.final_bucket.clone(),
            key: report_key.clone(),
        },
        invalid.clone(),
    );

    let wildcard = || vec![cdn_path(&format!("{prefix}/*"))];
    let paths = match settings.cloudfront_paths {
        CdnPaths::Prefix => wildcard(),
        // Each path is billed: past a few, the one wildcard is cheaper and as good.
        CdnPaths::Files if files.len() + 1 > MAX_CDN_PATHS => wildcard(),
        CdnPaths::Files => files
            .iter()
            .copied()
            .chain([report_key.as_str()])
            .map(cdn_path)
            .collect(),
    };
    let skip = invalid.clone().or_else(|| {
        unless_set(
            &settings.cloudfront_distribution_id,
            "CLOUDFRONT_DISTRIBUTION_ID",
        )
    });
    add(
        Action::Invalidate {
            distribution_id: settings
                .cloudfront_distribution_id
                .clone()
                .unwrap_or_default(),
            paths,
            caller_reference: format!("wdiv-s3-trigger-{content}"),
        },
        skip,
    );

    let (kind, to, skip) = if valid {
        (
            EmailKind::Success,
            settings.success_report_email.clone(),
            settings
                .success_report_email
                .is_none()
                .then(|| "no confirmation: SUCCESS_REPORT_EMAIL not set".to_owned()),
        )
    } else if !email_due(report) {
        (
            EmailKind::Failure,
            settings.error_report_email.clone(),
            Some("no email for a lone file whose partner is on its way".to_owned()),
        )
    } else {
        (
            EmailKind::Failure,
            settings.error_report_email.clone(),
            settings
                .error_report_email
                .is_none()
                .then(|| "ERROR_REPORT_EMAIL not set".to_owned()),
        )
    };
    let (subject, body) = match kind {
        EmailKind::Failure => (
            render_line("email_failure_subject.txt", &context),
            bounded_email(render("email_failure_body.txt", &context)),
        ),
        EmailKind::Success => (
            render_line("email_success_subject.txt", &context),
            bounded_email(render("email_success_body.txt", &context)),
        ),
    };
    add(
        Action::SendEmail {
            kind,
            from: settings.email_from.clone(),
            to: to.unwrap_or_default(),
            subject,
            body,
        },
        skip,
    );

    let skip = unless_set(&settings.wdiv_webhook_url, "WDIV_WEBHOOK_URL")
        .or_else(|| unless_set(&settings.wdiv_api_key, "WDIV_API_KEY"));
    let url = settings.wdiv_webhook_url.clone().unwrap_or_default();
    add(Action::PostWebhook { url }, skip);

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

    /// What the action acts on, as a person reads it, on one line with hidden characters
    /// escaped (it goes to terminals and logs). Never holds a secret: tokens are only ever in
    /// headers, shown masked.
    pub fn target(&self, action: &Action) -> String {
        crate::text::escape_control(&self.describe(action))
    }

    fn describe(&self, action: &Action) -> String {
        let or_none = |s: &str| {
            if s.is_empty() {
                "(not set)".to_owned()
            } else {
                s.to_owned()
            }
        };
        match action {
            Action::OpenIssue {
                repo,
                title,
                labels,
                ..
            } => format!("{}: {title:?} [{}]", or_none(repo), labels.join(", ")),
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
            Action::Invalidate {
                distribution_id,
                paths,
                ..
            } => format!(
                "distribution {}: {}",
                or_none(distribution_id),
                paths.join(" ")
            ),
            Action::SendEmail { to, subject, .. } => {
                format!("to {}: {subject:?}", or_none(to))
            }
            Action::PostWebhook { url } if url.is_empty() => "(no URL)".into(),
            Action::PostWebhook { url } => {
                format!(
                    "POST {} (Authorization: Token ****)",
                    crate::http::redact_url(url)
                )
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
        assert_eq!(
            verbs,
            [
                "open issue",
                "copy",
                "write report",
                "invalidate",
                "email success",
                "post webhook"
            ]
        );
        let done: Vec<_> = plan
            .steps
            .iter()
            .filter(|s| s.disposition == Disposition::Do)
            .map(|s| s.action.verb())
            .collect();
        assert_eq!(done, ["copy", "write report", "post webhook"]);
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
        let disposition = |verb: &str| {
            plan.steps
                .iter()
                .find(|s| s.action.verb() == verb)
                .unwrap()
                .disposition
                .clone()
        };
        assert_eq!(
            disposition("copy"),
            Disposition::Skip("the upload failed its checks".into())
        );
        assert_eq!(
            disposition("email failure"),
            Disposition::Skip("ERROR_REPORT_EMAIL not set".into())
        );
        assert_eq!(disposition("post webhook"), Disposition::Do);
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
            plan.steps.last().unwrap().disposition,
            Disposition::Skip("WDIV_WEBHOOK_URL not set".into())
        );
        assert_eq!(
            plan.steps[1].disposition,
            Disposition::Preview("dry run".into())
        );
        assert!(plan.to_string().contains("[skip: GITHUB_REPO not set]"));
        let mut with_url = S3.to_vec();
        with_url.retain(|(k, _)| *k != "WDIV_API_KEY");
        let plan2 = super::plan(&report(true), &settings(&with_url), false);
        assert!(plan2.to_string().contains("[skip: WDIV_API_KEY not set]"));
    }

    #[test]
    fn the_invalidation_covers_the_prefix_or_each_file_by_setting() {
        let mut env = S3.to_vec();
        env.push(("CLOUDFRONT_DISTRIBUTION_ID", "E2DIST"));
        let paths = |plan: &Plan| {
            plan.steps
                .iter()
                .find_map(|s| match &s.action {
                    Action::Invalidate { paths, .. } => Some(paths.clone()),
                    _ => None,
                })
                .expect("an invalidation step")
        };
        let mut report = report(true);
        report.file_set[0].key = "X01/2024-05-02/t1/Polling Stations.csv".into();
        let by_prefix = plan(&report, &settings(&env), false);
        assert_eq!(paths(&by_prefix), ["/X01/2024-05-02/t1/*"]);
        env.push(("CLOUDFRONT_PATHS", "files"));
        let by_file = plan(&report, &settings(&env), false);
        assert_eq!(
            paths(&by_file),
            [
                "/X01/2024-05-02/t1/Polling%20Stations.csv",
                "/X01/2024-05-02/t1/report.json"
            ]
        );
        // Past the cap, the one wildcard stands for every file.
        let mut many = report.clone();
        many.file_set = (0..MAX_CDN_PATHS)
            .map(|i| {
                let mut f = report.file_set[0].clone();
                f.key = format!("X01/2024-05-02/t1/f{i}.csv");
                f
            })
            .collect();
        assert_eq!(
            paths(&plan(&many, &settings(&env), false)),
            ["/X01/2024-05-02/t1/*"]
        );
        many.file_set.truncate(MAX_CDN_PATHS - 1);
        assert_eq!(
            paths(&plan(&many, &settings(&env), false)).len(),
            MAX_CDN_PATHS
        );
        // The same content gives the same caller reference: a retry cannot invalidate twice.
        let reference = |plan: &Plan| match &plan.steps[3].action {
            Action::Invalidate {
                caller_reference, ..
            } => caller_reference.clone(),
            _ => unreachable!(),
        };
        assert_eq!(reference(&by_prefix), reference(&by_file));
        report.file_set[0].details.etag = Some("\"other\"".into());
        assert_ne!(
            reference(&plan(&report, &settings(&env), false)),
            reference(&by_file)
        );
    }
}
