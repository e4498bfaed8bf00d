#!/usr/bin/env bash
# Build and run the tests.
#
#   scripts/test.sh [--quick] [--mpi mpich] [ctest args...]
#
#   (default)  build, then every test (unit + integration):
#              ctest --test-dir build --output-on-failure -j2
#   --quick    unit tests only (ctest -L unit), never the sanitizer build
#   --mpi mpich  only the MPI backend against Debian's MPICH (mpicxx.mpich, mpirun.mpich):
#              build-mpich/ builds just what the mpi-labelled tests need and runs them
#              (ctest -L mpi). CI runs this stage after the others (SLUICE_TEST_MPICH=1/0);
#              `--mpi openmpi` is the default build (Debian's mpi alternative)
#   CI=true    also build with AddressSanitizer + UBSan (build-asan/) and run the unit and
#              integration tests there (but the two that start ~1,000 processes), build the scheduler, store and children unit tests
#              with ThreadSanitizer (build-tsan/) and run them, and run each libFuzzer
#              target for SLUICE_FUZZ_SECONDS (default 60; scripts/fuzz.sh, build-fuzz/).
#              SLUICE_TEST_SANITIZE=1 does the sanitizer builds outside CI, 0 skips them;
#              SLUICE_TEST_FUZZ=1/0 likewise for the fuzzers
#   ctest args are passed on to every ctest call, e.g. scripts/test.sh -R store
#   Slurm      the integration run brings up the single-node test cluster first
#              (SLURM_CPUS=8 scripts/slurm-up.sh, as root) and stops it at the end if it
#              started it; SLUICE_TEST_SLURM=0 or not being root leaves the Slurm tests out.
#              Beside it, the emulated 8-node cluster (scripts/slurm-up.sh --nodes 8, its
#              own SLURM_CONF) for the slurm-multi tests: ~5 s to start, ~30 s of tests;
#              SLUICE_TEST_SLURM_MULTI=0 leaves it out (those tests then skip)
#
# Exit status is non-zero when anything failed to build or any test failed. The output
# ends with ctest's own summary line(s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0 mpi="" ctest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --mpi) mpi="${2:?--mpi needs openmpi or mpich}"; shift ;;
    --mpi=*) mpi="${1#*=}" ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ctest_args+=("$1") ;;
  esac
  shift
done
case "$mpi" in
  ""|openmpi|mpich) ;;
  *) echo "test.sh: --mpi $mpi: use openmpi or mpich" >&2; exit 2 ;;
esac

ci=0
case "${CI:-}" in true|TRUE|True|1|yes) ci=1 ;; esac
sanitize="${SLUICE_TEST_SANITIZE:-$ci}"
fuzz="${SLUICE_TEST_FUZZ:-$ci}"
mpich="${SLUICE_TEST_MPICH:-$ci}"
(( quick )) && sanitize=0 && fuzz=0 && mpich=0
only_mpich=0
[[ "$mpi" == mpich ]] && only_mpich=1 && mpich=1

# The MPICH build (build-mpich/) compiles everything but the MPI backend exactly as
# build/ does: with paths taken relative to the source tree and the build folder left out
# of the hash, ccache serves those files from build/'s compiles (a sibling folder at the
# same depth, so relative paths match). Where ccache.conf already says, it is kept.
if command -v ccache >/dev/null 2>&1; then
  [[ -n "$(ccache -k base_dir 2>/dev/null)" ]] || export CCACHE_BASEDIR="$root"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
fi

jobs=2
logs="$(mktemp -d "${TMPDIR:-/tmp}/sluice-test.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

summary_of() {  # the line ctest ends its run with, or why there is none
  local line
  line="$(grep -E '[0-9]+% tests passed|No tests were found' "$1" | tail -n 1 || true)"
  echo "${line:-(ctest printed no summary: see above)}"
}

failed=0
stage() {  # a stage header with the time since the start, to see where CI's minutes go
  printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}

# --- MPICH: the MPI backend and its tests against Debian's MPICH ------------------------
mpich_rc=0
run_mpich() {
  stage "MPICH build (build-mpich/): the mpi-labelled tests' targets"
  local log="$logs/mpich.log" t0=$SECONDS
  if ! command -v mpicxx.mpich >/dev/null 2>&1 || ! command -v mpirun.mpich >/dev/null 2>&1; then
    echo "MPICH is not installed (Debian: libmpich-dev mpich; scripts/deps.sh)" | tee "$log"
    mpich_rc=1
    return
  fi
  # Only MPI_CXX_* and the launcher differ from build/: every other compile is a cache hit.
  if SLUICE_BUILD_DIR=build-mpich scripts/build.sh --quiet \
       -DMPI_CXX_COMPILER="$(command -v mpicxx.mpich)" \
       -DMPI_C_COMPILER="$(command -v mpicc.mpich)" \
       -DMPIEXEC_EXECUTABLE="$(command -v mpiexec.mpich)" \
       -DSLUICE_MPIRUN="$(command -v mpirun.mpich)" \
       --targets '^(sluice|sluice-mpi|unit_mpi_wire_test|integration_mpi_test|mpi_conformance_app|sdk_train_and_pick_model)$'
  then
    stage "MPICH build took $((SECONDS - t0))s; ctest --test-dir build-mpich -L mpi"
    set +e
    ctest --test-dir build-mpich --output-on-failure -L mpi "${ctest_args[@]}" 2>&1 | tee "$log"
    mpich_rc=${PIPESTATUS[0]}
    set -e
  else
    echo "(MPICH build failed)" >"$log"
    mpich_rc=1
  fi
}
if (( only_mpich )); then
  run_mpich
  echo
  stage "test summary"
  echo "mpi-labelled tests against MPICH (build-mpich/), exit $mpich_rc:"
  summary_of "$logs/mpich.log"
  exit "$mpich_rc"
fi

# --- normal build: unit + integration --------------------------------------------------
stage "build (build/)"
scripts/build.sh
main_args=(--test-dir build --output-on-failure -j "$jobs")
(( quick )) && main_args+=(-L unit)

# --- the Slurm cluster for the slurm-labelled tests ---------------------------------------
slurm_started=0
if (( ! quick )); then
  if [[ "${SLUICE_TEST_SLURM:-1}" == 0 ]]; then
    stage "SKIP Slurm tests: SLUICE_TEST_SLURM=0"
    main_args+=(-LE slurm)
  elif (( EUID != 0 )); then
    stage "SKIP Slurm tests: bringing up the test cluster needs root (or SLUICE_TEST_SLURM=0)"
    main_args+=(-LE slurm)
  else
    scontrol ping 2>/dev/null | grep -q 'is UP' || slurm_started=1
    stage "Slurm test cluster: SLURM_CPUS=8 scripts/slurm-up.sh"
    # More announced CPUs than cores: the tests' short jobs turn over 4x faster.
    if ! SLURM_CPUS=8 scripts/slurm-up.sh; then
      stage "Slurm cluster did not come up: the Slurm tests will fail" >&2
      failed=1
    fi
    emu_started=0
    if [[ "${SLUICE_TEST_SLURM_MULTI:-1}" != 0 ]]; then
      SLURM_CONF=/etc/slurm-emu/slurm.conf scontrol ping 2>/dev/null | grep -q 'is UP' ||
        emu_started=1
      stage "emulated 8-node Slurm cluster: scripts/slurm-up.sh --nodes 8"
      if ! scripts/slurm-up.sh --nodes 8; then
        stage "the emulated cluster did not come up: the slurm-multi tests will skip" >&2
        failed=1
      fi
    fi
    down_cmds=""
    (( slurm_started )) && down_cmds+='scripts/slurm-down.sh --purge >/dev/null 2>&1 || true; '
    (( emu_started )) && down_cmds+='scripts/slurm-down.sh --nodes --purge >/dev/null 2>&1 || true; '
    if [[ -n "$down_cmds" ]]; then
      trap "$down_cmds"'rm -rf "$logs"' EXIT
    fi
  fi
fi
stage "ctest ${main_args[*]} ${ctest_args[*]:-}"
set +e
ctest "${main_args[@]}" "${ctest_args[@]}" 2>&1 | tee "$logs/main.log"
main_rc=${PIPESTATUS[0]}
set -e
(( main_rc == 0 )) || failed=1

# --- sanitizer build: unit tests -------------------------------------------------------
asan_rc=0
if (( sanitize )); then
  stage "sanitizer build (build-asan/, ASan + UBSan)"
  # The unit and integration tests, with the CLI they run (the reliability tests are
  # long and run in the normal build only).
  if scripts/build.sh --sanitize --targets '^(unit_|integration_|sluice$)'; then
    # Fail on any UB report; keep leak checking on (ASan's default on Linux).
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_stack_use_after_return=1}"
    asan_args=(--test-dir build-asan --output-on-failure -j "$jobs" -L unit)
    stage "ctest ${asan_args[*]} ${ctest_args[*]:-}"
    set +e
    ctest "${asan_args[@]}" "${ctest_args[@]}" 2>&1 | tee "$logs/asan.log"
    asan_rc=${PIPESTATUS[0]}
    # Integration tests: every `sluice` they start (`sluice put` inside tasks too) is the
    # sanitized binary. Memory errors and UB fail; leak reports of these short-lived
    # processes do not (their exit status would fail the task, not point at a defect).
    # The tests that start ~1,000 sanitized `sluice` processes or more (the packed-values
    # tests: 1,000 `sluice put`, 10,000 local function workers) are left to the normal
    # build: on a slow VM (2 ms per plain process) they come near or past ctest's 300 s
    # limit under ASan, and every code path they use is also covered by smaller tests here. The mpi
    # backend's conformance run needs its own MPI program (mpi_conformance_app), which this
    # build leaves out to save CI minutes; the normal build runs it.
    asan_args[-1]=integration
    asan_args+=(-E '1,000-point sweep and its reduce|adds a whole sweep at once|reduce over 1,000 inputs|map-reduce of sluice put leaves|SDK function tasks that return values leave|mpi backend keeps the Backend contract')
    stage "ctest ${asan_args[*]} ${ctest_args[*]:-} (detect_leaks=0)"
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
      ctest "${asan_args[@]}" "${ctest_args[@]}" 2>&1 | tee -a "$logs/asan.log"
    (( PIPESTATUS[0] == 0 )) || asan_rc=1
    set -e
  else
    asan_rc=1
    echo "(sanitizer build failed)" >"$logs/asan.log"
  fi
  (( asan_rc == 0 )) || failed=1

  # ThreadSanitizer: the tests that exercise threads and concurrent writers.
  stage "ThreadSanitizer build (build-tsan/): scheduler, store, store writer, children, coordinator unit tests"
  tsan_targets=(unit_scheduler_test unit_store_test unit_store_writer_test unit_children_test
                unit_coordinator_test)
  mkdir -p build-tsan
  if { [[ -f build-tsan/CMakeCache.txt ]] ||
       cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=OFF \
         -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
         -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_C_FLAGS=-fsanitize=thread \
         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >build-tsan/build.log 2>&1; } &&
     cmake --build build-tsan -j "$jobs" $(printf -- '--target %s ' "${tsan_targets[@]}") \
       >>build-tsan/build.log 2>&1; then
    tsan_rc=0
    for t in "${tsan_targets[@]}"; do
      stage "TSan: $t"
      set +e
      TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}" \
        "build-tsan/tests/$t" >"$logs/tsan-$t.log" 2>&1
      rc=$?
      tail -n 20 "$logs/tsan-$t.log"
      cat "$logs/tsan-$t.log" >>"$logs/tsan.log"
      set -e
      (( rc == 0 )) || tsan_rc=1
    done
  else
    tail -n 30 build-tsan/build.log
    tsan_rc=1
  fi
  (( tsan_rc == 0 )) || failed=1
fi

# --- fuzzing: bounded time per target --------------------------------------------------
fuzz_rc=0
if (( fuzz )); then
  stage "fuzzing (build-fuzz/, clang, ${SLUICE_FUZZ_SECONDS:-60}s per target)"
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-60}" || fuzz_rc=$?
  (( fuzz_rc == 0 )) || failed=1
fi

# --- MPICH: after the normal build, whose compiles it reuses from ccache ---------------
if (( mpich )); then
  run_mpich
  (( mpich_rc == 0 )) || failed=1
fi

# --- summary: ctest's own lines, the main run's last -----------------------------------
echo
stage "test summary"
if (( mpich )); then
  echo "mpi-labelled tests against MPICH (build-mpich/), exit $mpich_rc:"
  summary_of "$logs/mpich.log"
fi
if (( sanitize )); then
  echo "unit + integration tests under ASan + UBSan (build-asan/), exit $asan_rc:"
  summary_of "$logs/asan.log"
  echo "scheduler, store, store writer, children, coordinator unit tests under TSan (build-tsan/), exit $tsan_rc"
  # Name what failed here too: CI's record keeps only the end of the output.
  (( tsan_rc == 0 )) ||
    grep -E -A 6 'FAILED:|WARNING: ThreadSanitizer|^test cases:' "$logs/tsan.log" | head -n 40 || true
fi
if (( fuzz )); then
  echo "fuzzing (build-fuzz/), exit $fuzz_rc"
fi
if (( quick )); then
  echo "unit tests (build/), exit $main_rc:"
else
  echo "unit + integration tests (build/), exit $main_rc:"
fi
summary_of "$logs/main.log"
exit "$failed"
