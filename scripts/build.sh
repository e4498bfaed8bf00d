#!/usr/bin/env bash
# Build Sluice (installs missing build dependencies first, see scripts/deps.sh).
#
#   scripts/build.sh [--sanitize] [--quiet] [-DVAR=VALUE ...]
#
#   (default)     configure into build/ and build everything with -j$(nproc)
#   --sanitize    AddressSanitizer + UBSan build in build-asan/ (-DSLUICE_SANITIZE=ON)
#   --quiet       print nothing on success; on failure print the end of the build log
#   -D...         extra CMake cache settings (forces a re-configure)
#   --targets RE  build only the targets whose name matches the regex RE (e.g. '^unit_'),
#                 everything when none matches
#   SLUICE_BUILD_DIR=DIR  build somewhere else (default build/ or build-asan/)
#
# Re-running is incremental: an existing build directory is not re-configured unless
# -D options are given (CMake re-configures by itself when a CMakeLists.txt changes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sanitize=0 quiet=0 cmake_args=() targets_re=""
while [[ $# -gt 0 ]]; do
  arg="$1"
  case "$arg" in
    --targets) targets_re="${2:?--targets needs a regex}"; shift ;;
    --targets=*) targets_re="${arg#*=}" ;;
    --sanitize) sanitize=1 ;;
    -q|--quiet) quiet=1 ;;
    -D*) cmake_args+=("$arg") ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if (( quiet )); then
  scripts/deps.sh --quiet
else
  scripts/deps.sh
fi

if (( sanitize )); then
  dir="${SLUICE_BUILD_DIR:-build-asan}"
  sanitize_arg=-DSLUICE_SANITIZE=ON
else
  dir="${SLUICE_BUILD_DIR:-build}"
  sanitize_arg=-DSLUICE_SANITIZE=OFF
fi
jobs="$(nproc 2>/dev/null || echo 2)"
mkdir -p "$dir"
log="$dir/build.log"

run() {
  # In quiet mode keep the output in the log and show it only when the step fails.
  if (( quiet )); then
    if ! "$@" >>"$log" 2>&1; then
      echo "build: failed: $*" >&2
      echo "build: first errors in $root/$log:" >&2
      grep -m 20 -E 'error|Error' "$log" >&2 || true
      echo "build: last lines:" >&2
      tail -n 40 "$log" >&2
      exit 1
    fi
  else
    "$@"
  fi
}

: >"$log"
# CI builds everything from scratch on 2 cores: line tables only (-g1) instead of full
# debug info compile about a third faster and link much faster (objects 4x smaller),
# and sanitizer reports still name file:line.
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  case "${CI:-}" in
    true|TRUE|True|1|yes)
      cmake_args=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
                  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" "${cmake_args[@]}") ;;
  esac
fi
if [[ ! -f "$dir/CMakeCache.txt" || ${#cmake_args[@]} -gt 0 ]]; then
  run cmake -S "$root" -B "$dir" "$sanitize_arg" "${cmake_args[@]}"
fi
target_args=() target_names=()
if [[ -n "$targets_re" ]]; then
  # `help` lists the targets with the Makefile and Ninja generators alike ("... name" / "name: phony").
  while read -r t; do
    target_args+=(--target "$t")
    target_names+=("$t")
  done < <(cmake --build "$dir" --target help 2>/dev/null \
             | sed -n -e 's/^\.\.\. \([^ ]*\).*/\1/p' -e 's/^\([^ :]*\): .*/\1/p' \
             | grep -E "$targets_re" | sort -u || true)
fi
run cmake --build "$dir" -j "$jobs" "${target_args[@]}"

if (( quiet )); then
  :
elif (( ${#target_args[@]} )); then
  echo "build: done: ${target_names[*]} in $root/$dir"
else
  echo "build: done; the CLI is $root/$dir/launchers/sluice"
fi
