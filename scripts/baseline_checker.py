#!/usr/bin/env python3
"""Python baseline for the benchmark: the original checker's CSV pass.

Usage:
    python3 scripts/baseline_checker.py FILE

Does what the original Python checker did with an uploaded file, the slow way
on purpose (it is the yardstick the Rust ``check`` command is compared with):

1. read the whole file into memory as bytes;
2. decode it, trying utf-8, then windows-1252, then latin-1;
3. guess the delimiter with ``csv.Sniffer().sniff(text[:10000], [",", "\\t"])``,
   using "," if the sniffer gives up (``csv.Error``);
4. run ``csv.reader`` over ``text.splitlines(True)`` with that delimiter and
   ``quotechar='"'``; take the first record as the header;
5. count every record and compare its length with the header's, stopping at
   the first record that is shorter (the file is then not valid).

Prints one JSON object on stdout, e.g.
``{"rows": 371234, "encoding": "utf-8", "delimiter": ",", "valid": true, "error": null}``
where ``rows`` counts records *including* the header line (the original
``csv_rows``), or up to and including the first short record. Exit status is
0 for a valid file, 1 for an invalid one, 2 for a usage error.
"""

import csv
import json
import sys

ENCODINGS = ("utf-8", "windows-1252", "latin-1")


def decode(raw):
    failure = None
    for name in ENCODINGS:
        try:
            return raw.decode(name), name
        except UnicodeDecodeError as exc:
            failure = exc
    raise failure  # not reached: latin-1 accepts any byte


def sniff_delimiter(sample):
    try:
        return csv.Sniffer().sniff(sample, [",", "\t"]).delimiter
    except csv.Error:
        return ","


def check(path):
    result = {"rows": None, "encoding": None, "delimiter": None, "valid": False,
              "error": None}
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        result["error"] = "file is empty"
        return result
    try:
        text, result["encoding"] = decode(raw)
    except UnicodeDecodeError:
        result["error"] = "could not decode with any expected encoding"
        return result
    delimiter = result["delimiter"] = sniff_delimiter(text[:10000])
    try:
        reader = csv.reader(text.splitlines(True), delimiter=delimiter, quotechar='"')
        header = next(reader)
        width = len(header)
        if width < 3:
            result["error"] = f"only {width} columns: delimiter not detected?"
            return result
        rows = 1
        for record in reader:
            rows += 1
            if len(record) < width:
                result["rows"] = rows
                result["error"] = (f"row {rows} has {len(record)} columns, "
                                   f"expected {width}")
                return result
        result["rows"] = rows
        result["valid"] = True
    except (csv.Error, StopIteration) as exc:
        result["error"] = f"could not parse: {exc}"
    return result


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    result = check(argv[1])
    print(json.dumps(result))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
