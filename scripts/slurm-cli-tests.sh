#!/usr/bin/env bash
# The Slurm-labelled tests once more, with every run driven through the command-line
# tools (sbatch, squeue, scontrol, sacct) instead of libslurm: an `scontrol` placed first
# on PATH reports another Slurm release for `show config`, so `driver=auto` takes the
# command-line driver exactly as on a site whose controller is not the release this
# sluice was built for (every other scontrol call goes to the real one).
#   scripts/slurm-cli-tests.sh [ctest args...]     (needs the test cluster: slurm-up.sh)
# The tests that ask for driver=libslurm by name are left out: they must (and do) refuse.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
real="$(command -v scontrol)" || { echo "scontrol not found: is Slurm installed?" >&2; exit 2; }
fake="$(mktemp -d)"
trap 'rm -rf "$fake"' EXIT
cat >"$fake/scontrol" <<SH
#!/bin/sh
if [ "\$1" = show ] && [ "\$2" = config ]; then
  "$real" "\$@" | sed 's/^SLURM_VERSION *=.*/SLURM_VERSION           = 24.11.1/'
  exit 0
fi
exec "$real" "\$@"
SH
chmod +x "$fake/scontrol"
PATH="$fake:$PATH" ctest --test-dir "${SLUICE_BUILD_DIR:-build}" -L slurm -E 'through libslurm' \
  --output-on-failure "$@"
