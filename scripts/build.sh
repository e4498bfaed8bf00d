#!/usr/bin/env bash
# Build Sluice. As root on Debian/Ubuntu it first installs missing build dependencies
# (scripts/deps.sh); otherwise it uses what CMake finds (modules, Spack: CMAKE_PREFIX_PATH,
# HDF5_ROOT, mpicxx on PATH) and, when something is missing, names it and exits 2.
#
#   scripts/build.sh [--sanitize] [--quiet] [-DVAR=VALUE ...] [--prefix P --install]
#
#   (default)     configure into build/ and build everything with -j$(nproc)
#   --sanitize    AddressSanitizer + UBSan build in build-asan/ (-DSLUICE_SANITIZE=ON)
#   --quiet       print nothing on success; on failure print the end of the build log
#   -D...         extra CMake cache settings (forces a re-configure)
#   --targets RE  build only the targets whose name matches the regex RE (e.g. '^unit_'),
#                 everything when none matches
#   --prefix P    where --install puts Sluice (CMAKE_INSTALL_PREFIX, e.g. ~/.local)
#   --install     then `cmake --install` it there: bin/sluice, the SDK, docs (docs/install.md)
#   SLUICE_BUILD_DIR=DIR  build somewhere else (default build/ or build-asan/)
#
# Re-running is incremental: an existing build directory is not re-configured unless
# -D options or --prefix are given (CMake re-configures by itself when a CMakeLists.txt
# changes). Exit status: 0 built, 1 the build failed, 2 bad arguments or missing
# dependencies.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sanitize=0 quiet=0 cmake_args=() targets_re="" prefix="" install=0
while [[ $# -gt 0 ]]; do
  arg="$1"
  case "$arg" in
    --targets) targets_re="${2:?--targets needs a regex}"; shift ;;
    --targets=*) targets_re="${arg#*=}" ;;
    --sanitize) sanitize=1 ;;
    --prefix) prefix="${2:?--prefix needs a folder}"; shift ;;
    --prefix=*) prefix="${arg#*=}" ;;
    --install) install=1 ;;
    -q|--quiet) quiet=1 ;;
    -D*) cmake_args+=("$arg") ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Packages come from apt only as root on Debian/Ubuntu. Anyone else (a cluster user with
# modules or Spack) builds with what CMake finds; its configure step names what is missing.
if (( EUID == 0 )) && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  if (( quiet )); then
    scripts/deps.sh --quiet
  else
    scripts/deps.sh
  fi
fi

if (( sanitize )); then
  dir="${SLUICE_BUILD_DIR:-build-asan}"
  sanitize_arg=-DSLUICE_SANITIZE=ON
else
  dir="${SLUICE_BUILD_DIR:-build}"
  sanitize_arg=-DSLUICE_SANITIZE=OFF
fi
if (( install )) && [[ -z "$prefix" && $EUID -ne 0 ]]; then
  cached="$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$dir/CMakeCache.txt" 2>/dev/null || true)"
  if [[ -z "$cached" || "$cached" == /usr/local ]]; then
    prefix="$HOME/.local"  # not root: /usr/local is not writable
    echo "build: installing into $prefix (--prefix DIR for another folder)" >&2
  fi
fi
if [[ -n "$prefix" ]]; then
  # An absolute path: CMake would take a relative one from the build folder.
  mkdir -p "$prefix" 2>/dev/null || true
  prefix="$(cd "$prefix" 2>/dev/null && pwd || echo "$prefix")"
  if ! grep -qsxF "CMAKE_INSTALL_PREFIX:PATH=$prefix" "$dir/CMakeCache.txt"; then
    cmake_args+=(-DCMAKE_INSTALL_PREFIX="$prefix")
  fi
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
# A fresh build directory uses Ninja where it is installed: the Makefile generator builds
# the targets named by --targets one after another (its top-level Makefile is
# .NOTPARALLEL), which left one of CI's two cores idle for most of the sanitizer build.
# An existing directory keeps its generator; CMAKE_GENERATOR in the environment wins.
generator_args=()
if [[ ! -f "$dir/CMakeCache.txt" && -z "${CMAKE_GENERATOR:-}" ]] && command -v ninja >/dev/null 2>&1; then
  generator_args=(-G Ninja)
fi
if [[ ! -f "$dir/CMakeCache.txt" || ${#cmake_args[@]} -gt 0 ]]; then
  rm -f "$dir/missing-dependencies.txt"
  if ! cmake -S "$root" -B "$dir" "${generator_args[@]}" "$sanitize_arg" "${cmake_args[@]}" >>"$log" 2>&1; then
    if [[ -s "$dir/missing-dependencies.txt" ]]; then
      echo "build: Sluice needs these packages, which CMake did not find:" >&2
      cat "$dir/missing-dependencies.txt" >&2
      echo "build: with modules or Spack, load them (module load ... / spack load ...) or pass" \
           "their prefixes: scripts/build.sh -DCMAKE_PREFIX_PATH='/path/a;/path/b'." >&2
      echo "build: as root on Debian/Ubuntu, scripts/deps.sh installs them. See docs/install.md." >&2
      exit 2
    fi
    echo "build: failed: cmake -S $root -B $dir (the configure step); its log, $root/$log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  (( quiet )) || grep -E '^-- Sluice' "$log" || true
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

if (( install )); then
  run cmake --install "$dir"
  where="$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$dir/CMakeCache.txt")"
  (( quiet )) || echo "build: installed into $where (the CLI is $where/bin/sluice)"
fi

if (( quiet )); then
  :
elif (( ${#target_args[@]} )); then
  echo "build: done: ${target_names[*]} in $root/$dir"
else
  echo "build: done; the CLI is $root/$dir/launchers/sluice"
fi
