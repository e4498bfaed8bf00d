#!/usr/bin/env bash
# Benchmarks: the same task graphs through Sluice and through `make -j2`, on this machine,
# in this run. Prints one machine-readable line per result on stdout, e.g.
#   workload=sweep tool=sluice n=10000 wall_s=3.210 tasks_per_s=3115 peak_rss_mb=14.2 inodes_per_task=0.003 ok=1
#
#   scripts/bench.sh [--quick | --compare] [--only W1,W2,...] [--tools sluice,make,...]
#
#   --quick   sweep 1000, chain 1000, layered 10x100, sleeps 200, mapreduce 1000,
#             artifacts --quick (about a minute and a half)
#   (default) also sweep 10000, and sweep_scaling: sweep at n = 1000, 10000, 100000
#             with us_per_task, to show whether the cost per task stays flat; artifacts
#             with a 1 GiB array
#   --compare the full table beside every peer that is installed: the spawn floor
#             (bench/floor/spawn_floor.c), make -j2, GNU parallel -j2 (independent graphs),
#             Snakemake --cores 2 (n <= 1000: it needs ~30 ms per task) and Dask
#             (LocalCluster, 2 worker processes), all from the same graph file
#             (bench/peers/convert.py); plus functions (inproc vs Dask) and scale
#   --only    a subset of: sweep, chain, layered, sleeps, sweep_scaling, mapreduce,
#             children, artifacts, functions, scale, local_launch, fleet,
#             orchestration
#   --tools   a subset of: sluice, make, floor, parallel, snakemake, dask
#             (default sluice,make; with --compare every one installed)
#   SLUICE_BIN=PATH  use this sluice binary instead of building build/launchers/sluice
#   TMPDIR=DIR       where the runs happen (default /tmp; the header names its filesystem)
#   ARTIFACT_BENCH=PATH  use this artifact_bench instead of build/bench/artifact_bench
#
# mapreduce: `map`, 1000 children computing i*i and appending `v=...` to their results
# file (SLUICE_RESULTS), and a reduce summing them with one `sluice inputs v` (make:
# files); ok=1 only when the sum is 332833500. Without --quick also `mapreduce_put`,
# Sluice only: each child runs `sluice put v ...` instead.
# children: dynamic children against declared tasks, Sluice only: `children` (a map
# adding N `true` children while it runs, beside sweep N declared in the file) and
# `mapreduce_dynamic` (the mapreduce above with the children added by map), at N = 1000,
# and 10000 without --quick.
# artifacts: bench/artifacts/artifact_bench's own lines (small HDF5 artifacts and
# bandwidth, with HDF5-raw, POSIX and dd beside them); only with --tools sluice.
# local_launch: the local backend alone launching 2,000 `true` processes, 2 in flight
# (bench/local_launch/local_launch_bench.cpp); only with --tools sluice.
# fleet: the pilot coordinator against W = 10, 100, 1000 simulated workers of 64 slots on
# loopback (bench/fleet/fleet_bench.cpp: real TCP, handshake, sealed frames; no-op tasks
# completed at once, and without --quick 1 s tasks on 1000 workers): tasks/s, coordinator
# CPU per task, memory per worker, ready-to-started latency. --quick (CI): 20,000 tasks
# per W, about 10 s; otherwise 200,000 per W. Then workload=fleet_engine, the same fleet
# behind the real coordinator and store (fleet_bench --engine): 5,000 tasks on 100
# workers with --quick (a few seconds), else 50,000 on each W. Only with --tools sluice.
#
# Every task is an OS process (`true`, `sleep 0.05` for sleeps, sh for mapreduce); both
# tools get 2 slots (`sluice run --cpus 2`, `make -j2`). ok=1 means the tool exited 0
# and, for Sluice, that `sluice pss --json` lists the run as succeeded and `sluice get --json`
# shows every task succeeded once, after its dependencies (bench/check_run.sh).
# The exit status is 1 when any result has ok=0; slowness never fails this script.
# Results are also written to bench/out/results-<time>.txt. See bench/README.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

quick=0 compare=0 only="" tools=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --compare) compare=1 ;;
    --only) only="${2:?--only needs a list}"; shift ;;
    --only=*) only="${1#*=}" ;;
    --tools) tools="${2:?--tools needs a list}"; shift ;;
    --tools=*) tools="${1#*=}" ;;
    -h|--help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
(( quick && compare )) && { echo "bench.sh: --quick and --compare exclude each other" >&2; exit 2; }
# Debian's python3-distributed and snakemake live in the system interpreter.
dask_py=""
for cand in ${PYTHON:-} /usr/bin/python3 python3; do
  if "$cand" -c 'import dask.distributed' 2>/dev/null; then dask_py="$cand"; break; fi
done
if [[ -z "$tools" ]]; then
  tools="sluice,make"
  if (( compare )); then
    tools+=",floor"
    command -v parallel >/dev/null && tools+=",parallel"
    command -v snakemake >/dev/null && tools+=",snakemake"
    [[ -n "$dask_py" ]] && tools+=",dask"
  fi
fi
# --compare: the table of the README; sweep_scaling, children and artifacts are Sluice's own.
(( compare )) && [[ -z "$only" ]] && only="sweep,chain,layered,sleeps,mapreduce,functions,scale"
wanted() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }
use_tool() { [[ ",$tools," == *",$1,"* ]]; }
for t in ${tools//,/ }; do
  case "$t" in sluice|make|floor|parallel|snakemake|dask) ;;
    *) echo "bench.sh: unknown tool: $t" >&2; exit 2 ;; esac
done
for w in ${only//,/ }; do
  case "$w" in
    sweep|chain|layered|sleeps|sweep_scaling|mapreduce|children|artifacts|functions|scale) ;;
    local_launch|fleet|orchestration) ;;
    *) echo "bench.sh: unknown workload: $w" >&2; exit 2 ;; esac
done

if use_tool sluice; then
  if [[ -n "${SLUICE_BIN:-}" ]]; then
    sluice="$SLUICE_BIN"
    if [[ "$sluice" == */* ]]; then
      sluice="$(cd "$(dirname "$sluice")" && pwd)/$(basename "$sluice")"
    else
      sluice="$(command -v "$sluice" || echo "$sluice")"
    fi
  else
    "$root/scripts/build.sh" --quiet
    sluice="$root/build/launchers/sluice"
  fi
  [[ -x "$sluice" ]] || { echo "bench.sh: no sluice binary at $sluice" >&2; exit 1; }
  # mapreduce's tasks call `sluice put` / `sluice get`.
  PATH="$(dirname "$sluice"):$PATH"
  export PATH
fi
command -v make >/dev/null || { echo "bench.sh: make is not installed" >&2; exit 1; }

# Peak RSS needs GNU time (`-f`); without it peak_rss_mb is left out.
timecmd=()
if [[ -x /usr/bin/time ]] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
  timecmd=(/usr/bin/time -f %M -o)
fi

# Every tool runs in a fresh directory here; Sluice's home (attempt directories, logs,
# store) too, so the filesystem is part of what is measured: the header names it.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$root/bench/out"
results="$root/bench/out/results-$(date +%Y%m%dT%H%M%S).txt"
: >"$results"

peer_py="${dask_py:-python3}"
spawn_floor=""
if use_tool floor; then
  spawn_floor="${SPAWN_FLOOR:-$root/build/bench/spawn_floor}"
  if [[ ! -x "$spawn_floor" ]]; then  # a sluice built elsewhere: compile the floor here
    spawn_floor="$tmp/spawn_floor"
    cc -O2 -o "$spawn_floor" "$root/bench/floor/spawn_floor.c"
  fi
fi

# The load average goes in the header: compare tools only within one invocation.
echo "# bench: $(nproc) cpus, $(uname -srm), $(make --version | head -n 1)," \
     "sluice $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')" \
     "$( ((quick)) && echo '(quick)')$( ((compare)) && echo '(compare)')," \
     "tools $tools, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "filesystem $(df -PT "$tmp" | awk 'NR == 2 { print $2 }')" >&2

per_run_timeout=900
failures=0
last_wall=""

# bench_one WORKLOAD TOOL N [EXTRA_KEY=VALUE...] -> prints the result line
#   workload names sweep_scaling map to the sweep graph.
bench_one() {
  local workload="$1" tool="$2" n="$3" graph="$1"
  [[ "$graph" == sweep_scaling ]] && graph=sweep
  local d="$tmp/$workload-$tool-$n"
  rm -rf "$d"  # a fresh home: a rerun of the same graph would be served by the cache
  mkdir -p "$d"
  local cmd=()
  case "$tool" in
    sluice)
      "$root/bench/gen_workflow.sh" "$graph" "$n" >"$d/wf.toml"
      cmd=("$sluice" run "$d/wf.toml" --quiet --cpus 2 --home "$d/home") ;;
    make)
      "$root/bench/gen_makefile.sh" "$graph" "$n" >"$d/Makefile"
      cmd=(make -j2 -f "$d/Makefile") ;;
    floor)  # sweep and sleeps: 2 in flight; chain: one at a time (each waits for the last)
      case "$graph" in
        sweep) cmd=("$spawn_floor" "$n" 2) ;;
        chain) cmd=("$spawn_floor" "$n" 1) ;;
        sleeps) cmd=("$spawn_floor" "$n" 2 sleep 0.05) ;;
      esac ;;
    parallel|snakemake|dask)  # from the same graph as make's
      "$root/bench/gen_makefile.sh" "$graph" "$n" >"$d/Makefile"
      case "$tool" in
        parallel)
          "$peer_py" "$root/bench/peers/convert.py" parallel "$d/Makefile" >"$d/cmds"
          cmd=(parallel --will-cite -j2 -a "$d/cmds") ;;
        snakemake)
          "$peer_py" "$root/bench/peers/convert.py" snakemake "$d/Makefile" >"$d/Snakefile"
          cmd=(snakemake --cores 2 --quiet -s "$d/Snakefile") ;;
        dask)
          "$peer_py" "$root/bench/peers/convert.py" dask "$d/Makefile" >"$d/dask_graph.py"
          cmd=("$dask_py" "$d/dask_graph.py") ;;
      esac ;;
  esac

  # A peer that loses its workers can retry forever (Dask under load): give up sooner.
  local limit="$per_run_timeout"
  [[ "$tool" == dask || "$tool" == snakemake || "$tool" == parallel ]] && limit=300
  local t0 t1 rc=0
  t0="$(date +%s.%N)"
  if (( ${#timecmd[@]} )); then
    (cd "$d" && "${timecmd[@]}" "$d/rss" timeout "$limit" "${cmd[@]}") \
      >"$d/log" 2>&1 </dev/null || rc=$?
  else
    (cd "$d" && timeout "$limit" "${cmd[@]}") >"$d/log" 2>&1 </dev/null || rc=$?
  fi
  t1="$(date +%s.%N)"

  local ok=1 why="" extra_fields=""
  if (( rc != 0 )); then
    ok=0 why="exit status $rc"
  elif [[ "$tool" == sluice ]]; then
    # The fresh home holds exactly this run: it must be listed as succeeded, and its
    # tasks must all have succeeded once, each after its dependencies (bench/check_run.sh).
    local run_id
    "$sluice" pss --json --home "$d/home" >"$d/pss.json" 2>&1 || true
    run_id="$(grep -m 1 '"id":' "$d/pss.json" | sed 's/.*"id": *"\([^"]*\)".*/\1/' || true)"
    if [[ -z "$run_id" ]] || ! grep -q "\"bench_$graph\"" "$d/pss.json"; then
      ok=0 why="run not listed by sluice pss --json"
    elif ! "$sluice" get "$run_id" --json --home "$d/home" >"$d/get.json" 2>&1; then
      ok=0 why="sluice get $run_id --json failed"
    elif [[ "$graph" == children || "$graph" == mapreduce_dynamic ]]; then
      # Tasks added at run time are not in wf.toml: count them, all must have succeeded.
      local want=$((n + 1)) got
      [[ "$graph" == mapreduce_dynamic ]] && want=$((n + 2))
      # Task objects' own fields, at 6 spaces: not the run's state (2) nor the states
      # in each task's attempt_list (10).
      got="$(grep -c '^      "state": "succeeded"' "$d/get.json" || true)"
      if (( got != want )); then
        ok=0 why="$got of $want tasks succeeded"
      elif [[ "$graph" == mapreduce_dynamic ]] &&
           ! "$sluice" results "$run_id" reduce --json --home "$d/home" >"$d/results.json" 2>&1; then
        ok=0 why="sluice results $run_id reduce failed"
      elif [[ "$graph" == mapreduce_dynamic ]] &&
           ! grep -q "\"sum\": $(mapreduce_sum "$n")\$" "$d/results.json"; then
        ok=0 why="reduce's sum is not $(mapreduce_sum "$n"): $(tr -d '\n' <"$d/results.json")"
      fi
    elif ! why="$("$root/bench/check_run.sh" "$d/wf.toml" "$d/get.json" 2>&1)"; then
      ok=0 why="wrong result: $(head -n 3 <<<"$why" | tr '\n' ';')"
    elif [[ "$graph" == mapreduce* ]] &&
         ! "$sluice" results "$run_id" reduce --json --home "$d/home" >"$d/results.json" 2>&1; then
      ok=0 why="sluice results $run_id reduce failed"
    elif [[ "$graph" == mapreduce* ]] &&
         ! grep -q "\"sum\": $(mapreduce_sum "$n")\$" "$d/results.json"; then
      ok=0 why="reduce's sum is not $(mapreduce_sum "$n"): $(tr -d '\n' <"$d/results.json")"
    fi
    # How long the reduce task ran (one `sluice get` per input).
    if [[ "$graph" == mapreduce* && -f "$d/get.json" ]]; then
      extra_fields+="$(task_seconds "$d/get.json" reduce reduce_s)"
    fi
    # What the run cost the filesystem: every file and directory in its fresh home, per
    # task (a parallel filesystem pays a metadata round trip for each).
    local inodes
    inodes="$(find "$d/home" 2>/dev/null | wc -l)"
    extra_fields+="$(awk -v i="$inodes" -v n="$n" 'BEGIN { printf " inodes_per_task=%.3f", i / n }')"
  elif [[ "$graph" == mapreduce && "$(cat "$d/sum.txt" 2>/dev/null)" != "$(mapreduce_sum "$n")" ]]; then
    ok=0 why="sum.txt is not $(mapreduce_sum "$n")"
  fi

  local rss_kb=""
  [[ -f "$d/rss" ]] && rss_kb="$(tail -n 1 "$d/rss" | tr -dc 0-9)"

  local line
  line="$(awk -v w="$workload" -v tool="$tool" -v n="$n" -v t0="$t0" -v t1="$t1" \
              -v rss="$rss_kb" -v ok="$ok" -v extra="${4:-}" -v fields="$extra_fields" 'BEGIN {
    wall = t1 - t0; if (wall <= 0) wall = 1e-9
    s = sprintf("workload=%s tool=%s n=%d wall_s=%.3f tasks_per_s=%.0f", w, tool, n, wall, n / wall)
    if (extra == "us_per_task") s = s sprintf(" us_per_task=%.1f", wall * 1e6 / n)
    if (extra == "efficiency")  s = s sprintf(" ideal_s=%.2f efficiency=%.3f", n * 0.05 / 2, (n * 0.05 / 2) / wall)
    if (rss != "") s = s sprintf(" peak_rss_mb=%.1f", rss / 1024)
    s = s fields
    print s " ok=" ok
  }')"
  echo "$line" | tee -a "$results"
  last_wall="$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", t1 - t0 }')"
  if (( ! ok )); then
    failures=$((failures + 1))
    echo "bench: $workload/$tool n=$n FAILED ($why); last lines of its output:" >&2
    tail -n 20 "$d/log" | cut -c1-300 >&2 || true
  fi
}

# mapreduce_sum N: the sum of i*i for i in 0..N-1 that the reduce must report.
mapreduce_sum() { awk -v n="$1" 'BEGIN { printf "%.0f", (n - 1) * n * (2 * n - 1) / 6 }'; }

# task_seconds GET_JSON TASK FIELD: " FIELD=<ended_us - started_us of TASK in s>", or nothing.
task_seconds() {
  awk -v t="$2" -v f="$3" '
    function val(line) {
      sub(/^[^:]*:[ \t]*/, "", line); sub(/,[ \t]*$/, "", line); gsub(/"/, "", line); return line
    }
    /^    \{/ { name = ""; s = 0; e = 0 }
    /"name":/ { name = val($0) }
    /"started_us":/ { s = val($0) + 0 }
    /"ended_us":/ { e = val($0) + 0 }
    /^    \}/ && name == t && s > 0 && e >= s { printf " %s=%.3f", f, (e - s) / 1e6; exit }' "$1"
}

# The artifact benchmark prints its own result lines; pass them through.
bench_artifacts() {
  local bin="${ARTIFACT_BENCH:-$root/build/bench/artifact_bench}" args=() line
  if [[ -z "${ARTIFACT_BENCH:-}" && ! -x "$bin" ]]; then "$root/scripts/build.sh" --quiet; fi
  if [[ ! -x "$bin" ]]; then
    echo "bench.sh: no artifact_bench at $bin" >&2
    failures=$((failures + 1))
    return 0
  fi
  (( quick )) && args=(--quick)
  local status=""
  while IFS= read -r line; do
    if [[ "$line" == "# artifact_bench exit status "* ]]; then status="${line##* }"; continue; fi
    echo "$line" | tee -a "$results"
    [[ "$line" == *" ok=0"* ]] && failures=$((failures + 1))
  done < <(rc=0; TMPDIR="$tmp" timeout "$per_run_timeout" "$bin" "${args[@]}" \
             2>"$tmp/artifacts.err" || rc=$?; echo "# artifact_bench exit status $rc")
  if [[ "$status" != 0 ]]; then
    failures=$((failures + 1))
    echo "bench: artifact_bench FAILED (exit status ${status:-?}):" >&2
    tail -n 20 "$tmp/artifacts.err" >&2 || true
  fi
  return 0
}

# Which tool runs which graph: parallel has no dependencies; the floor is defined for
# sweep, chain and sleeps; Snakemake's ~30 ms per task keeps it to n <= 1000.
tool_runs() {  # tool_runs TOOL WORKLOAD N
  case "$1" in
    floor) [[ "$2" == sweep || "$2" == chain || "$2" == sleeps ]] ;;
    parallel) [[ "$2" == sweep || "$2" == sleeps ]] ;;
    snakemake) (( $3 <= 1000 )) ;;
    *) true ;;
  esac
}

each_tool() {  # each_tool WORKLOAD N [EXTRA]
  local t
  for t in sluice make floor parallel snakemake dask; do
    use_tool "$t" && tool_runs "$t" "$1" "$2" && bench_one "$1" "$t" "$2" "${3:-}"
  done
  return 0
}

if wanted sweep; then
  each_tool sweep 1000
  (( quick )) || each_tool sweep 10000
fi
wanted chain && each_tool chain 1000
wanted layered && each_tool layered 1000
wanted sleeps && each_tool sleeps 200 efficiency
if wanted mapreduce; then
  each_tool mapreduce 1000
  # The same with a `sluice put` process per child: what the results file saves.
  (( quick )) || ! use_tool sluice || bench_one mapreduce_put sluice 1000
fi
if wanted children && use_tool sluice; then
  for n in 1000 $( (( quick )) || echo 10000); do
    bench_one sweep sluice "$n" us_per_task
    bench_one children sluice "$n" us_per_task
    bench_one mapreduce_dynamic sluice "$n" us_per_task
  done
fi
if (( ! quick )) && wanted sweep_scaling; then
  for n in 1000 10000 100000; do each_tool sweep_scaling "$n" us_per_task; done
fi
wanted artifacts && use_tool sluice && bench_artifacts

# functions: no-op C++ function tasks on inproc (bench/functions), beside Dask's futures.
# Dask gets a fifth of the tasks (it needs ~0.5-2 ms each): compare us_per_task.
bench_functions() {
  local bin="${FUNCTIONS_BENCH:-$root/build/bench/functions_bench}" line
  local n_indep=100000 n_chain=10000
  (( quick )) && n_indep=5000 n_chain=1000
  if use_tool sluice; then
    [[ -x "$bin" ]] || "$root/scripts/build.sh" --quiet --targets '^functions_bench$'
    for shape in indep chain; do
      local n=$n_indep; [[ $shape == chain ]] && n=$n_chain
      rm -rf "$tmp/functions"
      line="$(cd "$tmp" && SLUICE_HOME="$tmp/functions" FB_TOOL=sluice-inproc FB_SHAPE=$shape \
              FB_N=$n timeout "$per_run_timeout" "$bin" run --config inproc -q 2>"$tmp/fn.err" |
              grep '^workload=' || echo "workload=functions tool=sluice-inproc shape=$shape n=$n ok=0")"
      echo "$line" | tee -a "$results"
      [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/fn.err" >&2; }
    done
  fi
  if use_tool dask && [[ -n "$dask_py" ]]; then
    for shape in indep chain; do
      local n=$((n_indep / 5)); [[ $shape == chain ]] && n=$((n_chain / 5))
      line="$(timeout "$per_run_timeout" "$dask_py" "$root/bench/functions/dask_functions.py" \
              --shape $shape --n $n 2>"$tmp/fn.err" |
              grep '^workload=' || echo "workload=functions tool=dask shape=$shape n=$n ok=0")"
      echo "$line" | tee -a "$results"
      [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/fn.err" >&2; }
    done
  fi
  return 0
}
wanted functions && bench_functions

# scale: load+validate, scheduling and memory per task on the no-op path
# (bench/scale/scale_bench.cpp), independent and layered, 1k to 1M tasks (--quick: to 10k).
bench_scale() {
  local bin="${SCALE_BENCH:-$root/build/bench/scale_bench}" line shape n graph
  [[ -x "$bin" ]] || "$root/scripts/build.sh" --quiet --targets '^scale_bench$'
  local sizes="1000 10000 100000 1000000"
  (( quick )) && sizes="1000 10000"
  for shape in indep layered; do
    graph=sweep; [[ $shape == layered ]] && graph=layered
    for n in $sizes; do
      "$root/bench/gen_workflow.sh" "$graph" "$n" >"$tmp/scale.toml"
      line="$(cd "$tmp" && timeout "$per_run_timeout" "$bin" "$shape" "$tmp/scale.toml" \
              2>"$tmp/scale.err" || echo "workload=scale shape=$shape n=$n ok=0")"
      echo "$line" | tee -a "$results"
      [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/scale.err" >&2; }
    done
  done
  rm -f "$tmp/scale.toml"
  return 0
}
wanted scale && use_tool sluice && bench_scale

# local_launch: launch throughput of the local backend without the engine around it.
bench_local_launch() {
  local bin="${LOCAL_LAUNCH_BENCH:-$root/build/bench/local_launch_bench}" line
  [[ -x "$bin" ]] || "$root/scripts/build.sh" --quiet --targets '^local_launch_bench$'
  line="$(cd "$tmp" && timeout "$per_run_timeout" "$bin" 2000 2 2>"$tmp/local_launch.err" ||
          echo "workload=local_launch n=2000 in_flight=2 ok=0")"
  echo "$line" | tee -a "$results"
  [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/local_launch.err" >&2; }
  return 0
}
wanted local_launch && use_tool sluice && bench_local_launch

# fleet: the pilot coordinator and W simulated workers (bench/fleet/fleet_bench.cpp).
bench_fleet() {
  local bin="${FLEET_BENCH:-$root/build/bench/fleet_bench}" line w n=200000 runs=()
  [[ -x "$bin" ]] || "$root/scripts/build.sh" --quiet --targets '^fleet_bench$'
  (( quick )) && n=20000
  for w in 10 100 1000; do runs+=("$w $n 0"); done
  (( quick )) || runs+=("1000 256000 1000")  # 1 s tasks: 64,000 slots drained each second
  # The engine's durable path (--engine: coordinator, store, attempt directories) on the
  # same fleet; each task makes a directory and two logs, so N is smaller.
  if (( quick )); then
    runs+=("--engine 100 5000 0")
  else
    for w in 10 100 1000; do runs+=("--engine $w 50000 0"); done
  fi
  local args
  for args in "${runs[@]}"; do
    set -- $args
    line="$(cd "$tmp" && TMPDIR="$tmp" timeout 300 "$bin" "$@" 2>"$tmp/fleet.err" ||
            echo "workload=fleet args=${args// /_} ok=0")"
    line="$(grep '^workload=' <<<"$line" | tail -n 1)"
    echo "$line" | tee -a "$results"
    [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/fleet.err" >&2; }
  done
  return 0
}
wanted fleet && use_tool sluice && bench_fleet

# orchestration: a chain of 1,000 awaited calls on inproc vs the same static chain.
bench_orchestration() {
  local line
  line="$(timeout "$per_run_timeout" "$root/bench/orchestration_bench.sh" 1000 3 2>"$tmp/orch.err" ||
          echo "workload=orchestration_chain n=1000 ok=0")"
  echo "$line" | tee -a "$results"
  [[ "$line" == *" ok=1"* ]] || { failures=$((failures + 1)); tail -n 5 "$tmp/orch.err" >&2; }
  return 0
}
wanted orchestration && use_tool sluice && bench_orchestration

echo "# results in $results" >&2
if (( failures )); then
  echo "bench: $failures result(s) with ok=0" >&2
  exit 1
fi
