#!/usr/bin/env python3
"""The Lambda envelope, measured: the figures of docs/operations.md's "Lambda envelope" section.

    python3 scripts/envelope.py [--runs N] [--ready-runs N] [--skip-build] [--artifact ZIP]

1. Makes the 149 MB Xpress DC file (scripts/gen_xpress_dc.py; kept under target/bench-data).
2. Builds the release binary and `examples/envelope.rs` (`cargo build --release`), which runs
   the binary as Lambda runs it, against the in-process S3 fake and the fake Runtime API.
3. For each of --runs runs: start-up to ready (spawn to the first Runtime API `next` request,
   median of --ready-runs), then one cold invocation of a 149 MB upload: the time from the spawn
   to the answer, and the whole process's peak RSS and CPU time.
4. The artifact: the size of `bootstrap.zip` and `bootstrap` from `cargo lambda build` (the
   newest under target/lambda, or --artifact), and the architecture it was built for.

Prints that table (medians, min-max) and the timeout it recommends, and exits 1 when the
peak RSS is over 64 MB (the bound that makes the 128 MB function safe). Uses CARGO_TARGET_DIR
when set. The machine may be shared: say when and under what load the figures were taken.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RSS_LIMIT_MB = 64
# Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB.
FULL_VCPU_MB = 1769


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def elf_machine(path):
    """The ELF e_machine of a binary: the architecture it runs on."""
    with open(path, "rb") as f:
        head = f.read(20)
    machine = int.from_bytes(head[18:20], "little")
    return {0x3E: "x86_64", 0xB7: "arm64"}.get(machine, f"machine {machine:#x}")


def artifact(zip_arg):
    if zip_arg:
        zips = [Path(zip_arg)]
    else:
        zips = sorted((TARGET / "lambda").glob("*/bootstrap.zip"), key=lambda p: p.stat().st_mtime)
    if not zips:
        return None
    z = zips[-1]
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("bootstrap")
        with zf.open(info) as f:
            head = f.read(20)
    machine = int.from_bytes(head[18:20], "little")
    return {
        "zip": str(z),
        "zip_bytes": z.stat().st_size,
        "bootstrap_bytes": info.file_size,
        "arch": {0x3E: "x86_64", 0xB7: "arm64"}.get(machine, f"machine {machine:#x}"),
        "built": time.strftime("%Y-%m-%d %H:%M", time.localtime(z.stat().st_mtime)),
    }


def mb(kib):
    return kib / 1024


def spread(values, fmt):
    values = sorted(values)
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(values[0])}–{fmt(values[-1])})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold invocations (default 3)")
    ap.add_argument("--ready-runs", type=int, default=9, help="start-ups per run (default 9)")
    ap.add_argument("--skip-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--artifact", help="bootstrap.zip to report (default: newest in target/lambda)")
    ap.add_argument("--data", default=str(TARGET / "bench-data" / "xpress-dc-149mb.csv"))
    ap.add_argument("--safety", type=float, default=3.0, help="timeout safety factor (default 3)")
    ap.add_argument("--s3-mb-per-s", type=float, default=20.0,
                    help="GetObject throughput assumed at 128 MB in AWS (default 20 MB/s)")
    args = ap.parse_args()

    data = Path(args.data)
    run([sys.executable, ROOT / "scripts" / "gen_xpress_dc.py", "--out", data],
        stdout=subprocess.DEVNULL)
    if not args.skip_build:
        run(["cargo", "build", "--release", "--locked", "--bin", "wdiv-s3-trigger",
             "--example", "envelope"], cwd=ROOT)
    binary = TARGET / "release" / "wdiv-s3-trigger"
    example = TARGET / "release" / "examples" / "envelope"

    results = []
    for i in range(args.runs):
        out = run([example, "--binary", binary, "--file", data,
                   "--ready-runs", str(args.ready_runs)], capture_output=True, text=True, cwd=ROOT)
        r = json.loads(out.stdout)
        print(f"run {i + 1}: ready {r['ready_ms_median']:.1f} ms, 149 MB end to end "
              f"{r['end_to_end_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS "
              f"{mb(r['peak_rss_kib']):.1f} MB", file=sys.stderr)
        results.append(r)

    art = artifact(args.artifact)
    rss = [mb(r["peak_rss_kib"]) for r in results]
    e2e = [r["end_to_end_s"] for r in results]
    cpu = [r["cpu_s"] for r in results]
    ready = [r["ready_ms_median"] for r in results]
    size = results[0]["object_bytes"]
    load = os.getloadavg()
    print()
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, "
          f"load average {load[0]:.2f}, {args.runs} runs ({elf_machine(binary)} release build):")
    print()
    print("| | median (min–max) |")
    print("|---|---|")
    print(f"| peak RSS, whole process, one {size / 1e6:.0f} MB object through S3 "
          f"| {spread(rss, lambda v: f'{v:.1f} MB')} |")
    print(f"| start-up to ready (exec to the first `next`) "
          f"| {spread(ready, lambda v: f'{v:.1f} ms')} |")
    print(f"| one {size / 1e6:.0f} MB upload end to end, cold (exec to the answer) "
          f"| {spread(e2e, lambda v: f'{v:.2f} s')} |")
    print(f"| CPU time of that invocation (user + system) "
          f"| {spread(cpu, lambda v: f'{v:.2f} s')} |")
    if art:
        print(f"| artifact ({art['arch']}, built {art['built']}) | bootstrap.zip "
              f"{art['zip_bytes'] / 1e6:.1f} MB, bootstrap {art['bootstrap_bytes'] / 1e6:.1f} MB |")
    else:
        print("| artifact | not built: run `cargo lambda build --release --arm64 "
              "--output-format zip` first |")

    # At 128 MB Lambda gives the function 128/1769 of a vCPU, so CPU-bound work takes 1769/128
    # times its CPU time here. The download from real S3 is not on loopback: assume a throughput.
    worst_cpu = max(cpu)
    download = size / 1e6 / args.s3_mb_per_s
    at_128 = worst_cpu * FULL_VCPU_MB / 128 + download
    timeout = max(30, int(-(-at_128 * args.safety // 30) * 30))
    print()
    print(f"At 128 MB ({128 / FULL_VCPU_MB:.3f} vCPU) the worst run would take about "
          f"{at_128:.0f} s in AWS: CPU {worst_cpu:.2f} s × {FULL_VCPU_MB / 128:.1f} + "
          f"{download:.1f} s to download {size / 1e6:.0f} MB at {args.s3_mb_per_s:g} MB/s; "
          f"× {args.safety:g}, rounded up to 30 s → recommended timeout {timeout} s.")
    if max(rss) > RSS_LIMIT_MB:
        print(f"error: peak RSS {max(rss):.1f} MB is over {RSS_LIMIT_MB} MB", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
