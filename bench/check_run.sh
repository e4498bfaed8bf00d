#!/bin/sh
# Check a finished benchmark run against the workflow it came from:
#   bench/check_run.sh WF_TOML GET_JSON
# WF_TOML is a file printed by bench/gen_workflow.sh; GET_JSON is the output of
# `sluice get RUN --json` for its run. Passes (exit 0) when the run succeeded, it has
# exactly the workflow's tasks, every task succeeded with one attempt, and every task
# started no earlier than each of its dependencies ended. Otherwise prints why, exit 1.
# POSIX sh + awk only; reads the pretty-printed JSON one "key": value per line.
set -eu
if [ $# -ne 2 ]; then sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; fi

awk '
function val(line) {  # the value of a "key": value line, without quotes and comma
  sub(/^[^:]*:[ \t]*/, "", line); sub(/,[ \t]*$/, "", line); gsub(/"/, "", line); return line
}
FNR == 1 { file++ }
# --- the workflow: [tasks.NAME] and after = ["a", "b"] ---------------------------------
file == 1 && /^\[tasks\./ { t = $0; gsub(/^\[tasks\.|\][ \t]*$/, "", t); want[t] = 1; nwant++; cur = t; next }
file == 1 && /^after = / {
  s = $0; sub(/^after = \[/, "", s); sub(/\][ \t]*$/, "", s); gsub(/[" ]/, "", s)
  ndep[cur] = split(s, d, ","); for (i = 1; i <= ndep[cur]; i++) dep[cur, i] = d[i]
  next
}
# --- the run: top-level "state" and the objects in "task_list" (their own fields at 6
# spaces; the entries of every "attempt_list" are deeper and not read) ---------------
file == 2 && /"task_list"/ { inlist = 1; next }
file == 2 && !inlist && /^  "state":/ { runstate = val($0) }
file == 2 && inlist && /^    \{/ { name = ""; st = ""; att = ""; su = ""; eu = ""; next }
file == 2 && inlist && /^      "name":/ { name = val($0) }
file == 2 && inlist && /^      "state":/ { st = val($0) }
file == 2 && inlist && /^      "attempts":/ { att = val($0) }
file == 2 && inlist && /^      "started_us":/ { su = val($0) }
file == 2 && inlist && /^      "ended_us":/ { eu = val($0) }
file == 2 && inlist && /^    \}/ {
  have[name] = 1; ngot++; state[name] = st; attempts[name] = att; start[name] = su; end[name] = eu
}
file == 2 && inlist && /^  \]/ { inlist = 0 }
END {
  bad = 0
  if (runstate != "succeeded") { print "run state is \"" runstate "\", not succeeded"; bad++ }
  if (ngot != nwant) { print "run has " ngot " tasks, workflow has " nwant; bad++ }
  for (t in want) {
    if (!(t in have)) { if (bad++ < 10) print "task " t " missing from the run"; continue }
    if (state[t] != "succeeded") { if (bad++ < 10) print "task " t " is " state[t]; continue }
    if (attempts[t] != 1) { if (bad++ < 10) print "task " t " took " attempts[t] " attempts" }
    for (i = 1; i <= ndep[t]; i++) {
      p = dep[t, i]
      if (start[t] + 0 < end[p] + 0) {
        if (bad++ < 10) print "task " t " started at " start[t] " before its dependency " p " ended at " end[p]
      }
    }
  }
  exit bad > 0
}' "$1" "$2"
