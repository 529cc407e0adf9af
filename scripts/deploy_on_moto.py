#!/usr/bin/env python3
"""deploy/template.yaml, deployed on moto's CloudFormation as `sam deploy` would deploy it.

`sam deploy` cannot run against moto, which has no `AWS::Serverless` transform; so this does
what it does, in two steps: the template is translated to plain CloudFormation with SAM's own
translator (samtranslator, the library `sam deploy` and CloudFormation use), its CodeUri pointing
at a stand-in artifact in moto's S3 (what `sam build` and `sam package` would upload), and the
result is created as a stack. moto's view of each stack (the function's configuration, the role's
policy, the queue, the log group, the bucket or the EventBridge rule, the outputs) and the
translated template are written as JSON for `tests/scenarios/deploy_template.rs`, which holds them to the
program (`WDIV_TEST_DEPLOYED_STACKS=FILE cargo test --test scenarios deploy_template::`).

Two variants, as CI runs it:
  default  CreateUploadsBucket=true and every effect on (GitHub, webhook, both emails, the
           CloudFront invalidation, Sentry);
  staging  an existing bucket (EventBridge), DryRun=true, every effect off.

Where moto 5.2.5 leaves something out, it is said here and checked on the translated template
instead: its CloudFormation creates no AWS::Lambda::Alias, AWS::Lambda::EventInvokeConfig or
AWS::CloudWatch::Alarm (it skips them), so every `Ref` to the alias is given the function's ARN
for moto, or the permissions that name it could not be created.

Also a library for scripts/operator_walkthrough.py: translate(), deploy(), stack_view().

Usage: deploy_on_moto.py --endpoint URL --out FILE
       deploy_on_moto.py --translate-only   (the translation alone, no moto: CI's early check)
"""

import argparse
import ast
import copy
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import boto3
import yaml
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
REGION = "eu-west-2"
ARTIFACT_BUCKET = "wdiv-sam-artifacts"

# What moto's CloudFormation skips (not created, not listed by name): checked on the
# translated template by tests/scenarios/deploy_template.rs.
MOTO_SKIPS = [
    "AWS::Lambda::Alias",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
]


class NoManagedPolicies:
    """The template names no AWS managed policy, so the translator needs no IAM lookup."""

    def load(self):
        return {}


def clients(endpoint):
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )
    return lambda service: session.client(service, endpoint_url=endpoint)


def upload_artifact(client, key):
    """The stand-in for what `sam build` makes and `sam package` uploads: a zip holding a
    `bootstrap` (moto stores the function's code; it never runs it)."""
    s3 = client("s3")
    try:
        s3.create_bucket(
            Bucket=ARTIFACT_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# stand-in artifact {key}\n")
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=buf.getvalue())
    return f"s3://{ARTIFACT_BUCKET}/{key}"


def translate(code_uri, template_path=TEMPLATE):
    """The SAM template as plain CloudFormation, as `sam deploy` has CloudFormation make it."""
    template = yaml.safe_load(Path(template_path).read_text())
    template["Resources"]["Function"]["Properties"]["CodeUri"] = code_uri
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(template, {}, NoManagedPolicies())


def for_moto(translated):
    """The translated template as moto can create it: every Ref to the alias (which moto does
    not create) becomes the function's ARN. Returns the template and what was replaced."""
    aliases = [
        name
        for name, r in translated["Resources"].items()
        if r["Type"] == "AWS::Lambda::Alias"
    ]
    replaced = []

    def walk(node, path):
        if isinstance(node, dict):
            if len(node) == 1 and node.get("Ref") in aliases:
                replaced.append(path)
                return {"Fn::GetAtt": ["Function", "Arn"]}
            return {k: walk(v, f"{path}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(copy.deepcopy(translated), ""), replaced


def stack_exists(client, stack):
    cf = client("cloudformation")
    try:
        cf.describe_stacks(StackName=stack)
        return True
    except cf.exceptions.ClientError:
        return False


def deploy(client, stack, translated, parameters):
    """Creates the stack, or updates it when it exists (as `sam deploy` does); waits for the
    end. Returns the final status and its reason."""
    cf = client("cloudformation")
    body, _ = for_moto(translated)
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    action = cf.update_stack if stack_exists(client, stack) else cf.create_stack
    action(
        StackName=stack,
        TemplateBody=json.dumps(body),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + 60
    while True:
        s = cf.describe_stacks(StackName=stack)["Stacks"][0]
        if not s["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return s["StackStatus"], s.get("StackStatusReason")
        time.sleep(0.2)


def policy_document(doc):
    """A role policy as a dict. moto 5.2.5 keeps the policy of a role its CloudFormation made
    as Python's repr of the dict, and returns that text (AWS returns JSON); and it keeps an
    `Fn::If` that gave `AWS::NoValue` in a list as null, where CloudFormation drops it."""
    if not isinstance(doc, dict):
        try:
            doc = json.loads(doc)
        except ValueError:
            doc = ast.literal_eval(doc)
    doc["Statement"] = [s for s in doc["Statement"] if s is not None]
    return doc


def stack_view(client, stack):
    """moto's view of the stack: what it made, as its own APIs report it."""
    cf = client("cloudformation")
    s = cf.describe_stacks(StackName=stack)["Stacks"][0]
    resources = cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in resources
        if r["LogicalResourceId"]
    }
    view = {
        "status": s["StackStatus"],
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in s.get("Parameters", [])},
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])},
        "resources": [
            {
                "logical": r["LogicalResourceId"],
                "type": r["ResourceType"],
                "status": r["ResourceStatus"],
                "physical": r.get("PhysicalResourceId", ""),
            }
            for r in resources
        ],
    }
    if "Function" in physical:
        fn = client("lambda").get_function_configuration(FunctionName=physical["Function"])
        fn.pop("ResponseMetadata", None)
        view["function"] = fn
        view["versions"] = [
            v["Version"]
            for v in client("lambda").list_versions_by_function(
                FunctionName=physical["Function"]
            )["Versions"]
        ]
    if "FunctionRole" in physical:
        iam = client("iam")
        role = iam.get_role(RoleName=physical["FunctionRole"])["Role"]
        names = iam.list_role_policies(RoleName=physical["FunctionRole"])["PolicyNames"]
        view["role"] = {
            "arn": role["Arn"],
            "assume": role["AssumeRolePolicyDocument"],
            "policies": {
                n: policy_document(
                    iam.get_role_policy(RoleName=physical["FunctionRole"], PolicyName=n)[
                        "PolicyDocument"
                    ]
                )
                for n in names
            },
        }
    if "FailedEvents" in physical:
        q = client("sqs").get_queue_attributes(
            QueueUrl=physical["FailedEvents"], AttributeNames=["All"]
        )["Attributes"]
        view["queue"] = q
    if "LogGroup" in physical:
        groups = client("logs").describe_log_groups(logGroupNamePrefix=physical["LogGroup"])
        view["log_group"] = [g for g in groups["logGroups"] if g["logGroupName"] == physical["LogGroup"]]
    if "UploadsBucket" in physical:
        s3 = client("s3")
        s3.head_bucket(Bucket=physical["UploadsBucket"])
        n = s3.get_bucket_notification_configuration(Bucket=physical["UploadsBucket"])
        n.pop("ResponseMetadata", None)
        view["bucket"] = {"name": physical["UploadsBucket"], "notification": n}
    if "UploadsRule" in physical:
        events = client("events")
        name = physical["UploadsRule"].split("/")[-1]
        rule = events.describe_rule(Name=name)
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        view["rule"] = {
            "name": name,
            "state": rule.get("State"),
            "pattern": json.loads(rule["EventPattern"]),
            "targets": targets,
        }
    return view


# The two variants CI deploys: the SSM parameters each needs, and the stack's parameters.
SSM_DEFAULT = {
    "/wdiv_s3_trigger/TEMP_BUCKET_NAME": ("String", "wdiv-ci-uploads"),
    "/wdiv_s3_trigger/FINAL_BUCKET_NAME": ("String", "wdiv-ci-final"),
    "/wdiv_s3_trigger/GITHUB_REPO": ("String", "DemocracyClub/UK-Polling-Stations"),
    "/wdiv_s3_trigger/ERROR_REPORT_EMAIL": ("String", "pollingstations@example.org"),
    "/wdiv_s3_trigger/WDIV_WEBHOOK_URL": ("String", "https://wheredoivote.co.uk/api/beta/uploads/"),
    "/wdiv_s3_trigger/GITHUB_API_KEY": ("SecureString", "ghp_not_a_real_token"),
    "/wdiv_s3_trigger/SENTRY_DSN": ("SecureString", "https://public@sentry.example.org/1"),
    "/wdiv_s3_trigger/WDIV_API_KEY": ("SecureString", "not-a-real-key"),
}
SSM_STAGING = {
    "/wdiv_s3_trigger_ci_staging/TEMP_BUCKET_NAME": ("String", "wdiv-ci-staging-uploads"),
    "/wdiv_s3_trigger_ci_staging/FINAL_BUCKET_NAME": ("String", "wdiv-ci-staging-final"),
}
VARIANTS = {
    "default": {
        "stack": "wdiv-ci-default",
        "ssm": SSM_DEFAULT,
        "parameters": {
            "CreateUploadsBucket": "true",
            "WdivApiKeyParameter": "/wdiv_s3_trigger/WDIV_API_KEY",
            "SuccessReportEmail": "staff@example.org",
            "CloudFrontDistributionId": "E2EXAMPLE",
            "ServerEnvironment": "production",
        },
    },
    "staging": {
        "stack": "wdiv-ci-staging",
        "ssm": SSM_STAGING,
        "existing_bucket": "wdiv-ci-staging-uploads",
        "parameters": {
            "CreateUploadsBucket": "false",
            "TempBucketName": "/wdiv_s3_trigger_ci_staging/TEMP_BUCKET_NAME",
            "FinalBucketName": "/wdiv_s3_trigger_ci_staging/FINAL_BUCKET_NAME",
            "ServerEnvironment": "staging",
            "DryRun": "true",
            "GitHubApiKeyParameter": "",
            "GitHubRepoParameter": "",
            "SentryDsnParameter": "",
            "WdivApiKeyParameter": "",
            "WdivWebhookUrlParameter": "",
            "ErrorReportEmailParameter": "",
        },
    },
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", help="moto's server, http://127.0.0.1:PORT")
    ap.add_argument("--out", help="where moto's view is written (JSON)")
    ap.add_argument("--translate-only", action="store_true",
                    help="translate the template and stop (needs no moto)")
    args = ap.parse_args()
    if args.translate_only:
        t = translate("s3://bucket/bootstrap.zip")
        types = sorted({r["Type"] for r in t["Resources"].values()})
        print(f"samtranslator: deploy/template.yaml translates to {len(t['Resources'])} "
              f"resources ({', '.join(types)})")
        return
    if not (args.endpoint and args.out):
        ap.error("--endpoint and --out are needed, or --translate-only")
    client = clients(args.endpoint)

    started = time.monotonic()
    code_uri = upload_artifact(client, "ci/bootstrap.zip")
    translated = translate(code_uri)
    _, replaced = for_moto(translated)
    print(f"samtranslator: deploy/template.yaml translated; for moto, {len(replaced)} Ref(s) to "
          f"the alias given the function's ARN ({', '.join(MOTO_SKIPS)} are not created by "
          "moto's CloudFormation: checked on the translated template)")
    out = {"translated": translated, "moto_replaced": replaced, "moto_skips": MOTO_SKIPS,
           "variants": {}}
    failed = False
    for name, v in VARIANTS.items():
        ssm = client("ssm")
        for pname, (ptype, value) in v["ssm"].items():
            ssm.put_parameter(Name=pname, Type=ptype, Value=value, Overwrite=True)
        if "existing_bucket" in v:
            client("s3").create_bucket(
                Bucket=v["existing_bucket"],
                CreateBucketConfiguration={"LocationConstraint": REGION},
            )
        if stack_exists(client, v["stack"]):
            sys.exit(f"error: the stack {v['stack']} exists already: run this on a fresh moto")
        status, reason = deploy(client, v["stack"], translated, v["parameters"])
        view = stack_view(client, v["stack"])
        view["stack"] = v["stack"]
        view["ssm"] = {k: val for k, (_, val) in v["ssm"].items()}
        out["variants"][name] = view
        print(f"{name}: stack {v['stack']} {status}" + (f" ({reason})" if reason else "") +
              f", {sum(1 for r in view['resources'] if r['logical'])} resources")
        failed |= status != "CREATE_COMPLETE"
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    print(f"moto's view of both stacks in {args.out} ({time.monotonic() - started:.1f} s)")
    if failed:
        sys.exit("error: a stack did not reach CREATE_COMPLETE")


if __name__ == "__main__":
    main()
