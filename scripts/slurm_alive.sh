# Sourced by slurm-up.sh, slurm-down.sh and slurm_emu.sh: is the daemon of a pid file
# running, and stopping it.
#
#   alive PIDFILE EXE   true when PIDFILE names a process running EXE (the pid file is
#                       rewritten when it was missing or stale and the daemon is found)
#   stop_daemon PIDFILE TEST [ARGS...]
#                       when `TEST PIDFILE ARGS...` says it runs: SIGTERM, wait up to 15 s,
#                       then SIGKILL; the pid file is removed either way
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

stop_daemon() {
  local pidfile="$1" test="$2" pid
  shift 2
  "$test" "$pidfile" "$@" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  [[ -d /proc/$pid ]] && kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
