//! The plan: what to do about a report, as data. `plan` has no I/O; a dry run prints it; the
//! executor carries it out. Every effect is in the plan, either to do or with the reason it is
//! not done, so a preview names every effect the program has; and every step names the steps it
//! waits for, so the order and the blocking rules are data too.
//!
//! The steps come from the effect modules' planners, in the registry's order
//! ([`crate::effects::EFFECTS`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;

use crate::effects::{Effect, Names, Planning, EFFECTS};
use crate::ledger::content_id;
use crate::report::UploadReport;
use crate::settings::{RunMode, Settings, StorageMode};

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

/// An edge of the plan: this step waits for `step`, and what to say when that one failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wait {
    pub step: String,
    pub because: &'static str,
    /// Whether a failure of `step` stops this one (else it goes ahead, `because` noted).
    pub blocks: bool,
}

/// One effect, whether it is done, and what it waits for.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within the plan; the name the effect is recorded under when done.
    pub id: String,
    pub effect: Arc<dyn Effect>,
    pub disposition: Disposition,
    pub waits_for: Vec<Wait>,
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("action", self.effect.verb())?;
        if let serde_json::Value::Object(fields) = self.effect.data() {
            for (k, v) in fields {
                map.serialize_entry(&k, &v)?;
            }
        }
        match &self.disposition {
            Disposition::Do => map.serialize_entry("disposition", "do")?,
            Disposition::Preview(why) => {
                map.serialize_entry("disposition", "preview")?;
                map.serialize_entry("reason", why)?;
            }
            Disposition::Skip(why) => {
                map.serialize_entry("disposition", "skip")?;
                map.serialize_entry("reason", why)?;
            }
        }
        let waits: Vec<&str> = self.waits_for.iter().map(|w| w.step.as_str()).collect();
        map.serialize_entry("waits_for", &waits)?;
        map.end()
    }
}

/// The ordered steps for one upload.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub prefix: String,
    pub valid: bool,
    pub steps: Vec<Step>,
    /// How to name objects in previews: `s3://bucket/key`, or a folder for local runs.
    #[serde(skip)]
    pub names: Names,
}

/// What to do about `report`, given the settings (whose run mode says what is only previewed).
pub fn plan(report: &UploadReport, settings: &Settings) -> Plan {
    let planning = Planning {
        report,
        settings,
        prefix: report.prefix(),
        valid: report.all_valid(),
        content_id: content_id(report),
        context: template_context(report, settings),
    };
    let mut steps: Vec<Step> = Vec::new();
    for effect in EFFECTS {
        for planned in (effect.plan)(&planning) {
            let effect = planned.effect;
            let disposition = match (planned.skip, settings.mode) {
                (Some(reason), _) => Disposition::Skip(reason),
                (None, RunMode::DryRun) => Disposition::Preview("dry run".into()),
                (None, RunMode::PreviewExternal) if effect.external() => {
                    Disposition::Preview("local run; set DRY_RUN=false to perform it".into())
                }
                (None, _) => Disposition::Do,
            };
            // Every earlier step of the kinds it waits for: planners run in order, so the graph
            // has no cycle and a step's dependencies always come before it.
            let blocking = planned
                .after
                .iter()
                .map(|(kind, because)| (kind, because, true));
            let soft =
                (planned.after_even_if_failed.iter()).map(|(kind, note)| (kind, note, false));
            let waits_for = blocking
                .chain(soft)
                .flat_map(|(kind, because, blocks)| {
                    steps
                        .iter()
                        .filter(move |s| s.effect.kind() == *kind)
                        .map(move |s| Wait {
                            step: s.id.clone(),
                            because,
                            blocks,
                        })
                })
                .collect();
            steps.push(Step {
                id: effect.id(),
                effect,
                disposition,
                waits_for,
            });
        }
    }
    Plan {
        prefix: planning.prefix,
        valid: planning.valid,
        steps,
        names: Names {
            local_root: match &settings.storage {
                StorageMode::Local(root) => Some(root.clone()),
                StorageMode::S3 => None,
            },
        },
    }
}

/// What the issue and email templates are rendered with.
pub(crate) fn template_context(report: &UploadReport, settings: &Settings) -> serde_json::Value {
    let files: Vec<&str> = report.file_set.iter().map(|f| f.key.as_str()).collect();
    json!({
        "gss": report.gss,
        "council_name": report.council_name,
        "election_date": report.election_date,
        "timestamp": report.timestamp,
        "prefix": report.prefix(),
        "ems": report.ems(),
        "files": files,
        "test_instance": settings.is_test_instance(),
        "environment": settings.server_environment,
        "failing": report.file_set.iter().filter(|f| !f.csv_valid()).map(|f| json!({
            "key": f.key,
            "ems": f.ems,
            "rows": f.csv_rows,
            "errors": f.errors().map(|p| p.message.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warn_percent": settings.row_change_warn_percent,
        "history": report.extra.history.as_ref().map(|h| json!({
            "earlier": h.earlier,
            "earlier_date": h.earlier_date,
            "warnings": h.warnings().map(|(key, message)| json!({"key": key, "message": message}))
                .collect::<Vec<_>>(),
        })),
        "override": report.extra.staff_override,
        "overridden": report.file_set.iter().map(|f| json!({
            "key": f.key,
            "errors": f.errors().filter(|p| p.overridden).map(|p| p.message.clone())
                .collect::<Vec<_>>(),
        })).filter(|f| f["errors"].as_array().is_some_and(|e| !e.is_empty()))
            .collect::<Vec<_>>(),
    })
}

impl Plan {
    /// What a step acts on, as a person reads it, on one line with hidden characters escaped (it
    /// goes to terminals and logs). Never holds a secret.
    pub fn target(&self, step: &Step) -> String {
        wdiv_checks::text::escape_control(&step.effect.target(&self.names))
    }

    /// Each step's index by id.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect()
    }
}

/// The preview: one line per step with its target, like a deploy tool's dry run, and the steps
/// it waits for.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.valid { "passed" } else { "failed" };
        writeln!(
            f,
            "Plan for {} (checks {verdict}), {} actions:",
            self.prefix,
            self.steps.len()
        )?;
        let index = self.index();
        for (n, step) in self.steps.iter().enumerate() {
            let (mark, note) = match &step.disposition {
                Disposition::Do => ("+", String::new()),
                Disposition::Preview(why) => ("~", format!("  [would do: {why}]")),
                Disposition::Skip(why) => ("-", format!("  [skip: {why}]")),
            };
            let waits = match step.waits_for.is_empty() {
                true => String::new(),
                false => {
                    let on: Vec<String> = step
                        .waits_for
                        .iter()
                        .map(|w| format!("{}", index[w.step.as_str()] + 1))
                        .collect();
                    format!("  (after {})", on.join(", "))
                }
            };
            writeln!(
                f,
                "  {:>2}. {mark} {:<13} {}{note}{waits}",
                n + 1,
                step.effect.verb(),
                self.target(step)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::cdn::MAX_CDN_PATHS;
    use crate::effects::tests_support::report;
    use crate::settings::{load, Context};

    fn settings(env: &[(&str, &str)], dry_run: bool) -> Settings {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut settings = load(None, &env, Context::Lambda).unwrap();
        if dry_run {
            settings.dry_run_requested();
        }
        settings
    }

    const S3: &[(&str, &str)] = &[
        ("TEMP_BUCKET_NAME", "temp-b"),
        ("FINAL_BUCKET_NAME", "final-b"),
        ("WDIV_WEBHOOK_URL", "https://wdiv.example/api/upload"),
        ("WDIV_API_KEY", "tok-secret"),
    ];

    fn step<'p>(plan: &'p Plan, verb: &str) -> &'p Step {
        plan.steps
            .iter()
            .find(|s| s.effect.verb() == verb)
            .unwrap_or_else(|| panic!("no {verb} step"))
    }

    /// Edges name step kinds by the effect modules' constants, so a misspelt kind does not
    /// compile; and each names a kind some earlier planner plans, so no edge is dropped.
    #[test]
    fn every_edge_names_a_kind_planned_before_it() {
        let (settings, report) = (settings(S3, false), report(true));
        let planning = crate::effects::tests_support::planning(&report, &settings);
        let mut earlier = Vec::new();
        for effect in EFFECTS {
            for planned in (effect.plan)(&planning) {
                for (kind, _) in planned.after.iter().chain(&planned.after_even_if_failed) {
                    assert!(
                        earlier.contains(kind),
                        "{kind:?} is not planned before {planned:?}"
                    );
                }
                earlier.push(planned.effect.kind());
            }
        }
    }

    #[test]
    fn a_valid_upload_copies_writes_the_report_and_posts() {
        let plan = plan(&report(true), &settings(S3, false));
        let verbs: Vec<_> = plan.steps.iter().map(|s| s.effect.verb()).collect();
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
            .map(|s| s.effect.verb())
            .collect();
        assert_eq!(done, ["copy", "write report", "post webhook"]);
        let text = plan.to_string();
        assert!(text
            .contains("s3://temp-b/X01/2024-05-02/t/a.csv -> s3://final-b/X01/2024-05-02/t/a.csv"));
        assert!(text.contains("s3://final-b/X01/2024-05-02/t/report.json"));
        assert!(!text.contains("tok-secret"));
        assert!(!serde_json::to_string(&plan).unwrap().contains("tok-secret"));
    }

    #[test]
    fn the_plan_says_which_step_waits_for_which() {
        let plan = plan(&report(true), &settings(S3, false));
        let waits = |verb: &str| -> Vec<String> {
            step(&plan, verb)
                .waits_for
                .iter()
                .map(|w| w.step.clone())
                .collect()
        };
        assert_eq!(
            waits("write report"),
            ["copy:X01/2024-05-02/t/a.csv", "open-issue"]
        );
        assert_eq!(waits("invalidate"), ["write-report"]);
        assert!(waits("open issue").is_empty());
        assert!(waits("email success").is_empty());
        // The webhook carries the URL: it waits for the issue step, without being
        // blocked by its failure.
        assert_eq!(waits("post webhook"), ["open-issue"]);
        let webhook = step(&plan, "post webhook");
        assert!(!webhook.waits_for[0].blocks);
        // A dry run prints the edges.
        let text = super::plan(&report(true), &settings(S3, true)).to_string();
        assert!(text.contains("write report  s3://final-b/X01/2024-05-02/t/report.json  [would do: dry run]  (after 2, 1)"), "{text}");
        assert!(text.contains("(after 3)"), "{text}");
    }

    #[test]
    fn an_invalid_upload_only_posts() {
        let plan = plan(&report(false), &settings(S3, false));
        assert_eq!(
            step(&plan, "copy").disposition,
            Disposition::Skip("the upload failed its checks".into())
        );
        assert_eq!(
            step(&plan, "email failure").disposition,
            Disposition::Skip("ERROR_REPORT_EMAIL not set".into())
        );
        assert_eq!(step(&plan, "post webhook").disposition, Disposition::Do);
    }

    #[test]
    fn each_missing_setting_is_a_named_skip_and_dry_run_previews_the_rest() {
        let plan = plan(
            &report(true),
            &settings(
                &[
                    ("TEMP_BUCKET_NAME", "temp-b"),
                    ("FINAL_BUCKET_NAME", "final-b"),
                ],
                true,
            ),
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
        let plan2 = super::plan(&report(true), &settings(&with_url, false));
        assert!(plan2.to_string().contains("[skip: WDIV_API_KEY not set]"));
    }

    #[test]
    fn the_invalidation_covers_the_prefix_or_each_file_by_setting() {
        let mut env = S3.to_vec();
        env.push(("CLOUDFRONT_DISTRIBUTION_ID", "E2DIST"));
        let data = |plan: &Plan| step(plan, "invalidate").effect.data();
        let paths = |plan: &Plan| data(plan)["paths"].clone();
        let mut report = report(true);
        report.file_set[0].key = "X01/2024-05-02/t/Polling Stations.csv".into();
        let by_prefix = plan(&report, &settings(&env, false));
        assert_eq!(
            paths(&by_prefix),
            serde_json::json!(["/X01/2024-05-02/t/*"])
        );
        env.push(("CLOUDFRONT_PATHS", "files"));
        let by_file = plan(&report, &settings(&env, false));
        assert_eq!(
            paths(&by_file),
            serde_json::json!([
                "/X01/2024-05-02/t/Polling%20Stations.csv",
                "/X01/2024-05-02/t/report.json"
            ])
        );
        // Past the cap, the one wildcard stands for every file.
        let mut many = report.clone();
        many.file_set = (0..MAX_CDN_PATHS)
            .map(|i| {
                let mut f = report.file_set[0].clone();
                f.key = format!("X01/2024-05-02/t/f{i}.csv");
                f
            })
            .collect();
        assert_eq!(
            paths(&plan(&many, &settings(&env, false))),
            serde_json::json!(["/X01/2024-05-02/t/*"])
        );
        many.file_set.truncate(MAX_CDN_PATHS - 1);
        assert_eq!(
            paths(&plan(&many, &settings(&env, false)))
                .as_array()
                .unwrap()
                .len(),
            MAX_CDN_PATHS
        );
        // The same content gives the same caller reference: a retry cannot invalidate twice.
        let reference = |plan: &Plan| data(plan)["caller_reference"].clone();
        assert_eq!(reference(&by_prefix), reference(&by_file));
        report.file_set[0].details.etag = Some("\"other\"".into());
        assert_ne!(
            reference(&plan(&report, &settings(&env, false))),
            reference(&by_file)
        );
    }
}
