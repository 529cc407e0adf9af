//! `deploy/template.yaml` against the program: every setting the program reads can be set by the
//! stack, and the stack sets nothing the program ignores; no secret is in the template or an
//! output; and the role grants what each feature needs only when the feature is on.
//!
//! The S3 statements are proved needed, and enough, on moto's server with IAM enforcement
//! (`tests/iam_enforced.rs`). moto matches resource ARNs for S3 only: it authorises SES and
//! CloudFront calls against the resource `*`, so an SES or CloudFront statement scoped to the
//! one identity or distribution would be refused there, and a wrong ARN would not be noticed.
//! Their ARNs and conditions are therefore checked here (and cfn-lint checks their syntax).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wdiv_s3_trigger::{
    load_settings, Settings, SettingsContext as Context, SECRET_NAMES, SETTING_NAMES as NAMES,
};
use wdiv_test_support::template::{
    self, actions, resources, sid, statements, Template, ACCOUNT, REGION,
};

/// Settings the program reads that a deployed function must not be given, and why.
const NOT_FROM_THE_STACK: &[(&str, &str)] = &[
    ("AWS_REGION", "Lambda sets it (a reserved variable)"),
    ("AWS_ENDPOINT_URL", "an emulator's endpoint, for tests"),
    ("LOCAL_BUCKETS_DIR", "folders as buckets, for local runs"),
    (
        "RUN_DEADLINE_SECONDS",
        "the deadline of a run outside Lambda; Lambda mode takes the invocation's own",
    ),
];

/// The SSM names of the installation this replaces, which the defaults must keep.
const ISSUE_SSM_DEFAULTS: &[(&str, &str)] = &[
    ("TempBucketName", "/wdiv_s3_trigger/TEMP_BUCKET_NAME"),
    ("FinalBucketName", "/wdiv_s3_trigger/FINAL_BUCKET_NAME"),
    ("SentryDsnParameter", "/wdiv_s3_trigger/SENTRY_DSN"),
    ("GitHubRepoParameter", "/wdiv_s3_trigger/GITHUB_REPO"),
    ("GitHubApiKeyParameter", "/wdiv_s3_trigger/GITHUB_API_KEY"),
    (
        "ErrorReportEmailParameter",
        "/wdiv_s3_trigger/ERROR_REPORT_EMAIL",
    ),
    (
        "WdivWebhookUrlParameter",
        "/wdiv_s3_trigger/WDIV_WEBHOOK_URL",
    ),
];

fn env_names(t: &Template) -> BTreeSet<String> {
    t.resource("Function")["Properties"]["Environment"]["Variables"]
        .as_object()
        .expect("the function has environment variables")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_function_environment_is_exactly_the_settings_the_program_reads() {
    let t = Template::load();
    let in_template = env_names(&t);
    let excluded: BTreeSet<&str> = NOT_FROM_THE_STACK.iter().map(|(n, _)| *n).collect();
    let expected: BTreeSet<String> = NAMES
        .iter()
        .filter(|n| !excluded.contains(*n))
        .map(|n| (*n).to_owned())
        .collect();
    let missing: Vec<_> = expected.difference(&in_template).collect();
    let ignored: Vec<_> = in_template.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "settings the stack cannot set: {missing:?}"
    );
    assert!(
        ignored.is_empty(),
        "variables the program does not read (or must not get: {NOT_FROM_THE_STACK:?}): {ignored:?}"
    );
    for (name, _) in NOT_FROM_THE_STACK {
        assert!(NAMES.contains(name), "{name} is no longer a setting");
    }
}

/// Every parameter is used; a setting's parameter reaches the environment.
#[test]
fn every_parameter_is_used() {
    let t = Template::load();
    let mut rest = t.doc.clone();
    rest.as_object_mut().unwrap().remove("Parameters");
    rest.as_object_mut().unwrap().remove("Metadata");
    let text = rest.to_string();
    for name in t.parameters().keys() {
        let used =
            text.contains(&format!("\"Ref\":\"{name}\"")) || text.contains(&format!("${{{name}}}"));
        assert!(used, "parameter {name} is used nowhere");
    }
}

#[test]
fn the_defaults_are_the_ssm_names_of_the_installation_it_replaces() {
    let t = Template::load();
    for (param, default) in ISSUE_SSM_DEFAULTS {
        assert_eq!(
            t.parameters()[*param]["Default"],
            *default,
            "{param}'s default"
        );
    }
    // The buckets are resolved when the stack deploys (IAM and the trigger need their names).
    for param in ["TempBucketName", "FinalBucketName"] {
        assert_eq!(
            t.parameters()[param]["Type"],
            "AWS::SSM::Parameter::Value<String>"
        );
    }
    // With every default, the function reads its secrets from those parameters at start-up,
    // and the other settings are resolved from SSM when the stack deploys.
    let env = t.with(&[]).environment();
    assert_eq!(env["GITHUB_API_KEY"], "ssm:/wdiv_s3_trigger/GITHUB_API_KEY");
    assert_eq!(env["SENTRY_DSN"], "ssm:/wdiv_s3_trigger/SENTRY_DSN");
    assert_eq!(
        env["GITHUB_REPO"],
        "{{resolve:ssm:/wdiv_s3_trigger/GITHUB_REPO}}"
    );
    assert_eq!(
        env["ERROR_REPORT_EMAIL"],
        "{{resolve:ssm:/wdiv_s3_trigger/ERROR_REPORT_EMAIL}}"
    );
    assert_eq!(
        env["WDIV_WEBHOOK_URL"],
        "{{resolve:ssm:/wdiv_s3_trigger/WDIV_WEBHOOK_URL}}"
    );
}

#[test]
fn a_secret_is_only_ever_an_ssm_name_and_is_granted_by_that_name_alone() {
    let t = Template::load();
    let r = t.with(&[
        ("GitHubApiKeyParameter", "/team/gh"),
        ("SentryDsnParameter", ""),
        ("WdivApiKeyParameter", "/team/wdiv"),
    ]);
    let env = r.environment();
    assert_eq!(env["GITHUB_API_KEY"], "ssm:/team/gh");
    assert_eq!(
        env["SENTRY_DSN"], "",
        "empty parameter: the setting is unset"
    );
    assert_eq!(env["WDIV_API_KEY"], "ssm:/team/wdiv");
    let policy = r.role_policy();
    let ssm: Vec<_> = statements(&policy)
        .into_iter()
        .filter(|s| actions(s).iter().any(|a| a.starts_with("ssm:")))
        .collect();
    assert_eq!(ssm.len(), 1);
    assert_eq!(actions(&ssm[0]), ["ssm:GetParameter"]);
    assert_eq!(
        resources(&ssm[0]),
        [
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/gh"),
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/wdiv"),
        ]
    );
    // No secret at all: no SSM statement (an empty Resource list is not a valid policy).
    let none = t.with(&[("GitHubApiKeyParameter", ""), ("SentryDsnParameter", "")]);
    assert!(!statements(&none.role_policy())
        .iter()
        .any(|s| actions(s).iter().any(|a| a.starts_with("ssm:"))));

    // The secrets' parameters hold names (a pattern refuses anything else), never values, and
    // no output shows one.
    for name in SECRET_NAMES.iter() {
        let param = secret_parameter(&t, name);
        let pattern = t.parameters()[&param]["AllowedPattern"].as_str().unwrap();
        assert_eq!(pattern, "^$|^(/[A-Za-z0-9_.-]+)+$", "{param}");
        let outputs = t.doc["Outputs"].to_string();
        assert!(!outputs.contains(&param), "an output shows {param}");
    }
}

/// The parameter whose value an environment variable's `ssm:` reference is built from.
fn secret_parameter(t: &Template, env: &str) -> String {
    let v = t.resource("Function")["Properties"]["Environment"]["Variables"][env].to_string();
    let start = v
        .find("ssm:${")
        .unwrap_or_else(|| panic!("{env} is not ssm:${{...}}: {v}"))
        + 6;
    let end = v[start..].find('}').unwrap() + start;
    v[start..end].to_owned()
}

#[test]
fn no_action_is_a_wildcard_and_every_resource_is_named() {
    let t = Template::load();
    // Every feature on, so every statement is there.
    let r = t.with(&[
        ("CloudFrontDistributionId", "E2EXAMPLE"),
        ("SuccessReportEmail", "staff@example.org"),
        ("WdivApiKeyParameter", "/wdiv_s3_trigger/WDIV_API_KEY"),
    ]);
    for s in statements(&r.role_policy()) {
        assert_eq!(s["Effect"], "Allow");
        for a in actions(&s) {
            assert!(!a.contains('*'), "{}: action {a}", sid(&s));
        }
        for res in resources(&s) {
            assert_ne!(res, "*", "{}: resource *", sid(&s));
            assert!(res.starts_with("arn:aws:"), "{}: {res}", sid(&s));
        }
    }
}

fn statement_by_sid(policy: &Value, wanted: &str) -> Option<Value> {
    statements(policy).into_iter().find(|s| sid(s) == wanted)
}

#[test]
fn the_cloudfront_statement_names_the_one_distribution_and_only_when_it_is_set() {
    let t = Template::load();
    let off = t.with(&[]).role_policy();
    assert!(
        statement_by_sid(&off, "InvalidateTheSite").is_none(),
        "no distribution, no CloudFront permission"
    );
    let on = t
        .with(&[("CloudFrontDistributionId", "E2EXAMPLE")])
        .role_policy();
    let s = statement_by_sid(&on, "InvalidateTheSite").expect("the CloudFront statement");
    assert_eq!(actions(&s), ["cloudfront:CreateInvalidation"]);
    // CloudFront is global: no region in its ARNs.
    assert_eq!(
        resources(&s),
        [format!(
            "arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE"
        )]
    );
    assert!(!statements(&on)
        .iter()
        .any(|s| actions(s).iter().any(|a| a.starts_with("cloudfront:"))
            && sid(s) != "InvalidateTheSite"));
}

#[test]
fn the_ses_statement_names_the_sender_and_only_when_an_email_can_be_sent() {
    let t = Template::load();
    // No recipient: no email, no SES permission (EMAIL_FROM alone sends nothing).
    let off = t
        .with(&[
            ("ErrorReportEmailParameter", ""),
            ("SuccessReportEmail", ""),
        ])
        .role_policy();
    assert!(statement_by_sid(&off, "EmailStaff").is_none());

    for (recipients, why) in [
        (
            [
                ("ErrorReportEmailParameter", "/x/ERROR_REPORT_EMAIL"),
                ("SuccessReportEmail", ""),
            ],
            "failure emails",
        ),
        (
            [
                ("ErrorReportEmailParameter", ""),
                ("SuccessReportEmail", "staff@example.org"),
            ],
            "confirmation emails",
        ),
    ] {
        let mut params = recipients.to_vec();
        params.push(("EmailFrom", "pollingstations@mail.example.org"));
        let policy = t.with(&params).role_policy();
        let s = statement_by_sid(&policy, "EmailStaff")
            .unwrap_or_else(|| panic!("the SES statement, for {why}"));
        assert_eq!(actions(&s), ["ses:SendEmail"]);
        // The verified identity is the address, or its domain.
        assert_eq!(
            resources(&s),
            [
                format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/pollingstations@mail.example.org"),
                format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/mail.example.org"),
            ]
        );
    }
}

#[test]
fn the_s3_statements_name_the_two_buckets_and_the_prefixes_used() {
    let t = Template::load();
    let r = t.with(&[("TempBucketName", "temp-b"), ("FinalBucketName", "final-b")]);
    let policy = r.role_policy();
    let s3: Vec<(String, Vec<String>, Vec<String>)> = statements(&policy)
        .iter()
        .filter(|s| actions(s).iter().any(|a| a.starts_with("s3:")))
        .map(|s| (sid(s).to_owned(), actions(s), resources(s)))
        .collect();
    let expect = |sid: &str, a: &[&str], r: &[&str]| {
        (
            sid.to_owned(),
            a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        s3,
        [
            expect("ListUploads", &["s3:ListBucket"], &["arn:aws:s3:::temp-b"]),
            expect(
                "ReadUploads",
                &["s3:GetObject"],
                &["arn:aws:s3:::temp-b/*/*/*/*"]
            ),
            expect(
                "KeepEffectsRecords",
                &["s3:GetObject", "s3:PutObject"],
                &[&format!(
                    "arn:aws:s3:::temp-b/{}*",
                    wdiv_s3_trigger::INTERNAL_PREFIX
                )]
            ),
            expect(
                "ListFinalBucket",
                &["s3:ListBucket"],
                &["arn:aws:s3:::final-b"]
            ),
            expect(
                "PublishToFinalBucket",
                &["s3:GetObject", "s3:PutObject"],
                &["arn:aws:s3:::final-b/*"]
            ),
        ]
    );
}

#[test]
fn the_function_is_sized_and_wired_as_documented() {
    let t = Template::load();
    let f = &t.resource("Function");
    assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
    let p = &f["Properties"];
    assert_eq!(p["Runtime"], "provided.al2023");
    assert_eq!(p["Handler"], "bootstrap");
    assert_eq!(t.parameters()["Architecture"]["Default"], "arm64");
    assert_eq!(t.parameters()["MemorySize"]["Default"], 128);
    let timeout = p["Timeout"].as_u64().expect("a fixed timeout");
    // A crashed run's lease must outlast the invocation that holds it.
    let lease: u64 = t.parameters()["LeaseSeconds"]["Default"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lease > timeout, "LEASE_SECONDS {lease} ≤ timeout {timeout}");
    // The duration alarm fires at 80% of the timeout.
    let threshold = t.resource("DurationNearTimeoutAlarm")["Properties"]["Threshold"]
        .as_u64()
        .unwrap();
    assert_eq!(threshold, timeout * 1000 * 8 / 10);
    // Failed events are kept 14 days.
    assert_eq!(
        t.resource("FailedEvents")["Properties"]["MessageRetentionPeriod"],
        14 * 24 * 3600
    );
    let on_failure = &p["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"], "SQS");
    // Exactly one trigger per case: a notification on a bucket the stack creates, or an
    // EventBridge rule on an existing one.
    for (create, bucket, rule) in [("true", true, false), ("false", false, true)] {
        let r = t.with(&[("CreateUploadsBucket", create)]);
        assert_eq!(r.condition("CreateBucket"), bucket);
        assert_eq!(r.condition("UseExistingBucket"), rule);
    }
    assert_eq!(t.resource("UploadsBucket")["Condition"], "CreateBucket");
    assert_eq!(t.resource("UploadsRule")["Condition"], "UseExistingBucket");
    let pattern = &t.resource("UploadsRule")["Properties"]["EventPattern"];
    assert_eq!(pattern["detail-type"][0], "Object Created");
    assert_eq!(
        pattern["detail"]["object"]["key"][0]["anything-but"]["prefix"],
        wdiv_s3_trigger::INTERNAL_PREFIX
    );
}

/// Every reference to the function in the template: only these may name it bare (without its
/// alias); everything that invokes it names the alias.
const BARE_FUNCTION_REFERENCES: &[(&str, &str)] = &[
    (
        "Resources.ErrorsAlarm",
        "a metric of the function name counts every version",
    ),
    ("Resources.ThrottlesAlarm", "the same"),
    ("Resources.DurationNearTimeoutAlarm", "the same"),
    ("Resources.LostEventsAlarm", "the same"),
    (
        "Outputs.UnqualifiedFunctionName",
        "for list-versions-by-function and update-alias (Roll back)",
    ),
    (
        "Outputs.FunctionName",
        "NAME:ALIAS, the alias as Invoke takes it",
    ),
];

/// Paths (`Resources.X...`) where `node` refers to the resource `name` itself.
fn references_to(node: &Value, name: &str, path: &str, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            let refers = map.get("Ref").is_some_and(|r| r == name)
                || map
                    .get("Fn::GetAtt")
                    .is_some_and(|a| a[0] == name || a.as_str() == Some(&format!("{name}.Arn")))
                || map.get("Fn::Sub").is_some_and(|s| {
                    let text = s.as_str().or_else(|| s[0].as_str()).unwrap_or("");
                    text.contains(&format!("${{{name}}}"))
                        || text.contains(&format!("${{{name}.Arn}}"))
                });
            if refers {
                found.push(path.to_owned());
            }
            for (k, v) in map {
                references_to(v, name, &format!("{path}.{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                references_to(v, name, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_trigger_the_failure_destination_and_the_outputs_name_the_live_alias() {
    let t = Template::load();
    let f = t.resource("Function");
    let alias = f["Properties"]["AutoPublishAlias"]
        .as_str()
        .expect("the function publishes versions behind an alias (AutoPublishAlias)");
    let by_alias = serde_json::json!({ "Ref": "Function.Alias" });
    // The trigger, both ways, and the permission each needs, name the alias.
    let bucket = &t.resource("UploadsBucket")["Properties"]["NotificationConfiguration"];
    assert_eq!(
        bucket["LambdaConfigurations"][0]["Function"], by_alias,
        "the S3 notification"
    );
    assert_eq!(
        t.resource("UploadsRule")["Properties"]["Targets"][0]["Arn"],
        by_alias,
        "the EventBridge rule's target"
    );
    for permission in [
        "UploadsBucketInvokePermission",
        "UploadsRuleInvokePermission",
    ] {
        assert_eq!(
            t.resource(permission)["Properties"]["FunctionName"],
            by_alias,
            "{permission}"
        );
    }
    // SAM puts EventInvokeConfig (retries, the OnFailure queue) on the alias when there is one;
    // CI checks that on the translated template (tests below, scripts/deploy_on_moto.py).
    assert!(f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"].is_object());
    // The outputs: the alias, as NAME:ALIAS and as its ARN.
    let r = t.with(&[]);
    let output = |name: &str| {
        r.eval(&t.doc["Outputs"][name]["Value"])
            .unwrap_or_else(|| panic!("no output {name}"))
    };
    assert_eq!(
        output("FunctionName"),
        format!("{}-Function:{alias}", template::STACK)
    );
    assert_eq!(
        output("FunctionArn"),
        r.eval(&by_alias).unwrap(),
        "FunctionArn is the alias's"
    );
    // Nothing else names the bare function: after a roll back it is $LATEST, the bad build.
    let mut found = Vec::new();
    for section in ["Resources", "Outputs"] {
        for (name, node) in t.doc[section].as_object().unwrap() {
            if section == "Resources" && name == "Function" {
                continue;
            }
            let mut here = Vec::new();
            references_to(node, "Function", &format!("{section}.{name}"), &mut here);
            if !here.is_empty() {
                found.push(format!("{section}.{name}"));
            }
        }
    }
    let allowed: BTreeSet<String> = BARE_FUNCTION_REFERENCES
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .collect();
    let found: BTreeSet<String> = found.into_iter().collect();
    assert_eq!(found, allowed, "what names the function without its alias");
}

// --- The values: the template and the settings templates against the program's own defaults.

/// A setting's value as the program will use it, read by its kind, its default applied (a
/// secret: masked, so only whether it is set).
fn effective(s: &Settings, name: &str) -> String {
    s.values.shown(name)
}

/// The settings from these values alone (no settings file), as Lambda reads them. Buckets not
/// given get stand-ins (they have no default in S3).
fn settings_from(values: &[(String, String)]) -> Settings {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let mut env: Vec<(String, String)> = vec![
        ("TEMP_BUCKET_NAME".into(), "stand-in-temp".into()),
        ("FINAL_BUCKET_NAME".into(), "stand-in-final".into()),
    ];
    for (k, v) in values {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    load_settings(Some(empty.path()), &env, Context::Lambda)
        .unwrap_or_else(|e| panic!("{e}\n(from {values:?})"))
}

/// Where `values` differ from the program's defaults: (setting, value).
fn differences(values: &[(String, String)]) -> Vec<(String, String)> {
    let defaults = settings_from(&[]);
    let these = settings_from(values);
    NAMES
        .iter()
        .filter(|n| effective(&defaults, n) != effective(&these, n))
        .map(|n| {
            let given = values
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            ((*n).to_owned(), given)
        })
        .collect()
}

fn assert_differences(what: &str, values: &[(String, String)], intended: &[(&str, &str, &str)]) {
    let found = differences(values);
    let expected: Vec<(String, String)> = intended
        .iter()
        .map(|(n, v, _)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        found_sorted, expected_sorted,
        "{what}: where it differs from the program's defaults (the settings' keys), against the \
         intended differences; a new one needs its reason in the list"
    );
}

/// Where the stack's values differ from the program's defaults, and why.
const STACK_DIFFERS: &[(&str, &str, &str)] = &[
    (
        "LEASE_SECONDS",
        "150",
        "above the function's 120 s timeout, so a crashed invocation's upload is taken over \
         after 150 s; the program's 300 suits command-line runs, which may be slower",
    ),
    (
        "SERVER_ENVIRONMENT",
        "production",
        "the stack's default is the production deploy, which warns at start-up about an effect \
         left off; staging's environment (samconfig.toml) says staging",
    ),
];

/// Where settings/prod.template.toml differs from the program's defaults, and why.
const PROD_FILE_DIFFERS: &[(&str, &str, &str)] = &[
    (
        "SERVER_ENVIRONMENT",
        "production",
        "as the production stack",
    ),
    (
        "AWS_REGION",
        "eu-west-2",
        "production's region, which a command-line run must be told (Lambda sets it)",
    ),
];

/// Where settings/dev.template.toml differs from the program's defaults, and why.
const DEV_FILE_DIFFERS: &[(&str, &str, &str)] = &[
    (
        "SERVER_ENVIRONMENT",
        "development",
        "issues titled TEST, emails marked as a test instance's",
    ),
    ("AWS_REGION", "eu-west-2", "the region the buckets are in"),
];

/// How a value reaches the function: its own text, or an SSM parameter's (the name).
#[derive(Debug, PartialEq)]
enum Source {
    Literal(String),
    /// `{{resolve:ssm:NAME}}` or a parameter of type `AWS::SSM::Parameter::Value`: CloudFormation
    /// reads it when the stack deploys.
    SsmAtDeploy(String),
    /// `ssm:NAME`: the function reads it at start-up.
    SsmAtStartUp(String),
}

/// The function's environment for these parameters, each value with where it comes from.
fn stack_values(t: &Template, params: &[(&str, &str)]) -> BTreeMap<String, Source> {
    let r = t.with(params);
    let raw = &t.resource("Function")["Properties"]["Environment"]["Variables"];
    r.environment()
        .into_iter()
        .map(|(name, v)| {
            let v = v.as_str().unwrap().to_owned();
            let ssm_parameter = raw[&name]["Ref"]
                .as_str()
                .map(|p| {
                    t.parameters()[p]["Type"]
                        .as_str()
                        .unwrap()
                        .starts_with("AWS::SSM::Parameter::Value")
                })
                .unwrap_or(false);
            let source = if ssm_parameter {
                Source::SsmAtDeploy(v)
            } else if let Some(n) = v
                .strip_prefix("{{resolve:ssm:")
                .and_then(|n| n.strip_suffix("}}"))
            {
                Source::SsmAtDeploy(n.to_owned())
            } else if let Some(n) = v.strip_prefix("ssm:") {
                Source::SsmAtStartUp(n.to_owned())
            } else {
                Source::Literal(v)
            };
            (name, source)
        })
        .collect()
}

fn literals(values: &BTreeMap<String, Source>) -> Vec<(String, String)> {
    values
        .iter()
        .filter_map(|(k, s)| match s {
            Source::Literal(v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_stack_s_values_are_the_program_s_defaults_but_for_a_short_list_with_reasons() {
    let t = Template::load();
    let values = stack_values(&t, &[]);
    assert_differences(
        "deploy/template.yaml with its defaults",
        &literals(&values),
        STACK_DIFFERS,
    );
}

/// A settings template's keys and values, as text ("" = unset).
fn settings_file(path: &str) -> Vec<(String, String)> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let table: toml::Table = std::fs::read_to_string(&full)
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let keys: BTreeSet<&str> = table.keys().map(String::as_str).collect();
    let all: BTreeSet<&str> = NAMES.iter().copied().collect();
    assert_eq!(keys, all, "{path} documents every setting, and only those");
    table
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => panic!("{path}: {k} = {other}"),
            };
            (k, text)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

#[test]
fn the_settings_templates_are_the_program_s_defaults_but_for_a_short_list_with_reasons() {
    assert_differences(
        "settings/dev.template.toml",
        &settings_file("settings/dev.template.toml"),
        DEV_FILE_DIFFERS,
    );

    // The production file reads from SSM what the production stack reads from SSM, by the same
    // names; its other values are the program's defaults but for its short list.
    let t = Template::load();
    let stack = stack_values(&t, &production_overrides());
    let prod = settings_file("settings/prod.template.toml");
    let mut plain = Vec::new();
    for (name, value) in prod {
        match value.strip_prefix("ssm:") {
            Some(parameter) => {
                let from_stack = match stack.get(&name) {
                    Some(Source::SsmAtDeploy(n) | Source::SsmAtStartUp(n)) => n.clone(),
                    other => panic!(
                        "prod.template.toml reads {name} from SSM; the production stack: {other:?}"
                    ),
                };
                assert_eq!(parameter, from_stack, "{name}'s SSM parameter");
            }
            None => plain.push((name, value)),
        }
    }
    for (name, source) in &stack {
        if matches!(source, Source::SsmAtDeploy(_) | Source::SsmAtStartUp(_)) {
            assert!(
                plain.iter().all(|(n, _)| n != name),
                "prod.template.toml gives {name} a value; production reads it from SSM"
            );
        }
    }
    assert_differences("settings/prod.template.toml", &plain, PROD_FILE_DIFFERS);
}

// --- samconfig.toml: the environments an operator deploys with.

fn samconfig() -> toml::Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samconfig.toml");
    std::fs::read_to_string(path)
        .unwrap()
        .parse()
        .expect("samconfig.toml is TOML")
}

/// `parameter_overrides` as the SAM CLI reads a list of `Name=Value`: a value wrapped in quotes
/// is unwrapped, and an empty one (`Name=`) is refused, as SAM refuses it.
fn sam_overrides(env: &toml::Table, command: &str) -> Vec<(String, String)> {
    let list = env[command]["parameters"]
        .get("parameter_overrides")
        .unwrap_or_else(|| panic!("{command} has no parameter_overrides"))
        .as_array()
        .expect("parameter_overrides is a list of Name=Value");
    list.iter()
        .map(|item| {
            let s = item.as_str().unwrap();
            let (k, v) = s
                .split_once('=')
                .unwrap_or_else(|| panic!("{s}: not Name=Value"));
            assert!(
                !v.is_empty(),
                "{s}: SAM refuses an empty value; write {k}=\"\""
            );
            assert!(!v.contains(' '), "{s}: a space ends SAM's value");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn production_overrides() -> Vec<(&'static str, &'static str)> {
    let config = samconfig();
    let env = config["default"].as_table().unwrap();
    sam_overrides(env, "deploy")
        .into_iter()
        .map(|(k, v)| (&*k.leak(), &*v.leak()))
        .collect()
}

#[test]
fn samconfig_s_environments_build_and_deploy_alike_and_turn_on_what_production_needs() {
    let t = Template::load();
    let config = samconfig();
    let envs: BTreeSet<&str> = config
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(envs, BTreeSet::from(["default", "staging", "x86_64"]));
    let mut rendered = BTreeMap::new();
    for name in &envs {
        let env = config[*name].as_table().unwrap();
        let global = &env["global"]["parameters"];
        assert_eq!(
            global["region"].as_str(),
            Some("eu-west-2"),
            "{name}: region"
        );
        assert_eq!(
            env["build"]["parameters"]["template_file"].as_str(),
            Some("deploy/template.yaml"),
            "{name}: sam build's template"
        );
        let deploy = &env["deploy"]["parameters"];
        assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
        assert!(
            deploy.get("template_file").is_none(),
            "{name}: sam deploy must take the built template"
        );
        let build = sam_overrides(env, "build");
        let overrides = sam_overrides(env, "deploy");
        let arch = |list: &[(String, String)]| {
            list.iter()
                .find(|(k, _)| k == "Architecture")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name}: Architecture is not set"))
        };
        assert_eq!(arch(&build), arch(&overrides), "{name}: build and deploy");
        for (k, v) in &overrides {
            let p = t
                .parameters()
                .get(k)
                .unwrap_or_else(|| panic!("{name}: no parameter {k}"));
            if let Some(allowed) = p["AllowedValues"].as_array() {
                assert!(allowed.iter().any(|a| a == v), "{name}: {k}={v}");
            }
        }
        let params: Vec<(&str, &str)> = overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let env_vars = t.with(&params).environment();
        rendered.insert(
            *name,
            (
                global["stack_name"].as_str().unwrap().to_owned(),
                env_vars,
                arch(&overrides),
            ),
        );
    }
    let (prod_stack, prod, prod_arch) = &rendered["default"];
    assert_eq!(prod_stack, "wdiv-s3-trigger");
    assert_eq!(prod_arch, "arm64");
    assert_eq!(prod["SERVER_ENVIRONMENT"], "production");
    assert_eq!(prod["DRY_RUN"], "");
    // Every effect production needs is on: no start-up warning (the SSM values are stand-ins).
    let mut values: Vec<(String, String)> = Vec::new();
    for (name, v) in prod {
        let v = v.as_str().unwrap();
        let stand_in = match name.as_str() {
            "GITHUB_REPO" => "owner/repo",
            "ERROR_REPORT_EMAIL" => "staff@example.org",
            "WDIV_WEBHOOK_URL" => "https://wdiv.example.org/uploads/",
            "SENTRY_DSN" => "https://public@sentry.example.org/1",
            _ => "a-token",
        };
        if v.starts_with("ssm:") || v.starts_with("{{resolve:ssm:") {
            values.push((name.clone(), stand_in.to_owned()));
        } else if !name.ends_with("_BUCKET_NAME") {
            values.push((name.clone(), v.to_owned()));
        }
    }
    let gaps = settings_from(&values).production_gaps();
    assert!(
        gaps.is_empty(),
        "production as samconfig.toml deploys it: {gaps:?}"
    );

    // x86_64 is the same stack with the other architecture.
    let (x86_stack, x86, x86_arch) = &rendered["x86_64"];
    assert_eq!(
        (x86_stack, x86, x86_arch.as_str()),
        (prod_stack, prod, "x86_64")
    );

    // Staging: its own stack and SSM names, a dry run, every outside effect off.
    let (staging_stack, staging, _) = &rendered["staging"];
    assert_ne!(staging_stack, prod_stack);
    assert_eq!(staging["SERVER_ENVIRONMENT"], "staging");
    assert_eq!(staging["DRY_RUN"], "true");
    for off in [
        "GITHUB_API_KEY",
        "GITHUB_REPO",
        "WDIV_API_KEY",
        "WDIV_WEBHOOK_URL",
        "ERROR_REPORT_EMAIL",
        "SUCCESS_REPORT_EMAIL",
        "SENTRY_DSN",
        "CLOUDFRONT_DISTRIBUTION_ID",
    ] {
        assert_eq!(staging[off], "", "staging: {off}");
    }
    let staging_params = sam_overrides(config["staging"].as_table().unwrap(), "deploy");
    for bucket in ["TempBucketName", "FinalBucketName"] {
        let (_, v) = staging_params
            .iter()
            .find(|(k, _)| k == bucket)
            .unwrap_or_else(|| panic!("staging: {bucket}"));
        assert!(
            v.starts_with("/wdiv_s3_trigger_staging/"),
            "staging: {bucket}={v}"
        );
    }
}

// --- The template deployed on moto's CloudFormation (scripts/deploy_on_moto.py, run by CI).

/// What moto 5.2.5 leaves out or reports otherwise than AWS, and where each is checked instead.
/// Each is checked to be still so, so this list cannot go stale unnoticed.
const MOTO_GAPS: &[(&str, &str)] = &[
    (
        "alias",
        "its CloudFormation creates no AWS::Lambda::Alias, AWS::Lambda::EventInvokeConfig or \
         AWS::CloudWatch::Alarm; the script gives the alias's Refs the function's ARN so the \
         permissions can be made, and the alias, the failure destination and the alarms are \
         checked on the translated template",
    ),
    (
        "notification",
        "the uploads bucket it creates has no notification configuration: the notification is \
         checked on the translated template",
    ),
    (
        "architecture",
        "the function is reported x86_64 whatever the template says: the translated template's \
         Architectures is checked",
    ),
    (
        "resolve",
        "{{resolve:ssm:...}} is passed through unresolved into the environment; AWS resolves it \
         when the stack deploys",
    ),
];

/// The test reads moto's view from the file `WDIV_TEST_DEPLOYED_STACKS` names.
fn deployed_stacks() -> Option<Value> {
    let path = std::env::var("WDIV_TEST_DEPLOYED_STACKS")
        .ok()
        .filter(|p| !p.is_empty());
    let Some(path) = path else {
        eprintln!(
            "skipped: moto's view of the deployed stacks is made by scripts/deploy_on_moto.py \
             (WDIV_TEST_DEPLOYED_STACKS=FILE; .ci/run does this)"
        );
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some(serde_json::from_str(&text).unwrap())
}

#[test]
fn the_alias_and_what_moto_leaves_out_are_right_in_the_translated_template() {
    let Some(view) = deployed_stacks() else {
        return;
    };
    let tr = &view["translated"];
    let res = tr["Resources"].as_object().unwrap();
    let of_type = |ty: &str| -> Vec<(&String, &Value)> {
        res.iter().filter(|(_, r)| r["Type"] == ty).collect()
    };
    let aliases = of_type("AWS::Lambda::Alias");
    assert_eq!(aliases.len(), 1, "one alias");
    let (alias_id, alias) = aliases[0];
    let alias_name =
        Template::load().resource("Function")["Properties"]["AutoPublishAlias"].clone();
    assert_eq!(alias["Properties"]["Name"], alias_name);
    assert_eq!(
        alias["Properties"]["FunctionName"],
        serde_json::json!({"Ref": "Function"})
    );
    let version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap();
    assert_eq!(res[version]["Type"], "AWS::Lambda::Version");
    let to_alias = serde_json::json!({ "Ref": alias_id });

    let configs = of_type("AWS::Lambda::EventInvokeConfig");
    assert_eq!(configs.len(), 1);
    let config = &configs[0].1["Properties"];
    assert_eq!(
        config["Qualifier"], alias_name,
        "the failure destination is the alias's"
    );
    assert_eq!(config["MaximumRetryAttempts"], 2);
    assert_eq!(
        config["DestinationConfig"]["OnFailure"]["Destination"],
        serde_json::json!({"Fn::GetAtt": ["FailedEvents", "Arn"]})
    );
    let bucket = &res["UploadsBucket"]["Properties"]["NotificationConfiguration"];
    assert_eq!(bucket["LambdaConfigurations"][0]["Function"], to_alias);
    assert_eq!(
        bucket["LambdaConfigurations"][0]["Event"],
        "s3:ObjectCreated:*"
    );
    assert_eq!(
        res["UploadsRule"]["Properties"]["Targets"][0]["Arn"],
        to_alias
    );
    for p in [
        "UploadsBucketInvokePermission",
        "UploadsRuleInvokePermission",
    ] {
        assert_eq!(res[p]["Properties"]["FunctionName"], to_alias, "{p}");
    }
    assert_eq!(tr["Outputs"]["FunctionArn"]["Value"], to_alias);
    assert_eq!(
        tr["Outputs"]["FunctionName"]["Value"],
        serde_json::json!({"Fn::Sub": format!("${{Function}}:{}", alias_name.as_str().unwrap())})
    );
    let f = &res["Function"]["Properties"];
    assert_eq!(
        f["Architectures"],
        serde_json::json!([{"Ref": "Architecture"}])
    );
    assert_eq!(
        of_type("AWS::CloudWatch::Alarm").len(),
        5,
        "the five alarms"
    );

    // What the script replaced for moto is exactly the alias's five Refs; moto still skips
    // what MOTO_GAPS says.
    let replaced: BTreeSet<&str> = view["moto_replaced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        replaced,
        BTreeSet::from([
            ".Resources.UploadsBucket.Properties.NotificationConfiguration.LambdaConfigurations[0].Function",
            ".Resources.UploadsBucketInvokePermission.Properties.FunctionName",
            ".Resources.UploadsRule.Properties.Targets[0].Arn",
            ".Resources.UploadsRuleInvokePermission.Properties.FunctionName",
            ".Outputs.FunctionArn.Value",
        ])
    );
    let default = &view["variants"]["default"];
    let listed: Vec<&str> = default["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    for skipped in [
        "AWS::Lambda::Alias",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::CloudWatch::Alarm",
    ] {
        assert!(
            !listed.contains(&skipped),
            "moto now creates {skipped}: check it on moto's view, and update MOTO_GAPS"
        );
    }
    assert_eq!(
        default["bucket"]["notification"],
        serde_json::json!({}),
        "moto now keeps the bucket's notification: check it there, and update MOTO_GAPS"
    );
    assert_eq!(
        default["function"]["Architectures"],
        serde_json::json!(["x86_64"]),
        "moto now reports the architecture: check it there, and update MOTO_GAPS"
    );
    assert_eq!(MOTO_GAPS.len(), 4);
}

#[test]
fn the_stacks_deployed_on_moto_are_what_the_program_needs() {
    let Some(view) = deployed_stacks() else {
        return;
    };
    let t = Template::load();
    let excluded: BTreeSet<&str> = NOT_FROM_THE_STACK.iter().map(|(n, _)| *n).collect();
    let expected_env: BTreeSet<String> = NAMES
        .iter()
        .filter(|n| !excluded.contains(*n))
        .map(|n| (*n).to_owned())
        .collect();
    for (variant, params_sent) in [("default", true), ("staging", false)] {
        let v = &view["variants"][variant];
        assert_eq!(v["status"], "CREATE_COMPLETE", "{variant}");
        let stack = v["stack"].as_str().unwrap();

        // The resources each variant must have, all created.
        let mut made: BTreeSet<String> = BTreeSet::new();
        for r in v["resources"].as_array().unwrap() {
            let logical = r["logical"].as_str().unwrap();
            if logical.is_empty() {
                continue; // what moto skips (MOTO_GAPS)
            }
            assert_eq!(r["status"], "CREATE_COMPLETE", "{variant}: {logical}");
            let logical = if logical.starts_with("FunctionVersion") {
                "FunctionVersion"
            } else {
                logical
            };
            made.insert(logical.to_owned());
        }
        let trigger: &[&str] = if params_sent {
            &["UploadsBucket", "UploadsBucketInvokePermission"]
        } else {
            &["UploadsRule", "UploadsRuleInvokePermission"]
        };
        let expected: BTreeSet<String> = [
            "Function",
            "FunctionVersion",
            "FunctionRole",
            "FailedEvents",
            "LogGroup",
        ]
        .iter()
        .chain(trigger)
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(made, expected, "{variant}: the resources");

        // The function: 128 MB, 120 s, the runtime, its role; the environment is exactly the
        // settings the program reads.
        let f = &v["function"];
        assert_eq!(f["MemorySize"], 128, "{variant}");
        assert_eq!(f["Timeout"], 120, "{variant}");
        assert_eq!(f["Runtime"], "provided.al2023", "{variant}");
        assert_eq!(f["Handler"], "bootstrap", "{variant}");
        assert_eq!(
            f["Role"], v["role"]["arn"],
            "{variant}: the function's role"
        );
        let env = f["Environment"]["Variables"].as_object().unwrap();
        let names: BTreeSet<String> = env.keys().cloned().collect();
        assert_eq!(names, expected_env, "{variant}: the environment's names");
        let ssm = &v["ssm"];
        // A bucket's name: moto reports an SSM-typed parameter by its resolved value (AWS by its
        // SSM name, with the value beside it).
        let bucket = |param: &str| -> String {
            let given = v["parameters"][param].as_str().unwrap();
            match ssm.get(given) {
                Some(value) => value.as_str().unwrap().to_owned(),
                None => given.to_owned(),
            }
        };
        let temp = bucket("TempBucketName");
        let final_bucket = bucket("FinalBucketName");
        let made_by_ci: Vec<&str> = ssm
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            made_by_ci.contains(&temp.as_str()) && made_by_ci.contains(&final_bucket.as_str()),
            "{variant}: the buckets' names come from SSM"
        );
        assert_eq!(
            env["TEMP_BUCKET_NAME"],
            temp.as_str(),
            "{variant}: resolved from SSM"
        );
        assert_eq!(env["FINAL_BUCKET_NAME"], final_bucket.as_str());
        for secret in SECRET_NAMES.iter() {
            let value = env[*secret].as_str().unwrap();
            if params_sent {
                assert!(
                    value.starts_with("ssm:/wdiv_s3_trigger/"),
                    "{variant}: {secret}={value}"
                );
            } else {
                assert_eq!(value, "", "{variant}: {secret}");
            }
        }
        for resolved in ["GITHUB_REPO", "ERROR_REPORT_EMAIL", "WDIV_WEBHOOK_URL"] {
            let value = env[resolved].as_str().unwrap();
            if params_sent {
                // moto passes {{resolve:ssm:NAME}} through (MOTO_GAPS); AWS puts NAME's value.
                let name = value
                    .strip_prefix("{{resolve:ssm:")
                    .and_then(|n| n.strip_suffix("}}"))
                    .unwrap_or_else(|| panic!("{variant}: {resolved}={value}"));
                assert!(
                    ssm.get(name).is_some(),
                    "{variant}: {resolved} reads {name}, which CI made"
                );
            } else {
                assert_eq!(value, "", "{variant}: {resolved}");
            }
        }
        let dry_run = if params_sent { "" } else { "true" };
        assert_eq!(env["DRY_RUN"], dry_run, "{variant}");

        // The role: assumed by Lambda; its one policy is the statements the program needs for
        // this variant's settings (as tests above and tests/iam_enforced.rs hold them), with
        // moto's own names for the queue and the log group.
        assert_eq!(
            v["role"]["assume"]["Statement"][0]["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
        let policies = v["role"]["policies"].as_object().unwrap();
        assert_eq!(policies.len(), 1, "{variant}: one inline policy");
        let got = policies.values().next().unwrap();
        let params: Vec<(String, String)> = v["parameters"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().unwrap().to_owned()))
            .chain([
                ("TempBucketName".to_owned(), temp.clone()),
                ("FinalBucketName".to_owned(), final_bucket.clone()),
            ])
            .collect();
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let queue_arn = v["queue"]["QueueArn"].as_str().unwrap();
        let log_group = v["log_group"][0]["logGroupName"].as_str().unwrap();
        let want = t
            .with(&params)
            .role_policy()
            .to_string()
            .replace(
                &format!(
                    "arn:aws:sqs:{REGION}:{ACCOUNT}:{}-FailedEvents",
                    template::STACK
                ),
                queue_arn,
            )
            .replace(&format!("/aws/lambda/{}", template::STACK), log_group);
        let want: Value = serde_json::from_str(&want).unwrap();
        let shape = |p: &Value| -> Vec<(String, Vec<String>, Vec<String>)> {
            statements(p)
                .iter()
                .map(|s| (sid(s).to_owned(), actions(s), resources(s)))
                .collect()
        };
        assert_eq!(shape(got), shape(&want), "{variant}: the role's statements");
        let sids: Vec<String> = shape(got).into_iter().map(|(s, _, _)| s).collect();
        let mut needed = vec![
            "WriteOwnLogs",
            "ListUploads",
            "ReadUploads",
            "KeepEffectsRecords",
            "ListFinalBucket",
            "PublishToFinalBucket",
            "SendFailedEventsToQueue",
        ];
        if params_sent {
            needed.extend(["ReadSecrets", "EmailStaff", "InvalidateTheSite"]);
        }
        assert_eq!(sids, needed, "{variant}: every effect on, or every one off");

        // The queue keeps failed events 14 days; the log group is the stack's, kept 90 days.
        assert_eq!(v["queue"]["MessageRetentionPeriod"], "1209600");
        assert_eq!(log_group, format!("/aws/lambda/{stack}"));
        assert_eq!(v["log_group"][0]["retentionInDays"], 90);

        // The trigger: the bucket the stack made, or the rule on the existing bucket.
        if params_sent {
            assert_eq!(v["bucket"]["name"], temp.as_str());
            assert!(v.get("rule").is_none());
        } else {
            let rule = &v["rule"];
            assert_eq!(rule["state"], "ENABLED");
            assert_eq!(
                rule["pattern"]["detail"]["bucket"]["name"][0],
                temp.as_str()
            );
            assert_eq!(rule["pattern"]["detail-type"][0], "Object Created");
            assert_eq!(
                rule["pattern"]["detail"]["object"]["key"][0]["anything-but"]["prefix"],
                wdiv_s3_trigger::INTERNAL_PREFIX
            );
            // The alias's ARN on AWS; the function's here (MOTO_GAPS).
            assert_eq!(rule["targets"][0]["Arn"], f["FunctionArn"]);
            assert!(v.get("bucket").is_none());
        }
        assert_eq!(
            v["outputs"]["FunctionName"],
            format!("{}:live", f["FunctionName"].as_str().unwrap())
        );
    }
}
