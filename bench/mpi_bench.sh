#!/usr/bin/env bash
# The MPI backend's per-task cost: n no-op command tasks (`true`) through
# `mpirun -n R sluice run --backend mpi`, and m no-op C++ function tasks (distinct
# arguments, so none comes from the cache) through
# `mpirun -n R functions_bench run --backend mpi` (an SDK program: its ranks run the
# functions in-process), for R = 3 and 5 (2 and 4 workers), next to the MPI round-trip
# latency measured by bench/mpi/pingpong.c with the same ranks, and the `local` backend
# with 2 slots as a baseline, on the same machine, in the same invocation (compare
# numbers only within one invocation). One line per run:
#
#   workload=mpi_sweep tool=sluice-mpi ranks=3 n=1000 wall_s=… tasks_per_s=… us_per_task=… cpu_us_per_task=… mpi_rtt_us=…
#   workload=mpi_functions tool=sluice-mpi ranks=3 cache=0 n=50000 wall_s=… tasks_per_s=… us_per_task=… cpu_us_per_task=… mpi_rtt_us=…
#
#   bench/mpi_bench.sh [N [M]]        N command tasks (default 1000), M function tasks
#                                     (default 50000)
#   RANKS="3 5 9" bench/mpi_bench.sh  other job sizes
#   SLUICE_BIN=/path/to/sluice        a binary built elsewhere (sluice-mpi next to it)
#
# Wall time is the whole `mpirun` (start of the job, loading the workflow, creating the
# run store, every state change, shutdown). us_per_task = wall / n. cpu_us_per_task is
# the CPU time (user + system) of the whole job, every rank and mpirun (for `local`: sluice
# and its tasks), over n: on a machine shared with other work the wall time follows the
# load, this much less. Ranks are oversubscribed when they outnumber the cores (workers
# then get 1 slot each).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-1000}"
m="${2:-50000}"
ranks_list="${RANKS:-3 5}"
build="${SLUICE_BUILD:-$root/build}"
sluice="${SLUICE_BIN:-$build/launchers/sluice}"
pingpong="${PINGPONG_BIN:-$build/bench/mpi_pingpong}"
functions="${FUNCTIONS_BIN:-$build/bench/functions_bench}"
if [[ -z "${SLUICE_BIN:-}" ]]; then
  cmake --build "$build" -j2 --target sluice sluice-mpi mpi_pingpong functions_bench >/dev/null
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
TIMEFORMAT='%U %S'  # `time` below: the CPU of the command and its children

# CPU µs per task from a `time` report ("USER SYS" in seconds) in file $1, n = $2.
cpu_per_task() { awk -v n="$2" '{ printf "%.1f", ($1 + $2) * 1e6 / n; exit }' "$1" 2>/dev/null || echo nan; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-mpi-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$root/bench/gen_workflow.sh" sweep "$n" > "$work/wf.toml"

t0=$(date +%s.%N)
ok=1
{ time "$sluice" run "$work/wf.toml" --quiet --cpus 2 --home "$work/home-local" </dev/null \
  >"$work/out-local" 2>&1; } 2>"$work/cpu-local" || ok=0
t1=$(date +%s.%N)
cpu="$(cpu_per_task "$work/cpu-local" "$n")"
awk -v n="$n" -v t0="$t0" -v t1="$t1" -v ok="$ok" -v cpu="$cpu" 'BEGIN {
  w = t1 - t0
  printf "workload=mpi_sweep tool=sluice-local ranks=0 n=%d wall_s=%.3f tasks_per_s=%.0f us_per_task=%.0f cpu_us_per_task=%s mpi_rtt_us=- ok=%d\n",
         n, w, n / w, w * 1e6 / n, cpu, ok
}'

for ranks in $ranks_list; do
  rtt="$(mpirun --oversubscribe --bind-to none -n "$ranks" "$pingpong" 2000 </dev/null |
         sed -n 's/^mpi_rtt_us=//p')"
  home="$work/home-$ranks"
  t0=$(date +%s.%N)
  ok=1
  { time mpirun --oversubscribe --bind-to none -n "$ranks" "$sluice" run "$work/wf.toml" \
    --backend mpi --quiet --home "$home" </dev/null >"$work/out-$ranks" 2>"$work/err-$ranks"; } \
    2>"$work/cpu-$ranks" || ok=0
  t1=$(date +%s.%N)
  cpu="$(cpu_per_task "$work/cpu-$ranks" "$n")"
  if (( ! ok )); then
    echo "mpi_bench: ranks=$ranks failed:" >&2
    tail -n 5 "$work/err-$ranks" >&2
  fi
  awk -v r="$ranks" -v n="$n" -v t0="$t0" -v t1="$t1" -v rtt="${rtt:-nan}" -v ok="$ok" -v cpu="$cpu" 'BEGIN {
    w = t1 - t0
    printf "workload=mpi_sweep tool=sluice-mpi ranks=%d n=%d wall_s=%.3f tasks_per_s=%.0f us_per_task=%.0f cpu_us_per_task=%s mpi_rtt_us=%s ok=%d\n",
           r, n, w, n / w, w * 1e6 / n, cpu, rtt, ok
  }'

  # Function tasks: wall_s is rank 0's whole sluice::main (waiting for the workers'
  # hellos, creating the run, every state change), without mpirun's own start. cache=0
  # is the dispatch path (--no-cache); cache=1 adds a cache lookup and a cache entry per
  # task (the default for runs).
  for cache in 0 1; do
    flag=(); (( cache )) || flag=(--no-cache)
    ok=1
    line="$({ time FB_TOOL=sluice-mpi FB_SHAPE=distinct FB_N="$m" \
              SLUICE_HOME="$work/home-fn-$ranks-$cache" \
              mpirun --oversubscribe --bind-to none -n "$ranks" "$functions" run --backend mpi -q \
              "${flag[@]}" </dev/null 2>"$work/err-fn-$ranks"; } 2>"$work/cpu-fn" |
            grep '^workload=')" || ok=0
    cpu="$(cpu_per_task "$work/cpu-fn" "$m")"
    wall="$(sed -n 's/.* wall_s=\([0-9.]*\).*/\1/p' <<<"$line")"
    [[ "$line" == *" ok=1"* ]] || ok=0
    if (( ! ok )); then
      echo "mpi_bench: function tasks, ranks=$ranks failed:" >&2
      tail -n 5 "$work/err-fn-$ranks" >&2
    fi
    awk -v r="$ranks" -v n="$m" -v w="${wall:-0}" -v rtt="${rtt:-nan}" -v ok="$ok" -v c="$cache" -v cpu="$cpu" 'BEGIN {
      printf "workload=mpi_functions tool=sluice-mpi ranks=%d cache=%d n=%d wall_s=%.3f tasks_per_s=%.0f us_per_task=%.2f cpu_us_per_task=%s mpi_rtt_us=%s ok=%d\n",
             r, c, n, w, (w > 0 ? n / w : 0), w * 1e6 / n, cpu, rtt, ok
    }'
  done
done
