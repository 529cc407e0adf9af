#!/usr/bin/env python3
"""The Lambda binary under cargo-lambda's Runtime API emulator, against an S3 emulator (moto).

What it proves: the binary we ship serves invocations the way an emulator nobody here wrote
hands them out (`cargo lambda watch`), and an S3 event sent with `cargo lambda invoke` ends with
the upload's files and `report.json` in the final bucket.

    python scripts/emulator_smoke.py --binary PATH --s3-endpoint URL [--cargo-lambda PATH]

It needs boto3 (moto's venv has it) and cargo-lambda. Steps:

1. Two fresh buckets in the S3 emulator; the fixture Democracy Counts pair is put into the temp
   bucket under `{council}/{date}/{timestamp}/`, as the website does.
2. `cargo lambda watch --only-lambda-apis` serves the Runtime API on a free loopback port; the
   binary is started with the environment it prints (a prebuilt binary: `watch` would otherwise
   build the crate itself, in debug, under its own flags).
3. One `cargo lambda invoke --data-file EVENT` per object, as S3 sends one event per object.
4. The final bucket must hold both files, byte for byte, and a `report.json` naming them, valid.

The external effects (GitHub, email, CloudFront, webhook, Sentry) are off: their settings are not
set. Council names come from a stub on a loopback port. Every process started here is stopped on
the way out, whatever happens.
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "uploads" / "democracy-counts"
FILES = ["stations.csv", "districts.csv"]
COUNCIL = "E07000223"
COUNCIL_NAME = "Tendring District Council"
ELECTION_DATE = "2024-05-02"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: {what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"error: {what} did not listen on 127.0.0.1:{port} within {timeout} s")


class CouncilStub(http.server.BaseHTTPRequestHandler):
    """WDIV's `/councils/{id}.json`, so the report carries a real name and no call leaves."""

    def do_GET(self):
        if self.path.endswith(f"/councils/{COUNCIL}.json"):
            body = json.dumps({"name": COUNCIL_NAME}).encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def s3_event(bucket, key, size, etag):
    """An `ObjectCreated:Put` notification as S3 sends it (keys form-encoded: `+` is a space)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-2",
                "eventTime": "2024-04-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "emulator-smoke",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": urllib.parse.quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": "0A1B2C3D4E5F678901",
                    },
                },
            }
        ]
    }


def stop(proc, name):
    """Stops a process group started here: TERM, then KILL after 5 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
    print(f"stopped {name} (pid {proc.pid})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", required=True, help="the function's binary (built for this machine)")
    ap.add_argument("--s3-endpoint", required=True, help="the S3 emulator, e.g. moto's server")
    ap.add_argument("--cargo-lambda", default=shutil.which("cargo-lambda") or "cargo-lambda")
    ap.add_argument("--timeout", type=float, default=120, help="seconds for each invocation")
    args = ap.parse_args()

    import boto3  # moto's venv has it

    binary = Path(args.binary).resolve()
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: {binary} is not an executable file")
    s3 = boto3.client(
        "s3",
        endpoint_url=args.s3_endpoint,
        region_name="eu-west-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    run_id = uuid.uuid4().hex[:8]
    temp, final = f"wdiv-smoke-temp-{run_id}", f"wdiv-smoke-final-{run_id}"
    for bucket in (temp, final):
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
    prefix = f"{COUNCIL}/{ELECTION_DATE}/2024-04-01T12:00:00.{int(run_id, 16) % 1000000:06d}"
    uploaded = {}
    for name in FILES:
        body = (FIXTURE / name).read_bytes()
        key = f"{prefix}/{name}"
        etag = s3.put_object(Bucket=temp, Key=key, Body=body)["ETag"].strip('"')
        uploaded[key] = (body, etag)
    print(f"put {len(uploaded)} files under s3://{temp}/{prefix}/")

    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CouncilStub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()

    work = Path(tempfile.mkdtemp(prefix="wdiv-emulator-smoke-"))
    watch = function = None
    port = free_port()
    try:
        watch_log = open(work / "watch.log", "wb")
        watch = subprocess.Popen(
            [args.cargo_lambda, "lambda", "watch", "--only-lambda-apis",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
            cwd=ROOT, stdout=watch_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(port, watch, "cargo lambda watch", 60)
        print(f"cargo lambda watch: Runtime API at 127.0.0.1:{port}/.rt (pid {watch.pid})")

        # The environment Lambda gives a function (what `watch` prints), the settings, and
        # nothing else from ours: no setting of an external effect leaks in.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt",
            "AWS_LAMBDA_FUNCTION_NAME": "_",
            "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_REGION": "eu-west-2",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": args.s3_endpoint,
            "TEMP_BUCKET_NAME": temp,
            "FINAL_BUCKET_NAME": final,
            "WDIV_API_URL": f"http://127.0.0.1:{stub.server_address[1]}/api",
        }
        function_log = open(work / "function.log", "wb")
        function = subprocess.Popen(
            [str(binary)], env=env, cwd=work, stdout=function_log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        for key, (body, etag) in uploaded.items():
            event_file = work / f"event-{Path(key).name}.json"
            event_file.write_text(json.dumps(s3_event(temp, key, len(body), etag)))
            started = time.monotonic()
            invoke = subprocess.Popen(
                [args.cargo_lambda, "lambda", "invoke", "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(port), "--data-file", str(event_file),
                 "--output-format", "json"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )
            # The emulator holds an invocation until a runtime takes it: watch the function too.
            while invoke.poll() is None:
                if function.poll() is not None:
                    stop(invoke, "cargo lambda invoke")
                    fail(work, f"the function exited with {function.returncode}")
                if time.monotonic() - started > args.timeout:
                    stop(invoke, "cargo lambda invoke")
                    fail(work, f"no answer to the invocation within {args.timeout} s")
                time.sleep(0.05)
            out, err = invoke.communicate()
            if invoke.returncode != 0:
                fail(work, f"cargo lambda invoke failed ({invoke.returncode}):\n{out}{err}")
            answer = json.loads(out)
            actions = [f"{a['action']} {a['result']['result']}"
                       for u in answer["uploads"] for a in (u["actions"] or [])]
            print(f"invoked for {Path(key).name} in {time.monotonic() - started:.2f} s: "
                  f"{'; '.join(actions)}")

        check_final_bucket(s3, final, prefix, uploaded, work)
    finally:
        stop(function, "the function")
        stop(watch, "cargo lambda watch")
        stub.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    print("emulator smoke test passed")


def check_final_bucket(s3, final, prefix, uploaded, work):
    listed = s3.list_objects_v2(Bucket=final, Prefix=prefix + "/").get("Contents", [])
    keys = sorted(o["Key"] for o in listed)
    expected = sorted([*uploaded, f"{prefix}/report.json"])
    if keys != expected:
        fail(work, f"final bucket holds {keys}, expected {expected}")
    for key, (body, _) in uploaded.items():
        got = s3.get_object(Bucket=final, Key=key)["Body"].read()
        if got != body:
            fail(work, f"s3://{final}/{key} is not the uploaded file ({len(got)} bytes)")
    report = json.loads(s3.get_object(Bucket=final, Key=f"{prefix}/report.json")["Body"].read())
    problems = []
    for field, want in [("gss", COUNCIL), ("council_name", COUNCIL_NAME),
                        ("election_date", ELECTION_DATE),
                        ("timestamp", prefix.rsplit("/", 1)[1])]:
        if report.get(field) != want:
            problems.append(f"{field} is {report.get(field)!r}, expected {want!r}")
    files = {f["key"]: f for f in report.get("file_set", [])}
    if sorted(files) != sorted(uploaded):
        problems.append(f"file_set names {sorted(files)}, expected {sorted(uploaded)}")
    for key, f in files.items():
        if f.get("csv_valid") is not True or f.get("ems") != "Democracy Counts":
            problems.append(f"{key}: csv_valid {f.get('csv_valid')!r}, ems {f.get('ems')!r}")
    if problems:
        fail(work, "report.json: " + "; ".join(problems) + f"\n{json.dumps(report, indent=1)}")
    print(f"final bucket: {len(uploaded)} files byte for byte and report.json "
          f"({report['council_name']}, {len(files)} valid files)")


def fail(work, message):
    for log in ("function.log", "watch.log"):
        path = work / log
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-30:]
            print(f"--- last lines of {log}", *tail, sep="\n", file=sys.stderr)
    raise SystemExit(f"error: {message}")


if __name__ == "__main__":
    main()
