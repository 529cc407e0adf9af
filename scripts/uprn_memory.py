#!/usr/bin/env python3
"""Peak memory of `check --json` on a 500,000-row upload, with and without the UPRN checks.

Usage:
    python3 scripts/uprn_memory.py [--binary PATH] [--rows N]

Writes two made-up Xpress WebLookup style files of N rows (default 500,000) with a distinct
12-digit UPRN on every row, in a temporary folder: one whose header names the `UPRN` column
(so the profile's UPRN checks run and every UPRN is kept to look for repeats), and the same
file with that column renamed (so no UPRN check runs). Each is checked three times under
/usr/bin/time; the lowest peak RSS of each is printed, and the difference, which is what the
UPRN checks cost. The binary defaults to $CARGO_TARGET_DIR (or target)/release, else /debug.
"""

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = ["AuthorityCode", "PropertyNumber", "StreetName", "PostCode",
          "PollingDistrictReference", "PollingPlaceId", "PollingPlaceAddress1",
          "PollingPlaceAddress2", "PollingPlaceAddress3", "PollingPlaceAddress4",
          "PollingPlaceAddress5", "PollingPlaceAddress6", "PollingPlaceAddress7",
          "UPRN", "PollingPlaceEasting", "PollingPlaceNorthing"]


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "wdiv-s3-trigger")
        if os.path.exists(path):
            return path
    sys.exit("no wdiv-s3-trigger binary found: cargo build first, or pass --binary")


def write(path, rows, uprn_header):
    header = list(HEADER)
    header[13] = uprn_header
    with open(path, "w", newline="") as out:
        out.write(",".join(header) + "\r\n")
        for i in range(rows):
            # A scattered order, as addresses sorted by street give: UPRNs are not sorted.
            uprn = 100_000_000_000 + (i * 7_919) % 900_000_000_000
            out.write(f'"99ZZ","{i % 200 + 1}","Acorn Way","LS29 4ND","AA1","101",'
                      f'"Ambleford Village Hall","Church Lane","Ambleford","","Wexley",'
                      f'"Loamshire","LS29 4PA","{uprn:012d}","412345","447890"\r\n')


def peak_kb(binary, path):
    best = None
    for _ in range(3):
        with tempfile.NamedTemporaryFile("r") as measured:
            run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", measured.name, binary,
                                  "check", "--json", path], capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"check failed on {path}: {run.stdout[:500]} {run.stderr[:500]}")
            kb = int(measured.read().strip().splitlines()[-1])
        best = kb if best is None else min(best, kb)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=None)
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    binary = args.binary or default_binary()
    with tempfile.TemporaryDirectory() as tmp:
        with_uprns = os.path.join(tmp, "uprns.csv")
        without = os.path.join(tmp, "no-uprn-column.csv")
        write(with_uprns, args.rows, "UPRN")
        write(without, args.rows, "NotAUprn")
        size = os.path.getsize(with_uprns)
        a, b = peak_kb(binary, with_uprns), peak_kb(binary, without)
    print(f"{binary}: {args.rows} rows, {size / 1e6:.1f} MB")
    print(f"peak RSS with the UPRN checks:    {a / 1024:.1f} MB")
    print(f"peak RSS without a UPRN column:   {b / 1024:.1f} MB")
    print(f"the UPRN checks cost:             {(a - b) / 1024:.1f} MB")


if __name__ == "__main__":
    main()
