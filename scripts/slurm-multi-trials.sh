#!/usr/bin/env bash
# Larger emulated clusters than CI's 8 nodes: brings up an N-node emulated cluster
# (scripts/slurm-up.sh --nodes N, default 64), then measures and prints
#   - how long the cluster takes to come up,
#   - one srun step with a task on every node (each prints the node Slurm started it on),
#   - a pilot sweep (sluice run --backend slurm -O mode=pilot) of 4 tasks per node through
#     2 allocations of N/2 nodes each: wall time and on how many distinct nodes its tasks ran,
#   - the slurm-multi tests (ctest -L slurm-multi) on it.
# The cluster stays up with N nodes afterwards (--down stops it); scripts/test.sh puts it
# back to 8 nodes. Needs root and a build (scripts/build.sh).
#
#   sudo scripts/slurm-multi-trials.sh [N] [--down]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
n=64 down=0
for arg in "$@"; do
  case "$arg" in
    --down) down=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) n="$arg" ;;
  esac
done
sluice="$root/build/launchers/sluice"
[[ -x "$sluice" ]] || { echo "slurm-multi-trials: build first (scripts/build.sh)" >&2; exit 2; }
export SLURM_CONF=/etc/slurm-emu/slurm.conf
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
scripts/slurm-up.sh --nodes "$n"
echo "trials: $n nodes up in $(secs "$t0" "$(now)") s"

t0=$(now)
seen=$(srun -N "$n" --ntasks-per-node=1 bash -c 'echo $SLURMD_NODENAME' | sort -u | wc -l)
echo "trials: srun -N $n: $seen distinct nodes in $(secs "$t0" "$(now)") s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tasks=$((4 * n))
{
  echo '[workflow]'; echo 'name = "trials"'; echo '[tasks.t]'
  echo "matrix = { i = [$(seq -s, 0 $((tasks - 1)))] }"
  echo 'shell = "sleep 1; sluice put at $SLURM_JOB_ID:$SLURMD_NODENAME"'
} >"$work/wf.toml"
half=$(( (n + 1) / 2 ))
t0=$(now)
(cd "$work" && "$sluice" run wf.toml -q --backend slurm -O mode=pilot -O poll_interval=500ms \
  -O nodes="$half" -O cpus=4 -O max_allocations=2 -O idle_timeout=30s >"$work/out")
wall=$(secs "$t0" "$(now)")
run=$(sed -n 's/^run \([^ ]*\) .*/\1/p' "$work/out" | head -n 1)
nodes=$(cd "$work" && "$sluice" results "$run" --json | grep -o 'emu[0-9]*' | sort -u | wc -l)
echo "trials: pilot sweep of $tasks 1-s tasks, 2 allocations x $half nodes x 4 cpus:" \
  "$wall s, tasks on $nodes distinct nodes"

t0=$(now)
rc=0
ctest --test-dir build -L slurm-multi --output-on-failure >"$work/ctest.log" 2>&1 || rc=$?
grep -E 'tests passed|Skipped|Failed' "$work/ctest.log" | tail -n 6
echo "trials: ctest -L slurm-multi on $n nodes: exit $rc in $(secs "$t0" "$(now)") s"
if (( down )); then scripts/slurm-down.sh --nodes; fi
exit "$rc"
