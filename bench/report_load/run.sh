#!/usr/bin/env bash
# How big is `sluice report`'s page for an N-task run, and how long does headless
# Chromium take to load and draw it? Runs a sweep of N `true` tasks (bench/gen_workflow.sh),
# writes its report, then loads it REPEAT times with `chromium --headless --dump-dom`.
#
#   bench/report_load/run.sh [N=10000] [REPEAT=3]      (SLUICE=path/to/sluice, default build/launchers/sluice)
#
# Prints one JSON line: tasks, report_bytes, load_s (wall time of each chromium run, page
# loaded and scripts done), blank_s (the same for an empty page: chromium's own start-up),
# render_ms (what the page's script measured for drawing itself).
set -euo pipefail
N="${1:-10000}"
REPEAT="${2:-3}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
SLUICE="${SLUICE:-$root/build/launchers/sluice}"
CHROMIUM="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -x "$SLUICE" ]] || { echo "report_load: no sluice binary at $SLUICE" >&2; exit 2; }
[[ -n "$CHROMIUM" ]] || { echo "report_load: chromium is not installed (apt-get install chromium)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$root/bench/gen_workflow.sh" sweep "$N" > "$work/wf.toml"
run_start=$(date +%s.%N)
out="$("$SLUICE" --home "$work/home" run "$work/wf.toml" -q 2>/dev/null)"
run_s=$(awk -v a="$(date +%s.%N)" -v b="$run_start" 'BEGIN { printf "%.3f", a - b }')
id="$(echo "$out" | head -1 | cut -d' ' -f2)"
"$SLUICE" --home "$work/home" report "$id" -o "$work/report.html" >/dev/null
echo '<!doctype html><title>blank</title><body data-rendered="1"></body>' > "$work/blank.html"
bytes=$(stat -c %s "$work/report.html")

load() {  # wall seconds for chromium to load $1 and dump its DOM into $2
  local t0 t1
  t0=$(date +%s.%N)
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/profile" \
    --window-size=1400,1000 --dump-dom "file://$1" > "$2" 2>/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }'
}
load "$work/blank.html" "$work/blank.dom" >/dev/null  # warm the disk cache
loads=() blanks=() renders=()
for ((i = 0; i < REPEAT; i++)); do
  blanks+=("$(load "$work/blank.html" "$work/blank.dom")")
  loads+=("$(load "$work/report.html" "$work/report.dom")")
  grep -q 'data-rendered="1"' "$work/report.dom" || { echo "report_load: the page did not draw" >&2; exit 1; }
  renders+=("$(grep -o 'data-render-ms="[0-9.]*"' "$work/report.dom" | grep -o '[0-9.]*')")
done
join() { local IFS=,; echo "$*"; }
printf '{"bench":"report_load","tasks":%s,"run_s":%.1f,"report_bytes":%s,"load_s":[%s],"blank_s":[%s],"render_ms":[%s]}\n' \
  "$N" "$run_s" "$bytes" "$(join "${loads[@]}")" "$(join "${blanks[@]}")" "$(join "${renders[@]}")"
