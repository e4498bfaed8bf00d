#!/usr/bin/env bash
# Many kill -9 trials of the bisection orchestration (examples/sdk/bisection.cpp): each
# prepares a run on the local backend, kills its coordinator at a random point, resumes
# it, and checks that the answer equals an uninterrupted run's and that no call that had
# succeeded before the kill ran again (counted from the calls' own log lines).
#
#   scripts/orch-crash-trials.sh [TRIALS=50] [BUILD_DIR=build]
set -euo pipefail
trials=${1:-50}
build=$(cd "${2:-build}" && pwd)
app=$build/examples/sdk/bisection
sluice=$build/launchers/sluice
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export SLUICE_HOME=$work/home
answer=$("$app" run --config inproc --no-cache | sed -n 's/^  bisect.return = //p')
echo "reference answer: $answer"
failures=0
for ((t = 1; t <= trials; t++)); do
  log=$work/calls-$t
  export SLUICE_EXAMPLE_CALL_LOG=$log SLUICE_EXAMPLE_SLEEP_MS=20
  id=$("$app" prepare --config local --no-cache)
  delay_ms=$((150 + RANDOM % 1500))
  "$app" start "$id" --no-cache -q >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' "$delay_ms")" 2>/dev/null || sleep 1
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 0.1
  before=$("$sluice" get "$id" --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["task_list"]:
    if t["state"] == "succeeded" and ".call-" in t["name"]: print(t["name"])')
  got=$("$app" resume "$id" --no-cache | sed -n 's/^  bisect.return = //p')
  reruns=0
  for task in $before; do
    n=$(grep -c "^$task " "$log" || true)
    [[ $n == 1 ]] || reruns=$((reruns + 1))
  done
  distinct=$(cut -d' ' -f1 "$log" | sort -u | wc -l)
  status=ok
  if [[ $got != "$answer" || $reruns != 0 || $distinct != 80 ]]; then
    status=FAIL
    failures=$((failures + 1))
  fi
  echo "trial $t: kill after ${delay_ms} ms, $(wc -w <<<"$before") calls had succeeded, $(wc -l <"$log") executions for 80 calls, reruns of succeeded calls: $reruns, answer $got: $status"
done
echo "trials: $trials, failures: $failures"
((failures == 0))
