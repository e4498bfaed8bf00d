#!/usr/bin/env bash
# Cost per awaited call of an orchestration on inproc: a chain of N sequential awaited
# calls against the same chain declared statically (a Flow), best of R runs each, in
# a fresh home (no cache). Prints one machine-readable line.
#
#   bench/orchestration_bench.sh [N=1000] [RUNS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
runs=${2:-3}
bin=${ORCHESTRATION_BENCH:-$root/build/bench/orchestration_bench}
[[ -x "$bin" ]] || "$root/scripts/build.sh" --quiet --targets '^orchestration_bench$'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
best() {  # best wall time in µs of `bin run` with shape $1
  local shape=$1 b=0 t0 t1 us
  for ((r = 0; r < runs; r++)); do
    rm -rf "$tmp/home"
    t0=$(date +%s%N)
    (cd "$tmp" && SLUICE_HOME="$tmp/home" ORCH_BENCH_SHAPE=$shape ORCH_BENCH_N=$n \
      "$bin" run --config inproc --no-cache -q >/dev/null)
    t1=$(date +%s%N)
    us=$(((t1 - t0) / 1000))
    ((b == 0 || us < b)) && b=$us
  done
  echo "$b"
}
own=$(cd "$tmp" && rm -rf home && SLUICE_HOME="$tmp/home" SLUICE_ORCH_PROFILE=1 \
  ORCH_BENCH_SHAPE=orch ORCH_BENCH_N=$n "$bin" run --config inproc --no-cache -q 2>&1 >/dev/null |
  sed -n 's/.*orchestration_profile.* per_call_us=\([0-9.]*\).*/\1/p')
orch=$(best orch)
flow=$(best flow)
awk -v n="$n" -v o="$orch" -v f="$flow" -v own="${own:-nan}" 'BEGIN {
  printf "workload=orchestration_chain n=%d own_per_call_us=%s orch_us=%d flow_us=%d per_call_us=%.1f per_static_task_us=%.1f extra_per_call_us=%.1f ok=1\n",
         n, own, o, f, o / n, f / n, (o - f) / n }'
