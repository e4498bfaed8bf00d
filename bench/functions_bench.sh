#!/usr/bin/env bash
# Per-task overhead of function tasks: Sluice inproc (threads), Sluice local (a worker
# process per task) and Dask distributed, same workloads, one go. Prints one line each:
#   workload=functions tool=sluice-inproc|sluice-local|dask shape=indep|chain n=… wall_s=… us_per_task=… ok=…
#
#   bench/functions_bench.sh [BUILD_DIR]
#   N_INDEP=100000 N_CHAIN=10000 N_LOCAL=500 (defaults)
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

run_sluice() {  # TOOL CONFIG SHAPE N [RESULT]
  FB_TOOL=$1 FB_SHAPE=$3 FB_N=$4 FB_RESULT=${5:-0} "$bin" run --config "$2" -q | grep '^workload='
}
run_sluice sluice-inproc inproc indep "$n_indep"
run_sluice sluice-inproc inproc chain "$n_chain"
run_sluice sluice-inproc inproc indep "$n_chain" 1
run_sluice sluice-local local indep "$n_local"
run_sluice sluice-local local chain "$n_local"
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
