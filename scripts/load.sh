#!/bin/sh
# Load (issue 12, point 4): 200 uploads, 8 at once, each a `run -` of the program against the
# in-process fakes; checks each upload got exactly its effects and prints uploads/s, p50 and p99
# latency, CPU per run and the peak RSS of the program's processes.
#
#   scripts/load.sh             # the optimised program (cargo build --release), as Lambda runs it
#   scripts/load.sh --dev       # the dev build `cargo test` uses (no release build)
#   WDIV_LOAD_UPLOADS=1000 WDIV_LOAD_JOBS=16 scripts/load.sh
#
# The fakes run in the test process (dev profile) and share the machine with the program.
# Uses CARGO_TARGET_DIR when set.
set -eu
cd "$(dirname "$0")/.."
export WDIV_LOAD_UPLOADS="${WDIV_LOAD_UPLOADS:-200}"
target="${CARGO_TARGET_DIR:-target}"
if [ "${1:-}" != "--dev" ]; then
    cargo build --release --bin wdiv-s3-trigger
    WDIV_BIN="$(cd "$target" && pwd)/release/wdiv-s3-trigger"
    export WDIV_BIN
fi
exec cargo test --test scenarios load:: -- --nocapture
