#!/usr/bin/env python3
"""Benchmark `wdiv-s3-trigger check --json FILE` against the Python baseline and `wc -l`.

Usage (from anywhere; paths are resolved from the repository root):

    python3 scripts/bench.py                    # generate/reuse data, run both, check targets
    python3 scripts/bench.py --build            # `cargo build --release` first
    python3 scripts/bench.py --runs 15          # 15 measured rounds (default 9)
    python3 scripts/bench.py --order fixed      # every round in the same order (see below)
    python3 scripts/bench.py --skip-baseline    # no Python baseline (no speed-up figure)
    python3 scripts/bench.py --skip-wc          # no `wc -l` (no ratio to it)
    python3 scripts/bench.py --no-targets       # report only, never fail on a target
    python3 scripts/bench.py --bin PATH         # binary to test instead of the default
    python3 scripts/bench.py --ours-cmd "wc -l {file}"   # any stand-in command
    python3 scripts/bench.py --file some.csv    # a file of your own instead of the generated one
    python3 scripts/bench.py --json-out results.json     # also write the figures as JSON

What it does:

* Test data: ``bench-data/xpress-dc-149MB.csv`` (git-ignored), a synthetic
  Xpress DC file of at most 149,000,000 bytes (under the checker's
  150,000,000-byte limit; 148,999,788 bytes, 478,661 rows by default) made by
  ``scripts/gen_xpress_dc.py`` (seeded, so identical every time); reused when
  already present with the right size (see its ``.meta.json``).
* Commands: ours is ``<bin> check --json FILE`` where ``<bin>`` is
  ``$CARGO_TARGET_DIR/release/wdiv-s3-trigger`` (``target/`` under the repo if
  the variable is unset; a relative value is taken from the repo root), or
  ``--bin``, or the whole ``--ours-cmd`` template (``{file}`` is replaced by the
  data file; appended if absent). The baseline is
  ``python3 scripts/baseline_checker.py FILE`` (with this interpreter), which
  reads, decodes, sniffs and csv-parses the file the way the original Python
  checker did. The floor is ``wc -l FILE``: the least any tool that reads the
  whole file and finds its line breaks does.
* Measuring: per command one warm-up run (page cache warm, not counted), then
  ``--runs`` measured rounds; each round runs every command once, in turn, so
  a burst of load on a shared machine falls on all of them alike rather than
  on one command's whole series. Round i starts with command i (``--order
  rotate``, the default), so no command always runs right after the same one:
  on the VMs this was measured on, a run straight after the Python baseline
  (which ends by freeing ~500 MB) is ~10 ms slower than after another command,
  and with a fixed order that fell on ours in every round. ``--order fixed``
  gives the old order (baseline, wc -l, ours) to compare. Wall time is taken around spawn..reap. Peak RSS is the command's ``ru_maxrss`` (KiB): by default as
  reported by GNU ``/usr/bin/time -f %M`` (Debian package ``time``), which
  forks the command from its own ~1 MB process; without it (or with
  ``--rss-method wait4``) from ``os.wait4`` on a direct child, where Linux
  carries the forking Python process's RSS (~14-17 MB) over into the figure as
  a floor. The floor is measured on ``true`` and printed; a figure at the
  floor is flagged as an upper bound.
  Reported: median and min wall time, throughput (file MB / median s), the
  maximum peak RSS over the runs, speed-up = baseline median / ours median,
  and the ratio to ``wc -l`` = ours median / wc median (each also per round,
  as the median of the round-by-round ratios, which the load moves less).
  MB means 10^6 bytes throughout (RSS too: KiB * 1024 / 10^6).
* Correctness: every run (warm-up included) of each command must exit 0 and
  report a row count; ours is read from its JSON (``file_set[0].csv_rows``),
  the baseline's from ``rows``; both count records including the header line.
  For a non-JSON stand-in the first integer on stdout is used (``wc -l`` gives
  the same figure for the generated file, which has one record per line).
  Both counts must agree with each other and, for the generated file, with the
  count recorded by the generator.
* Targets (``--target-speedup``, ``--target-wc-ratio``, ``--target-rss-mb``):
  speed-up >= 25x, ours at most 3x the time of ``wc -l``, our peak RSS <= 32 MB
  (issue 12, point 5). A ratio is not judged when its other command is skipped.

Exit status: 0 all fine; 1 a target missed; 2 a command failed or the row
counts disagree (or setup failed: binary missing, build failed, ...).
Nothing is built unless ``--build`` is given.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
import gen_xpress_dc  # noqa: E402

BIN_NAME = "wdiv-s3-trigger"
MB = 1_000_000


class BenchError(Exception):
    """A failure that makes the figures meaningless (exit status 2)."""


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or "target"
    if not os.path.isabs(target):
        target = os.path.join(REPO_ROOT, target)
    return os.path.join(target, "release", BIN_NAME)


def build():
    cmd = ["cargo", "build", "--release"]
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    rc = subprocess.call(cmd, cwd=REPO_ROOT)
    if rc != 0:
        raise BenchError(f"`cargo build --release` failed (exit status {rc})")


def expand(template, path):
    argv = shlex.split(template)
    if not argv:
        raise BenchError("empty command template")
    if any("{file}" in a for a in argv):
        return [a.replace("{file}", path) for a in argv]
    return argv + [path]


GNU_TIME = "/usr/bin/time"


def gnu_time_works():
    """True if GNU time is there and understands -f %M -o FILE."""
    if not os.access(GNU_TIME, os.X_OK):
        return False
    with tempfile.NamedTemporaryFile("r") as rep:
        try:
            rc = subprocess.call([GNU_TIME, "-f", "%M", "-o", rep.name, "true"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return rc == 0 and rep.read().strip().isdigit()


def run_once(argv, method):
    """Run argv to completion; return (wall s, peak RSS KiB, exit status, stdout, stderr).

    method "time": the command runs under GNU time, which forks it from its own
    small process and reports the child's ru_maxrss. method "wait4": the
    command is spawned directly and ru_maxrss comes from os.wait4; Linux keeps
    the high-water mark across fork+exec, so that figure is never below this
    Python process's own RSS at spawn time (the "floor", a few MB).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rep:
        full = [GNU_TIME, "-f", "%M", "-o", rep.name] + argv if method == "time" else argv
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd=REPO_ROOT)
        except OSError as exc:
            raise BenchError(f"cannot start {full[0]!r}: {exc}") from exc
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = rc = os.waitstatus_to_exitcode(status)  # already reaped
        maxrss = usage.ru_maxrss
        if method == "time":
            # Last line is %M; GNU time may put "Command exited with ..." before it.
            lines = rep.read().split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        out.seek(0)
        err.seek(0)
        return (wall, maxrss, rc, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"))


def rows_from_ours(stdout):
    """csv_rows from our JSON; else the first integer (for stand-in commands)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        try:
            return int(doc["file_set"][0]["csv_rows"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BenchError(
                f"our JSON has no file_set[0].csv_rows ({exc!r}): {stdout[:300]!r}")
    m = re.search(r"\d+", stdout)
    if not m:
        raise BenchError(f"cannot find a row count in our output: {stdout[:300]!r}")
    return int(m.group())


def rows_from_baseline(stdout):
    try:
        return int(json.loads(stdout)["rows"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"cannot read rows from baseline output ({exc!r}): "
                         f"{stdout[:300]!r}")


def measure(commands, runs, method, order="rotate"):
    """Times every command: one warm-up each, then `runs` rounds of one run each.

    commands: list of (name, argv, parse_rows). Returns one result dict per command.
    With order "rotate", round i starts at command i (mod their number), so that no command
    always follows the same one; with "fixed", every round runs them in the order given.
    """
    for name, argv, _ in commands:
        print(f"{name}: $ {shlex.join(argv)}", file=sys.stderr, flush=True)
    state = {name: {"walls": [], "rss": [], "rows": set()} for name, _, _ in commands}
    for i in range(runs + 1):  # round 0 is the warm-up
        label = "warm-up" if i == 0 else f"round {i}/{runs}"
        shown = []
        start = i % len(commands) if order == "rotate" else 0
        for name, argv, parse_rows in commands[start:] + commands[:start]:
            wall, maxrss, rc, out, err = run_once(argv, method)
            if rc != 0:
                raise BenchError(
                    f"{name} exited with status {rc} (round {i}, 0 = warm-up)\n"
                    f"  stdout: {out.strip()[:500]}\n  stderr: {err.strip()[:500]}")
            st = state[name]
            st["rows"].add(parse_rows(out))
            shown.append(f"{name} {wall:.3f} s {maxrss * 1024 / MB:.1f} MB")
            if i:
                st["walls"].append(wall)
                st["rss"].append(maxrss)
        print(f"  {label}: " + "; ".join(shown), file=sys.stderr, flush=True)
    results = []
    for name, argv, _ in commands:
        st = state[name]
        if len(st["rows"]) != 1:
            raise BenchError(f"{name} reported different row counts across runs: "
                             f"{sorted(st['rows'])}")
        walls, rss = st["walls"], st["rss"]
        results.append({
            "tool": name,
            "argv": argv,
            "runs": runs,
            "walls_s": walls,
            "median_s": statistics.median(walls),
            "min_s": min(walls),
            "peak_rss_kib": max(rss),
            "peak_rss_mb": max(rss) * 1024 / MB,
            "rows": st["rows"].pop(),
        })
    return results


def ratio(num, den):
    """median(num) / median(den), and the median of the round-by-round ratios."""
    whole = num["median_s"] / den["median_s"] if den["median_s"] else float("inf")
    per_round = statistics.median(
        a / b if b else float("inf") for a, b in zip(num["walls_s"], den["walls_s"]))
    return whole, per_round


def print_table(results, size_bytes):
    size_mb = size_bytes / MB
    head = ("tool", "file MB", "median s", "min s", "MB/s", "peak RSS MB", "rows")
    lines = [head]
    for r in results:
        r["throughput_mb_s"] = size_mb / r["median_s"] if r["median_s"] else float("inf")
        lines.append((r["tool"], f"{size_mb:.1f}", f"{r['median_s']:.3f}",
                      f"{r['min_s']:.3f}", f"{r['throughput_mb_s']:.1f}",
                      f"{r['peak_rss_mb']:.1f}", f"{r['rows']:,}"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    for n, row in enumerate(lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main():
    p = argparse.ArgumentParser(
        description="Benchmark `wdiv-s3-trigger check` against the Python baseline.",
        epilog="See the docstring of scripts/bench.py for details.")
    p.add_argument("--runs", type=int, default=9,
                   help="measured rounds (one run of each command), after one warm-up "
                        "(default 9)")
    p.add_argument("--order", choices=["rotate", "fixed"], default="rotate",
                   help="rotate: round i starts with command i, so no command always runs "
                        "right after the same one (default); fixed: baseline, wc -l, ours "
                        "in every round")
    p.add_argument("--bin", help="binary under test (default: "
                   "$CARGO_TARGET_DIR or target/, then release/" + BIN_NAME + ")")
    p.add_argument("--ours-cmd", metavar="TEMPLATE",
                   help='command under test instead of "<bin> check --json {file}", '
                        'e.g. "wc -l {file}" as a stand-in')
    p.add_argument("--skip-baseline", action="store_true", help="do not run the Python baseline")
    p.add_argument("--skip-wc", action="store_true", help="do not run `wc -l`")
    p.add_argument("--no-targets", action="store_true",
                   help="report only; do not fail when a target is missed")
    p.add_argument("--target-speedup", type=float, default=25.0,
                   help="minimum baseline/ours median ratio (default %(default)s)")
    p.add_argument("--target-wc-ratio", type=float, default=3.0,
                   help="maximum ours/`wc -l` median ratio (default %(default)s)")
    p.add_argument("--target-rss-mb", type=float, default=32.0,
                   help="maximum peak RSS of ours in MB (default %(default)s)")
    p.add_argument("--build", action="store_true", help="run `cargo build --release` first")
    p.add_argument("--file", help="benchmark this file instead of the generated one")
    p.add_argument("--data-size", type=int, default=gen_xpress_dc.DEFAULT_SIZE,
                   help="size limit in bytes of the generated file (default %(default)s)")
    p.add_argument("--seed", type=int, default=gen_xpress_dc.DEFAULT_SEED,
                   help="generator seed (default %(default)s)")
    p.add_argument("--json-out", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--rss-method", choices=("auto", "time", "wait4"), default="auto",
                   help="how peak RSS is taken: GNU time (%s), os.wait4, or auto = "
                        "the first if present (default %%(default)s)" % GNU_TIME)
    a = p.parse_args()
    if a.runs < 1:
        p.error("--runs must be at least 1")
    if a.bin and a.ours_cmd:
        p.error("give --bin or --ours-cmd, not both")

    try:
        if a.build:
            build()

        expected_rows = None
        if a.file:
            data = os.path.abspath(a.file)
            if not os.path.isfile(data):
                raise BenchError(f"no such file: {data}")
        else:
            data = gen_xpress_dc.DEFAULT_OUT
            if a.data_size != gen_xpress_dc.DEFAULT_SIZE or \
                    a.seed != gen_xpress_dc.DEFAULT_SEED:
                data = os.path.join(os.path.dirname(data),
                                    f"xpress-dc-{a.data_size}-seed{a.seed}.csv")
            meta = gen_xpress_dc.ensure_dataset(data, a.data_size, a.seed)
            expected_rows = meta["csv_rows"]
        size = os.path.getsize(data)

        if a.ours_cmd:
            ours_argv = expand(a.ours_cmd, data)
        else:
            binary = os.path.abspath(a.bin) if a.bin else default_binary()
            if not os.path.isfile(binary):
                raise BenchError(
                    f"binary not found: {binary}\n"
                    "  build it (`cargo build --release`, or rerun with --build), "
                    "or pass --bin PATH / --ours-cmd TEMPLATE")
            ours_argv = [binary, "check", "--json", data]

        method = a.rss_method
        if method == "auto":
            method = "time" if gnu_time_works() else "wait4"
        elif method == "time" and not gnu_time_works():
            raise BenchError(f"--rss-method time: {GNU_TIME} missing or not GNU time "
                             "(Debian package `time`)")
        floor_kib = run_once(["true"], method)[1]

        commands = []
        if not a.skip_baseline:
            base_argv = [sys.executable, os.path.join(SCRIPTS, "baseline_checker.py"), data]
            commands.append(("baseline (python)", base_argv, rows_from_baseline))
        if not a.skip_wc:
            commands.append(("wc -l", ["wc", "-l", data], rows_from_ours))
        commands.append(("ours", ours_argv, rows_from_ours))
        results = measure(commands, a.runs, method, a.order)
    except BenchError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 2

    by_tool = {r["tool"]: r for r in results}
    ours = by_tool["ours"]
    base = by_tool.get("baseline (python)")
    wc = by_tool.get("wc -l")
    print()
    print(f"file: {os.path.relpath(data, REPO_ROOT) if data.startswith(REPO_ROOT) else data}"
          f" ({size:,} bytes); {a.runs} rounds of one run per command after 1 warm-up;"
          f" MB = 10^6 bytes")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
          f" on {os.cpu_count()} CPUs")
    print(f"peak RSS via {'GNU time' if method == 'time' else 'os.wait4'}, whose floor "
          f"(measured on `true`) is {floor_kib * 1024 / MB:.1f} MB")
    print_table(results, size)
    print()

    errors, misses = [], []
    # Row counts.
    # `wc -l` counts lines, which are records only in the generated file (no quoted line break).
    counts = [(r["tool"], r["rows"]) for r in results
              if r is not wc or expected_rows is not None]
    if expected_rows is not None:
        counts.append(("generator", expected_rows))
    agree = len({n for _, n in counts}) == 1
    print("rows:     " + ", ".join(f"{t} {n:,}" for t, n in counts)
          + ("  OK" if agree else "  MISMATCH"))
    if not agree:
        errors.append("row counts disagree: " + ", ".join(f"{t} {n}" for t, n in counts))
    if ours["peak_rss_kib"] <= floor_kib * 1.02:
        print(f"note:     our peak RSS is at the measuring floor; the true figure may be lower"
              + ("" if method == "time" else " (install GNU time for a tighter one)"))

    # Targets.
    speedup = wc_ratio = None
    if base:
        speedup, per_round = ratio(base, ours)
        ok = speedup >= a.target_speedup
        print(f"speed-up: {speedup:.1f}x (baseline median / ours median; per round "
              f"{per_round:.1f}x); target >= {a.target_speedup:g}x  {'OK' if ok else 'MISSED'}")
        if not ok:
            misses.append(f"speed-up {speedup:.1f}x is below the target "
                          f"{a.target_speedup:g}x")
    else:
        print(f"speed-up: n/a (--skip-baseline); target >= {a.target_speedup:g}x not judged")
    if wc:
        wc_ratio, per_round = ratio(ours, wc)
        ok = wc_ratio <= a.target_wc_ratio
        print(f"vs wc -l: {wc_ratio:.2f}x (ours median / wc -l median; per round "
              f"{per_round:.2f}x); target <= {a.target_wc_ratio:g}x  "
              f"{'OK' if ok else 'MISSED'}")
        if not ok:
            misses.append(f"ours takes {wc_ratio:.2f}x the time of wc -l, above the target "
                          f"{a.target_wc_ratio:g}x")
    else:
        print(f"vs wc -l: n/a (--skip-wc); target <= {a.target_wc_ratio:g}x not judged")
    ok = ours["peak_rss_mb"] <= a.target_rss_mb
    print(f"peak RSS: ours {ours['peak_rss_mb']:.1f} MB; target <= {a.target_rss_mb:g} MB"
          f"  {'OK' if ok else 'MISSED'}")
    if not ok:
        misses.append(f"our peak RSS {ours['peak_rss_mb']:.1f} MB is above the target "
                      f"{a.target_rss_mb:g} MB")

    if a.json_out:
        doc = {"file": data, "bytes": size, "runs": a.runs, "results": results,
               "rss_method": method, "rss_floor_kib": floor_kib,
               "expected_rows": expected_rows, "speedup": speedup, "wc_ratio": wc_ratio,
               "load_average": os.getloadavg(),
               "targets": {"speedup": a.target_speedup, "wc_ratio": a.target_wc_ratio,
                           "rss_mb": a.target_rss_mb},
               "targets_missed": misses, "errors": errors}
        with open(a.json_out, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    if errors:
        for e in errors:
            print(f"ERROR: {e}", file=sys.stderr)
        return 2
    if misses:
        for m in misses:
            print(f"TARGET MISSED: {m}"
                  + (" (reported only: --no-targets)" if a.no_targets else ""),
                  file=sys.stderr)
        return 0 if a.no_targets else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
