#!/usr/bin/env bash
# Install Sluice's build dependencies from the distribution's archive.
# Supported: Debian 12, Ubuntu 22.04 and 24.04 (apt/dpkg).
#
# Idempotent: when every package is already installed this does nothing and needs no
# network (no `apt-get update`). Runs apt-get as root, or through sudo when not root.
#
#   scripts/deps.sh [--quiet]      --quiet: print nothing when there is nothing to do
#   SLUICE_SKIP_DEPS=1             skip the check entirely (you manage packages yourself)
set -euo pipefail

PACKAGES=(
  build-essential make cmake ccache pkg-config
  ninja-build  # scripts/build.sh: builds the targets it names side by side (Makefiles: one by one)
  libtomlplusplus-dev catch2 libsqlite3-dev sqlite3 libcli11-dev libfmt-dev
  nlohmann-json3-dev libexpected-dev libhdf5-dev hdf5-tools libxxhash-dev
  libsodium-dev  # pilot connections: authenticated, encrypted (backends/pilot/pilot_crypto.cpp)
  libopenmpi-dev openmpi-bin  # the mpi backend (sluice-mpi) and its tests
  libmpich-dev mpich  # the same against MPICH (scripts/test.sh --mpi mpich, build-mpich/)
  time  # /usr/bin/time: peak memory in scripts/bench.sh
  clang libclang-rt-14-dev  # libFuzzer targets (scripts/fuzz.sh); the runtime is its own package
  graphviz  # `dot`: sluice graph --format svg
  python3-h5py  # tests read run.h5 as users do (integration/packed_values_test.cpp)
  chromium chromium-driver  # headless browser: the report's rendering test and bench
  # the Slurm backend (libslurm driver) and its single-node test cluster (slurm-up.sh)
  libslurm-dev slurmctld slurmd slurm-client munge
  # (not slurm-wlm-emulator: the emulated multi-node cluster, slurm-up.sh --nodes N, runs
  # the stock slurmd once per node name; the emulator package's front-end daemons would
  # replace /usr/sbin/slurmd and slurmctld through alternatives, see docs/slurm.md)
)
# Optional: only bench/functions_bench.sh needs them (the Dask comparison). Installed
# with SLUICE_BENCH_DEPS=1; never required to build or test.
if [[ "${SLUICE_BENCH_DEPS:-0}" == 1 ]]; then
  PACKAGES+=(python3-distributed)
fi

quiet=0
for arg in "$@"; do
  case "$arg" in
    -q|--quiet) quiet=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deps.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
say() { if (( ! quiet )); then echo "deps: $*"; fi; }

if [[ "${SLUICE_SKIP_DEPS:-0}" == 1 ]]; then
  say "SLUICE_SKIP_DEPS=1: not checking packages"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: this script needs apt/dpkg (Debian or Ubuntu). Install these yourself, then" \
       "rerun with SLUICE_SKIP_DEPS=1:" >&2
  echo "  ${PACKAGES[*]}" >&2
  exit 1
fi

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  say "all ${#PACKAGES[@]} build dependencies are installed"
  exit 0
fi

if (( EUID == 0 )); then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: not root and no sudo; install them as root, e.g.:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)

echo "deps: installing missing packages: ${missing[*]}" >&2
"${apt[@]}" update -qq

# Only ask apt for packages this release actually has, so that one absent package
# (e.g. a library not packaged on an older Ubuntu) names itself instead of failing all.
available=() unavailable=()
for p in "${missing[@]}"; do
  candidate="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  if [[ -n "$candidate" && "$candidate" != "(none)" ]]; then
    available+=("$p")
  else
    unavailable+=("$p")
  fi
done
if (( ${#available[@]} )); then
  "${apt[@]}" install -y -qq --no-install-recommends "${available[@]}"
fi
if (( ${#unavailable[@]} )); then
  echo "deps: not in this system's package archive: ${unavailable[*]}" >&2
  echo "deps: install them from source or a backport, then rerun" >&2
  exit 1
fi
echo "deps: done" >&2
