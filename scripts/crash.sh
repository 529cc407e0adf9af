#!/bin/sh
# Crash consistency (issue 12, point 3): 200 seeded iterations of full pipeline runs SIGKILLed at
# random points, each event redelivered until a run ends with exit 0, then every effect checked.
# Prints the seed first and the figures last; a failure prints the seed, the iteration and the
# command that reruns it.
#
#   scripts/crash.sh                     # 200 iterations, a fresh seed
#   WDIV_CRASH_SEED=1 scripts/crash.sh   # the seed docs/testing.md's figures come from
#   WDIV_CRASH_ITERATIONS=1000 WDIV_CRASH_JOBS=8 scripts/crash.sh
#
# Uses CARGO_TARGET_DIR when set (the dev profile, as `cargo test`).
set -eu
cd "$(dirname "$0")/.."
export WDIV_CRASH_ITERATIONS="${WDIV_CRASH_ITERATIONS:-200}"
exec cargo test --test scenarios crash::sigkill -- --nocapture
