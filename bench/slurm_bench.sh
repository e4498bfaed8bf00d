#!/usr/bin/env bash
# A sweep of N trivial tasks on the local Slurm cluster (scripts/slurm-up.sh), submitted
# as job arrays (the slurm backend's default) against one sbatch per task (arrays=off),
# through the libslurm driver and the CLI driver. Prints one machine-readable line each:
#
#   workload=slurm_sweep tool=sluice-arrays driver=libslurm n=1000 wall_s=... jobs=...
#
#   bench/slurm_bench.sh [N]          N: tasks (default 1000)
#   SLUICE=path/to/sluice             default: build/launchers/sluice
#   TOOLS="arrays per-task"           which variants (default: arrays per-task per-task-cli)
#
# wall_s is `sluice run` from start to the end of the run; jobs is the number of distinct
# Slurm job ids in the run's attempt handles (an array counts once).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-1000}"
sluice="${SLUICE:-$root/build/launchers/sluice}"
tools="${TOOLS:-arrays per-task per-task-cli}"
command -v sinfo >/dev/null && sinfo -h -N -o %T | grep -qvE 'down|drain|fail|unk|inval|maint|^$' ||
  { echo "slurm_bench: no Slurm cluster is up (sudo scripts/slurm-up.sh)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-slurm-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
{
  echo '[workflow]'
  echo 'name = "slurm_sweep"'
  echo '[tasks.t]'
  printf 'matrix = { i = [%s] }\n' "$(seq -s, 0 $((n - 1)))"
  echo 'shell = "true"'
} >"$work/wf.toml"

cpus="$(sinfo -h -o %c | head -n 1)"
for tool in $tools; do
  opts=() driver=libslurm
  case "$tool" in
    arrays) ;;
    per-task) opts+=(-O arrays=off) ;;
    per-task-cli) opts+=(-O arrays=off -O driver=cli); driver=cli ;;
    *) echo "slurm_bench: unknown tool $tool" >&2; exit 2 ;;
  esac
  home="$work/home-$tool"
  start=$(date +%s.%N)
  SLUICE_HOME="$home" "$sluice" run "$work/wf.toml" --backend slurm -O driver=$driver "${opts[@]}" \
    -q >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  end=$(date +%s.%N)
  jobs=$(sqlite3 "$home/store.db" "select handle from attempts" |
         sed -E 's/^slurm:([0-9]+).*/\1/' | sort -u | wc -l)
  printf 'workload=slurm_sweep tool=sluice-%s driver=%s n=%d wall_s=%.2f jobs=%d node_cpus=%s\n' \
    "$tool" "$driver" "$n" "$(echo "$end - $start" | bc -l)" "$jobs" "$cpus"
done
