#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm-up.sh started.
#
#   sudo scripts/slurm-down.sh [--purge] [--keep-jobs]
#   --purge      also remove the controller's state, spool and logs (job ids restart at 1)
#   --keep-jobs  do not scancel the jobs first (they survive a restart)
#
#   sudo scripts/slurm-down.sh --nodes [N] [--purge]
#   stop the emulated cluster of slurm-up.sh --nodes N instead (the single-node one and
#   munged keep running)
set -euo pipefail
for ((i = 1; i <= $#; i++)); do
  if [[ "${!i}" == --nodes* ]]; then
    rest=()
    for a in "$@"; do [[ "$a" == --nodes* || "$a" =~ ^[0-9]+$ ]] || rest+=("$a"); done
    exec "$(dirname "${BASH_SOURCE[0]}")/slurm_emu.sh" down "${rest[@]}"
  fi
done
purge=0 keep=0
for arg in "$@"; do
  case "$arg" in
    --purge|--clean) purge=1 ;;
    --keep-jobs) keep=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "slurm-down: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
(( EUID == 0 )) || { echo "slurm-down: ERROR: must run as root" >&2; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/slurm_alive.sh"
if (( ! keep )) && alive /run/slurmctld.pid /usr/sbin/slurmctld; then
  scancel --full --quiet -u root 2>/dev/null || true
  scancel --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
  for _ in $(seq 50); do
    [[ -z "$(squeue -h -t R,CG 2>/dev/null)" ]] && break
    sleep 0.1
  done
fi
stop_daemon /run/slurmd.pid alive /usr/sbin/slurmd
stop_daemon /run/slurmctld.pid alive /usr/sbin/slurmctld
stop_daemon /run/munge/munged.pid alive /usr/sbin/munged
if (( purge )); then
  rm -rf /var/spool/slurm/ctld /var/spool/slurm/d /var/log/slurm/*.log
fi
echo "slurm-down: stopped${purge:+}$( ((purge)) && echo ', state purged')"
