//! `deploy/template.yaml` against the program: every setting the program reads can be set by the
//! stack, and the stack sets nothing the program ignores; no secret is in the template or an
//! output; and the role grants what each feature needs only when the feature is on.
//!
//! The S3 statements are proved needed, and enough, on moto's server with IAM enforcement
//! (`tests/iam_enforced.rs`). moto matches resource ARNs for S3 only: it authorises SES and
//! CloudFront calls against the resource `*`, so an SES or CloudFront statement scoped to the
//! one identity or distribution would be refused there, and a wrong ARN would not be noticed.
//! Their ARNs and conditions are therefore checked here (and cfn-lint checks their syntax).

mod template;

use std::collections::BTreeSet;

use serde_json::Value;
use template::{actions, resources, sid, statements, Template, ACCOUNT, REGION};
use wdiv_s3_trigger::settings::{NAMES, SECRET_NAMES};

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
    for name in SECRET_NAMES {
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
                    wdiv_s3_trigger::event::INTERNAL_PREFIX
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
        wdiv_s3_trigger::event::INTERNAL_PREFIX
    );
}
