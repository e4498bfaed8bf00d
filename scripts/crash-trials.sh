#!/usr/bin/env bash
# Crash trials on their own: N runs of a diamond + map-reduce (dynamic children) + sweep
# workflow, each killed with -9 at random moments and resumed until it ends; checks that
# no succeeded task ran again, the results equal an uninterrupted run's, and SQLite's
# integrity_check passes. CI runs 10 (the default) with every test.
#
#   scripts/crash-trials.sh [N]     default 100
#
# Builds what it needs (build/), prints the time taken and ctest's summary.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
n="${1:-100}"
scripts/build.sh --quiet --targets '^(sluice|reliability_crash_trials_test)$'
export SLUICE_CRASH_TRIALS="$n"
start=$(date +%s)
set +e
# A trial takes a few seconds; allow a minute each under heavy load.
ctest --test-dir build --output-on-failure -L reliability -R 'reliability:kill -9 at random' \
  --timeout $(( 120 + 60 * n ))
rc=$?
set -e
echo "crash trials: $n in $(( $(date +%s) - start )) s, exit $rc"
exit "$rc"
