#!/usr/bin/env python3
"""docs/operations.md followed as a new operator would, on moto, by its own commands.

The blocks of docs/operations.md marked `<!-- walkthrough: NAME -->` are run as they are
written, in bash, section by section ("Deploy from zero", "Deploy over the existing
installation", "Roll back"), with AWS CLI v1 (PyPI's, the strictest: it fetches a value that
looks like a URL, and ignores AWS_REGION) against moto's server, and the binary as
`wdiv-s3-trigger`. A secret typed at a prompt is read from this script's answers. Then the state
they leave in moto is checked: so when the docs and the commands drift apart, CI fails.

What moto cannot take is replaced, and said so when it happens:
  sam build       nothing to build for moto: each build gets a new stand-in artifact, so a
                  deploy after it publishes a new version, as a new build does;
  sam deploy      the template translated with samtranslator and the stack created or updated
                  on moto (scripts/deploy_on_moto.py), with the parameters, stack name and
                  region of the samconfig.toml environment given (`--config-env`), which must
                  be the one the last `sam build` had; then the alias `live` pointed at the
                  newest version, which moto's CloudFormation does not do (it makes no alias);
  aws logs tail   skipped: moto runs no function, so there is no log.

Before "Deploy over the existing installation", moto is reset and given what the CDK
installation has: its SSM parameters (WDIV_WEBHOOK_URL a SecureString, no WDIV_API_KEY), its
buckets, and an old function the uploads bucket notifies. Before "Roll back", a second release
is built and deployed through the same stand-ins.

Usage: operator_walkthrough.py --endpoint URL --binary PATH
(also `operator_walkthrough.py sam-stand-in ARGS...`, which the docs' `sam` runs)
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy_on_moto as dm  # noqa: E402

ROOT = dm.ROOT
DOC = ROOT / "docs" / "operations.md"
SAMCONFIG = ROOT / "samconfig.toml"

# The marked blocks, by section, in the order an operator meets them.
SECTIONS = [
    ("Deploy from zero", ["zero-ssm", "zero-buckets", "zero-deploy", "zero-check"]),
    (
        "Deploy over the existing installation",
        ["existing-ssm", "existing-log-group", "existing-deploy", "existing-switch"],
    ),
    ("Roll back", ["rollback-find", "rollback-alias"]),
]

# What the operator types at the prompts (`read -rsp 'NAME: ' V`), by the prompt's name.
TYPED = {
    "GITHUB_API_KEY": "ghp_walkthrough_not_a_token",
    "SENTRY_DSN": "https://public@sentry.example.org/1",
    "WDIV_API_KEY": "walkthrough-wdiv-key",
}


def say(text):
    print(f"walkthrough: {text}", flush=True)


def marked_blocks(text):
    """{name: commands} for every `<!-- walkthrough: NAME -->` followed by a ```sh block."""
    blocks = {}
    pattern = re.compile(
        r"^([ \t]*)<!-- walkthrough: ([a-z0-9-]+) -->\n\1```sh\n(.*?)\n\1```", re.M | re.S
    )
    for m in pattern.finditer(text):
        indent, name, body = m.groups()
        if name in blocks:
            sys.exit(f"error: docs/operations.md marks two blocks {name}")
        lines = [l[len(indent):] if l.startswith(indent) else l for l in body.split("\n")]
        blocks[name] = "\n".join(lines)
    marks = re.findall(r"<!-- walkthrough: ([a-z0-9-]+) -->", text)
    unmatched = sorted(set(marks) - set(blocks))
    if unmatched:
        sys.exit(f"error: docs/operations.md marks {unmatched} without a ```sh block right after")
    return blocks


# --- The stand-ins ---------------------------------------------------------------------------


def sam_overrides(items, where):
    """parameter_overrides as the SAM CLI reads a list of Name=Value (tests/scenarios/deploy_template.rs
    holds the same rules): a quoted value is unwrapped; `Name=` alone is refused."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            sys.exit(f"error: {where}: {item!r}: SAM refuses it (an empty value is written Name=\"\")")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


def sam_stand_in(args):
    state = Path(os.environ["WALK_STATE"])
    client = dm.clients(os.environ["WALK_ENDPOINT"])
    command, rest = (args[0], args[1:]) if args else ("", [])
    opts = {"--config-env": "default", "--stack-name": None}
    i = 0
    while i < len(rest):
        if rest[i] in opts and i + 1 < len(rest):
            opts[rest[i]] = rest[i + 1]
            i += 2
        else:
            sys.exit(f"error: the walk-through has no stand-in for: sam {' '.join(args)}")
    env_name = opts["--config-env"]
    config = tomllib.loads(SAMCONFIG.read_text())
    if env_name not in config:
        sys.exit(f"error: samconfig.toml has no environment {env_name}")
    env = config[env_name]
    built = state / "built.json"
    if command == "build":
        n = json.loads(built.read_text())["n"] + 1 if built.exists() else 1
        arch = sam_overrides(env["build"]["parameters"]["parameter_overrides"], env_name).get(
            "Architecture"
        )
        built.write_text(json.dumps({"n": n, "env": env_name, "arch": arch}))
        say(f"'sam build{' --config-env ' + env_name if env_name != 'default' else ''}' replaced: "
            f"build {n} ({arch}) is a stand-in artifact (CI builds the real one with cargo lambda)")
        return
    if command != "deploy":
        sys.exit(f"error: the walk-through has no stand-in for: sam {' '.join(args)}")
    if not built.exists():
        sys.exit("error: sam deploy before sam build: there is nothing to deploy")
    b = json.loads(built.read_text())
    params = sam_overrides(env["deploy"]["parameters"]["parameter_overrides"], env_name)
    if params.get("Architecture") != b["arch"]:
        sys.exit(f"error: sam deploy --config-env {env_name} declares {params.get('Architecture')}, "
                 f"but the last sam build (--config-env {b['env']}) built {b['arch']}")
    stack = opts["--stack-name"] or env["global"]["parameters"]["stack_name"]
    region = env["global"]["parameters"]["region"]
    if region != dm.REGION:
        sys.exit(f"error: samconfig.toml's {env_name} deploys to {region}; the walk-through to {dm.REGION}")
    code_uri = dm.upload_artifact(client, f"builds/{b['n']}/bootstrap.zip")
    translated = dm.translate(code_uri)
    status, reason = dm.deploy(client, stack, translated, params)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        sys.exit(f"error: stack {stack}: {status} ({reason})")
    # moto's CloudFormation makes no alias: point `live` at the newest version, as it would.
    lam = client("lambda")
    fn = next(
        r["PhysicalResourceId"]
        for r in client("cloudformation").list_stack_resources(StackName=stack)[
            "StackResourceSummaries"
        ]
        if r["LogicalResourceId"] == "Function"
    )
    # On an update, moto's CloudFormation makes the new AWS::Lambda::Version before it updates
    # the code, so it publishes nothing new; publishing now gives the version AWS would have
    # made (Lambda returns the newest version when nothing changed).
    newest = int(lam.publish_version(FunctionName=fn)["Version"])
    try:
        lam.update_alias(FunctionName=fn, Name="live", FunctionVersion=str(newest))
    except lam.exceptions.ResourceNotFoundException:
        lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=str(newest))
    say(f"'sam deploy' replaced: samtranslator, then stack {stack} {status} on moto with "
        f"samconfig.toml's {env_name} parameters; version {newest} published and the alias live "
        "pointed at it (moto's CloudFormation does neither on an update, and makes no alias)")


# --- Running the docs' blocks ----------------------------------------------------------------

PRELUDE = r"""
set -euo pipefail
sam() { "$WALK_PYTHON" "$WALK_SCRIPT" sam-stand-in "$@"; }
aws() {
  if [ "${1:-}" = logs ] && [ "${2:-}" = tail ]; then
    echo "walkthrough: 'aws logs tail' skipped: moto runs no function, so there is no log"
    return 0
  fi
  command aws "$@"
}
"""


def run_section(name, block_names, blocks, env, answers):
    script = [PRELUDE]
    for b in block_names:
        script.append(f'echo "walkthrough: --- block {b}"')
        script.append(blocks[b])
    say(f"=== {name}: running blocks {', '.join(block_names)} of docs/operations.md")
    started = time.monotonic()
    p = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        input="".join(a + "\n" for a in answers),
        text=True,
        cwd=env["WALK_WORKDIR"],
        env=env,
        capture_output=True,
    )
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    if p.returncode != 0:
        sys.exit(f"error: '{name}' as written in docs/operations.md failed (exit {p.returncode})")
    say(f"=== {name}: the blocks ran in {time.monotonic() - started:.1f} s")
    return p.stdout


def prompts(block):
    """The secrets a block asks for, in order (`read -rsp 'NAME: ' V`)."""
    return [TYPED[n] for n in re.findall(r"read -rsp '([A-Z_]+): '", block)]


def expect(cond, what):
    if not cond:
        sys.exit(f"error: after the docs' commands, {what}")


def reset_moto(endpoint):
    req = urllib.request.Request(endpoint + "/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=10).read()


def stack_function(client, stack):
    res = client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return next(r["PhysicalResourceId"] for r in res if r["LogicalResourceId"] == "Function")


def eventbridge_alone(s3, bucket):
    """The bucket's notification configuration is EventBridge's alone. moto 5.2.5 keeps an
    EventBridgeConfiguration but leaves it out of GetBucketNotificationConfiguration's answer,
    so there an empty answer is what EventBridge alone looks like (and any other entry, such as
    the old function's, still shows)."""
    n = s3.get_bucket_notification_configuration(Bucket=bucket)
    n.pop("ResponseMetadata", None)
    return n in ({}, {"EventBridgeConfiguration": {}})


def check_zero(client, blocks, out):
    ssm = client("ssm")
    # Each `put NAME TYPE VALUE` stored exactly VALUE (AWS CLI v1 would fetch a URL given as
    # --value, and store the page); each typed secret, exactly what was typed.
    for line in blocks["zero-ssm"].splitlines():
        if not line.startswith("put "):
            continue
        words = shlex.split(line, comments=True)
        if len(words) == 4 and words[0] == "put":
            _, name, ptype, value = words
            p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
            expect((p["Type"], p["Value"]) == (ptype, value), f"{name} holds {p['Type']} {p['Value']!r}")
    for name, typed in TYPED.items():
        p = ssm.get_parameter(Name=f"/wdiv_s3_trigger/{name}", WithDecryption=True)["Parameter"]
        expect((p["Type"], p["Value"]) == ("SecureString", typed), f"{name} is not what was typed")
    s3 = client("s3")
    temp = ssm.get_parameter(Name="/wdiv_s3_trigger/TEMP_BUCKET_NAME")["Parameter"]["Value"]
    final = ssm.get_parameter(Name="/wdiv_s3_trigger/FINAL_BUCKET_NAME")["Parameter"]["Value"]
    for b in (temp, final):
        s3.head_bucket(Bucket=b)
    expect(eventbridge_alone(s3, temp), f"{temp} has notifications other than EventBridge")
    env = client("lambda").get_function_configuration(
        FunctionName=stack_function(client, "wdiv-s3-trigger")
    )["Environment"]["Variables"]
    for on in ("GITHUB_API_KEY", "WDIV_API_KEY", "SENTRY_DSN"):
        expect(env[on].startswith("ssm:/wdiv_s3_trigger/"), f"the function's {on} is {env[on]!r}")
    for on in ("GITHUB_REPO", "WDIV_WEBHOOK_URL", "ERROR_REPORT_EMAIL"):
        expect(env[on] != "", f"the function has no {on}")
    expect(env["SERVER_ENVIRONMENT"] == "production", "the function is not production")
    expect(env["TEMP_BUCKET_NAME"] == temp, "the function's TEMP_BUCKET_NAME")
    objects = s3.list_objects_v2(Bucket=temp).get("Contents", [])
    expect(any(o["Key"].endswith("/stations.csv") for o in objects), "the fixture was not uploaded")
    expect("post webhook" in out and "open issue" in out,
           "the dry-run replay did not show the production plan (webhook, issue)")


def setup_existing(client):
    """What the CDK installation has, as moto can hold it."""
    ssm = client("ssm")
    old = {
        "/wdiv_s3_trigger/TEMP_BUCKET_NAME": ("String", "pollingstations-uploads-temp"),
        "/wdiv_s3_trigger/FINAL_BUCKET_NAME": ("String", "pollingstations-uploads-final"),
        "/wdiv_s3_trigger/GITHUB_REPO": ("String", "DemocracyClub/UK-Polling-Stations"),
        "/wdiv_s3_trigger/ERROR_REPORT_EMAIL": ("String", "pollingstations@democracyclub.org.uk"),
        # A SecureString where the stack needs a String: the docs turn it into one.
        "/wdiv_s3_trigger/WDIV_WEBHOOK_URL": ("SecureString", "https://wheredoivote.co.uk/api/beta/uploads/"),
        "/wdiv_s3_trigger/GITHUB_API_KEY": ("SecureString", "ghp_old_installation"),
        "/wdiv_s3_trigger/SENTRY_DSN": ("SecureString", "https://old@sentry.example.org/2"),
    }
    for name, (ptype, value) in old.items():
        ssm.put_parameter(Name=name, Type=ptype, Value=value)
    s3 = client("s3")
    for b in ("pollingstations-uploads-temp", "pollingstations-uploads-final"):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": dm.REGION})
    iam = client("iam")
    role = iam.create_role(
        RoleName="old-installation",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
             "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    code = dm.upload_artifact(client, "old/bootstrap.zip")
    old_fn = client("lambda").create_function(
        FunctionName="WdivS3TriggerStack-Function",
        Runtime="python3.12", Role=role, Handler="handler.main",
        Code={"S3Bucket": dm.ARTIFACT_BUCKET, "S3Key": code.split("/", 3)[3]},
    )["FunctionArn"]
    client("logs").create_log_group(logGroupName="/aws/lambda/WdivS3TriggerStack-Function")
    s3.put_bucket_notification_configuration(
        Bucket="pollingstations-uploads-temp",
        NotificationConfiguration={"LambdaFunctionConfigurations": [
            {"LambdaFunctionArn": old_fn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    say("the existing installation set up on moto: its SSM parameters (WDIV_WEBHOOK_URL a "
        "SecureString, no WDIV_API_KEY), its buckets, the old function the uploads bucket notifies")
    return old


def check_existing(client, old):
    ssm = client("ssm")
    for name, (_, value) in old.items():
        p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        expect(p["Value"] == value, f"{name} changed value")
        if not name.endswith(("GITHUB_API_KEY", "SENTRY_DSN")):
            expect(p["Type"] == "String", f"{name} is still a {p['Type']}")
    p = ssm.get_parameter(Name="/wdiv_s3_trigger/WDIV_API_KEY", WithDecryption=True)["Parameter"]
    expect((p["Type"], p["Value"]) == ("SecureString", TYPED["WDIV_API_KEY"]), "WDIV_API_KEY")
    expect(eventbridge_alone(client("s3"), "pollingstations-uploads-temp"),
           "the uploads bucket still notifies the old function")
    env = client("lambda").get_function_configuration(
        FunctionName=stack_function(client, "wdiv-s3-trigger")
    )["Environment"]["Variables"]
    expect(env["WDIV_API_KEY"] == "ssm:/wdiv_s3_trigger/WDIV_API_KEY", "the webhook's key is off")
    expect(env["TEMP_BUCKET_NAME"] == "pollingstations-uploads-temp", "TEMP_BUCKET_NAME")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "sam-stand-in":
        return sam_stand_in(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto's server; it is reset")
    ap.add_argument("--binary", required=True, help="the wdiv-s3-trigger binary")
    args = ap.parse_args()
    for tool in ("bash", "jq"):
        if not shutil.which(tool):
            sys.exit(f"error: the docs' commands need {tool}, which is not on PATH")
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        sys.exit(f"error: no AWS CLI beside {sys.executable}")
    blocks = marked_blocks(DOC.read_text())
    listed = [b for _, names in SECTIONS for b in names]
    if sorted(blocks) != sorted(listed):
        sys.exit(f"error: docs/operations.md marks {sorted(blocks)}; the walk-through follows "
                 f"{sorted(listed)}: update SECTIONS with the docs")

    started = time.monotonic()
    client = dm.clients(args.endpoint)
    with tempfile.TemporaryDirectory(prefix="wdiv-walkthrough-") as tmp:
        tmp = Path(tmp)
        # The operator's checkout (the docs' relative paths), a home without AWS settings, the
        # binary on PATH, and AWS CLI v1 first.
        work = tmp / "checkout"
        work.mkdir()
        for item in ("fixtures", "settings", "samconfig.toml", "deploy", "docs"):
            src = ROOT / item
            (work / item).symlink_to(src) if item != "settings" else shutil.copytree(src, work / item)
        (tmp / "home").mkdir()
        (tmp / "bin").mkdir()
        (tmp / "bin" / "wdiv-s3-trigger").symlink_to(Path(args.binary).resolve())
        (tmp / "state").mkdir()
        env = {
            "PATH": f"{aws.parent}:{tmp / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "AWS_ENDPOINT_URL": args.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "WALK_ENDPOINT": args.endpoint,
            "WALK_STATE": str(tmp / "state"),
            "WALK_WORKDIR": str(work),
            "WALK_PYTHON": sys.executable,
            "WALK_SCRIPT": str(Path(__file__).resolve()),
            "LANG": "C.UTF-8",
        }

        reset_moto(args.endpoint)
        out = run_section(SECTIONS[0][0], SECTIONS[0][1], blocks, env,
                          prompts(blocks["zero-ssm"]))
        check_zero(client, blocks, out)
        say("Deploy from zero: the parameters hold what was given, the buckets exist with "
            "EventBridge on, the stack is production with every effect on, the dry-run replay "
            "shows the plan")

        reset_moto(args.endpoint)
        (tmp / "state" / "built.json").unlink(missing_ok=True)
        old = setup_existing(client)
        run_section(SECTIONS[1][0], SECTIONS[1][1], blocks, env, prompts(blocks["existing-ssm"]))
        check_existing(client, old)
        say("Deploy over the existing installation: the parameters are Strings with their "
            "values, WDIV_API_KEY made, the stack up, the bucket's events to EventBridge alone")

        say("a second release, for Roll back: sam build && sam deploy through the stand-ins")
        for cmd in (["build"], ["deploy"]):
            subprocess.run([sys.executable, __file__, "sam-stand-in", *cmd], env={**os.environ, **env},
                           check=True)
        lam = client("lambda")
        fn = stack_function(client, "wdiv-s3-trigger")
        before = int(lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"])
        expect(before >= 2, f"the second release is version {before}")
        run_section(SECTIONS[2][0], SECTIONS[2][1], blocks, env, [])
        after = int(lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"])
        expect(after == before - 1, f"live is version {after}, not {before - 1}")
        say(f"Roll back: live went from version {before} to {after}")
    say(f"all three sections followed as written, in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
