#!/usr/bin/env bash
# The one command for new users: install what is missing, build (incrementally), run.
#
#   scripts/run.sh FILE [sluice run options...]
#   e.g.  ./scripts/run.sh examples/diamond.toml
#         ./scripts/run.sh examples/sweep.toml --cpus 2
#
# The first call compiles Sluice, which takes a few minutes (as root on Debian/Ubuntu it
# first installs the build dependencies with apt; anyone else needs them present, from
# modules or Spack: scripts/build.sh names what is missing, docs/install.md); later
# calls only rebuild what changed.
# FILE and all options are passed to `sluice run` unchanged, from your current directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  [[ $# -ge 1 ]] && exit 0
  exit 2
fi

bin="$root/${SLUICE_BUILD_DIR:-build}/launchers/sluice"
if [[ ! -x "$bin" ]]; then
  echo "run.sh: building Sluice first (a few minutes the first time)..." >&2
fi
"$root/scripts/build.sh" --quiet
exec "$bin" run "$@"
