#!/usr/bin/env bash
# Per-task overhead of function tasks: Sluice inproc (threads), Sluice local (a worker
# process per task) and Dask distributed, same workloads, one go. Prints one line each:
#   workload=functions tool=sluice-inproc|sluice-local|dask shape=indep|chain result=0|1 n=… wall_s=… us_per_task=… cache=1|0 ok=…
# (result=1: each task returns an int, packed by the coordinator into the store and
# run.h5, not a file per attempt: docs/artifacts.md; cache=0 rows
# ran with --no-cache, cache=1 rows with the cache on, the default)
#
#   bench/functions_bench.sh [BUILD_DIR]
#   N_INDEP=100000 N_CHAIN=10000 N_LOCAL=500 (defaults)
#   N_SWEEP=1000000 (default; 0 skips): the memory sweep, no-op tasks on inproc with the
#   cache on at n=1,000 and n=N_SWEEP, one line each:
#     workload=functions_sweep tool=sluice-inproc n=… wall_s=… us_per_task=… cpu_us_per_task=… max_rss_kib=… kib_per_task=… ok=…
#   (cpu: user+sys of the whole process, the function threads included; max RSS from
#   /usr/bin/time -v; kib_per_task = max RSS / n)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin=$build/bench/functions_bench
[[ -x $bin ]] || cmake --build "$build" --target functions_bench >&2
n_indep=${N_INDEP:-100000}
n_chain=${N_CHAIN:-10000}
n_local=${N_LOCAL:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SLUICE_HOME=$work/home

# cache=1: the default (each task looked up and filed in the cache); cache=0: --no-cache,
# the dispatch path alone. Each run gets a fresh home, so no run hits an earlier one's
# entries. Nor do a run's own entries serve it: the coordinator reads the cache's keys
# when the run starts, so identical no-op calls each run (and each is filed).
run_sluice() {  # TOOL CONFIG SHAPE N RESULT CACHE
  local flags=() home
  [[ $6 == 0 ]] && flags=(--no-cache)
  home=$(mktemp -d "$work/home.XXXX")
  SLUICE_HOME=$home FB_TOOL=$1 FB_SHAPE=$3 FB_N=$4 FB_RESULT=$5 \
    "$bin" run --config "$2" -q "${flags[@]}" | grep '^workload=' | sed "s/ ok=/ cache=$6 ok=/"
  rm -rf "$home"
}
for cache in 1 0; do
  run_sluice sluice-inproc inproc indep "$n_indep" 0 $cache
  run_sluice sluice-inproc inproc chain "$n_chain" 0 $cache
  run_sluice sluice-inproc inproc indep "$n_chain" 1 $cache
  run_sluice sluice-inproc inproc chain "$n_chain" 1 $cache
done
run_sluice sluice-local local indep "$n_local" 0 1
run_sluice sluice-local local chain "$n_local" 0 1
# The memory sweep: does the per-task cost (time and memory) stay flat from 1,000
# to 1,000,000 tasks?
sweep() {  # N
  local home out
  home=$(mktemp -d "$work/home.XXXX")
  out=$(SLUICE_HOME=$home FB_TOOL=sluice-inproc FB_SHAPE=indep FB_N=$1 FB_RESULT=0 \
    /usr/bin/time -v "$bin" run --config inproc -q 2>"$work/time" | grep '^workload=') || true
  rm -rf "$home"
  awk -v n="$1" -v line="$out" '
    /Maximum resident set size/ { rss = $NF }
    /User time/ { cpu += $NF }
    /System time/ { cpu += $NF }
    END {
      wall = line; sub(/.* wall_s=/, "", wall); sub(/ .*/, "", wall)
      ok = (line ~ / ok=1/) ? 1 : 0
      printf "workload=functions_sweep tool=sluice-inproc n=%d wall_s=%s us_per_task=%.2f cpu_us_per_task=%.2f max_rss_kib=%d kib_per_task=%.3f ok=%d\n",
             n, wall, wall * 1e6 / n, cpu * 1e6 / n, rss, rss / n, ok
    }' "$work/time"
}
n_sweep=${N_SWEEP:-1000000}
if (( n_sweep > 0 )); then
  if [[ -x /usr/bin/time ]]; then
    sweep 1000
    sweep "$n_sweep"
  else
    echo "workload=functions_sweep tool=sluice-inproc ok=0 reason=no-/usr/bin/time"
  fi
fi
# Debian's python3-distributed lives in the system interpreter (not a pyenv/venv one).
py=
for cand in ${PYTHON:-} /usr/bin/python3 python3; do
  if "$cand" -c 'import dask.distributed' 2>/dev/null; then py=$cand; break; fi
done
if [[ -n $py ]]; then
  "$py" "$here/functions/dask_functions.py" --shape indep --n "$n_indep"
  "$py" "$here/functions/dask_functions.py" --shape chain --n "$n_chain"
else
  echo "workload=functions tool=dask ok=0 reason=python3-distributed-not-installed"
fi
