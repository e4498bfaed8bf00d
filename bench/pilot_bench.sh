#!/usr/bin/env bash
# A sweep of N `true` tasks three ways on the local Slurm cluster (scripts/slurm-up.sh):
# pilot mode (a few allocations running `sluice worker`), the local backend (the floor:
# no Slurm at all), and one Slurm job per task (arrays=off) on a smaller sweep, with its
# wall time extrapolated linearly to N (each job is started by the controller's ~1 s
# scheduling tick, so job-per-task time grows with the number of jobs). One line each:
#
#   workload=pilot_sweep tool=sluice-pilot n=10000 wall_s=... tasks_per_s=... slurm_jobs=2
#
#   bench/pilot_bench.sh [N] [N_JOBS]    N: tasks (default 10000), N_JOBS: tasks for
#                                        job-per-task (default 200; 0 skips it)
#   SLUICE=path/to/sluice                default: build/launchers/sluice
#   PILOT_OPTS="-O cpus=2 ..."           extra pilot options (default: cpus=2,
#                                        max_allocations=2)
#
# wall_s is `sluice run` from start to the end of the run, allocation start-up included;
# slurm_jobs counts allocation jobs (pilot) or distinct job ids in attempt handles.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-10000}"
n_jobs="${2:-200}"
sluice="${SLUICE:-$root/build/launchers/sluice}"
pilot_opts="${PILOT_OPTS:--O cpus=2 -O max_allocations=2}"
command -v sinfo >/dev/null && sinfo -h -N -o %T | grep -qvE 'down|drain|fail|unk|inval|maint|^$' ||
  { echo "pilot_bench: no Slurm cluster is up (sudo scripts/slurm-up.sh)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-pilot-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
sweep() {  # FILE N
  {
    echo '[workflow]'
    echo 'name = "pilot_sweep"'
    echo '[tasks.t]'
    printf 'matrix = { i = [%s] }\n' "$(seq -s, 0 $(($2 - 1)))"
    echo 'command = ["true"]'
  } >"$1"
}
sweep "$work/wf.toml" "$n"
[[ "$n_jobs" -gt 0 ]] && sweep "$work/wf-jobs.toml" "$n_jobs"

measure() {  # TOOL N FILE ARGS...
  local tool="$1" count="$2" file="$3"
  shift 3
  local home="$work/home-$tool"
  local start end wall jobs
  start=$(date +%s.%N)
  SLUICE_HOME="$home" "$sluice" run "$file" --no-cache -q "$@" >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; exit 1; }
  end=$(date +%s.%N)
  wall=$(echo "$end - $start" | bc -l)
  case "$tool" in
    pilot) jobs=$(python3 -c 'import json,sys,glob
print(sum(len(json.load(open(f))["allocations"]) for f in glob.glob(sys.argv[1])))' \
             "$home/runs/*/pilot/workers.json") ;;
    local) jobs=0 ;;
    *) jobs=$(sqlite3 "$home/store.db" "select handle from attempts" |
              sed -E 's/^slurm:([0-9]+).*/\1/' | sort -u | wc -l) ;;
  esac
  printf 'workload=pilot_sweep tool=sluice-%s n=%d wall_s=%.2f tasks_per_s=%.0f slurm_jobs=%d' \
    "$tool" "$count" "$wall" "$(echo "$count / $wall" | bc -l)" "$jobs"
  if [[ "$count" -ne "$n" ]]; then
    printf ' extrapolated_n=%d extrapolated_wall_s=%.0f' "$n" "$(echo "$wall * $n / $count" | bc -l)"
  fi
  printf '\n'
}

# shellcheck disable=SC2086
measure pilot "$n" "$work/wf.toml" --backend slurm -O mode=pilot $pilot_opts
measure local "$n" "$work/wf.toml" --backend local
if [[ "$n_jobs" -gt 0 ]]; then
  measure jobs "$n_jobs" "$work/wf-jobs.toml" --backend slurm -O arrays=off
fi
