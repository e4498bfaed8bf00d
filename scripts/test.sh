#!/usr/bin/env bash
# Build and run the tests.
#
#   scripts/test.sh [--quick] [ctest args...]
#
#   (default)  build, then every test (unit + integration):
#              ctest --test-dir build --output-on-failure -j2
#   --quick    unit tests only (ctest -L unit), never the sanitizer build
#   CI=true    also build with AddressSanitizer + UBSan (build-asan/) and run the unit
#              tests there; set SLUICE_TEST_SANITIZE=1 to do that outside CI, 0 to skip it
#   ctest args are passed on to every ctest call, e.g. scripts/test.sh -R store
#   Slurm      the integration run brings up the single-node test cluster first
#              (SLURM_CPUS=8 scripts/slurm-up.sh, as root) and stops it at the end if it
#              started it; SLUICE_TEST_SLURM=0 or not being root leaves the Slurm tests out
#
# Exit status is non-zero when anything failed to build or any test failed. The output
# ends with ctest's own summary line(s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0 ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

ci=0
case "${CI:-}" in true|TRUE|True|1|yes) ci=1 ;; esac
sanitize="${SLUICE_TEST_SANITIZE:-$ci}"
(( quick )) && sanitize=0

jobs=2
logs="$(mktemp -d "${TMPDIR:-/tmp}/sluice-test.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

summary_of() {  # the line ctest ends its run with, or why there is none
  local line
  line="$(grep -E '[0-9]+% tests passed|No tests were found' "$1" | tail -n 1 || true)"
  echo "${line:-(ctest printed no summary: see above)}"
}

failed=0

# --- normal build: unit + integration --------------------------------------------------
scripts/build.sh
main_args=(--test-dir build --output-on-failure -j "$jobs")
(( quick )) && main_args+=(-L unit)

# --- the Slurm cluster for the slurm-labelled tests ---------------------------------------
slurm_started=0
if (( ! quick )); then
  if [[ "${SLUICE_TEST_SLURM:-1}" == 0 ]]; then
    echo "== SKIP Slurm tests: SLUICE_TEST_SLURM=0"
    main_args+=(-LE slurm)
  elif (( EUID != 0 )); then
    echo "== SKIP Slurm tests: bringing up the test cluster needs root (or SLUICE_TEST_SLURM=0)"
    main_args+=(-LE slurm)
  else
    scontrol ping 2>/dev/null | grep -q 'is UP' || slurm_started=1
    echo "== Slurm test cluster: SLURM_CPUS=8 scripts/slurm-up.sh"
    # More announced CPUs than cores: the tests' short jobs turn over 4x faster.
    if ! SLURM_CPUS=8 scripts/slurm-up.sh; then
      echo "== Slurm cluster did not come up: the Slurm tests will fail" >&2
      failed=1
    fi
    if (( slurm_started )); then
      trap 'scripts/slurm-down.sh --purge >/dev/null 2>&1 || true; rm -rf "$logs"' EXIT
    fi
  fi
fi
echo "== ctest ${main_args[*]} ${ctest_args[*]:-}"
set +e
ctest "${main_args[@]}" "${ctest_args[@]}" 2>&1 | tee "$logs/main.log"
main_rc=${PIPESTATUS[0]}
set -e
(( main_rc == 0 )) || failed=1

# --- sanitizer build: unit tests -------------------------------------------------------
asan_rc=0
if (( sanitize )); then
  echo "== sanitizer build (build-asan/, ASan + UBSan)"
  # Only the unit test binaries: the integration tests and the CLI are not run here.
  if scripts/build.sh --sanitize --targets '^unit_'; then
    # Fail on any UB report; keep leak checking on (ASan's default on Linux).
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_stack_use_after_return=1}"
    asan_args=(--test-dir build-asan --output-on-failure -j "$jobs" -L unit)
    echo "== ctest ${asan_args[*]} ${ctest_args[*]:-}"
    set +e
    ctest "${asan_args[@]}" "${ctest_args[@]}" 2>&1 | tee "$logs/asan.log"
    asan_rc=${PIPESTATUS[0]}
    set -e
  else
    asan_rc=1
    echo "(sanitizer build failed)" >"$logs/asan.log"
  fi
  (( asan_rc == 0 )) || failed=1
fi

# --- summary: ctest's own lines, the main run's last -----------------------------------
echo
echo "== test summary"
if (( sanitize )); then
  echo "unit tests under ASan + UBSan (build-asan/), exit $asan_rc:"
  summary_of "$logs/asan.log"
fi
if (( quick )); then
  echo "unit tests (build/), exit $main_rc:"
else
  echo "unit + integration tests (build/), exit $main_rc:"
fi
summary_of "$logs/main.log"
exit "$failed"
