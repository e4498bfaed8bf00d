# Sourced by slurm-up.sh and slurm-down.sh: is the daemon of a pid file running?
#
#   alive PIDFILE EXE   true when PIDFILE names a process running EXE (the pid file is
#                       rewritten when it was missing or stale and the daemon is found)
alive() {
  local pid="" exe
  # Debian installs the Slurm daemons through alternatives (/usr/sbin/slurmd ->
  # /usr/sbin/slurmd-wlm): /proc/PID/exe names the real file.
  exe="$(readlink -f "$2")"
  [[ -s "$1" ]] && pid="$(cat "$1")"
  if [[ -z "$pid" || "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" != "$exe" ]]; then
    # No pid file, or a stale one (the daemon was restarted by other means): find the
    # daemon by its program, the oldest process (slurmctld's slurmscriptd is its child).
    pid="$(pidof "$2" 2>/dev/null | tr ' ' '\n' | sort -n | head -n 1 || true)"
    [[ -n "$pid" ]] || return 1
    echo "$pid" >"$1"
  fi
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == "$exe" ]]
}
