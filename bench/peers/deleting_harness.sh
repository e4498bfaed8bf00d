#!/usr/bin/env bash
# Sluice against `make -j2` the way a benchmark harness (or a busy shared disk) sees it:
# every repetition runs in a fresh temporary folder that is deleted before the next one.
# On ext4, what the disk has just freed decides how fast new files are made (its inode
# allocator), so a tool that makes a file per task pays for the previous repetition's
# deletion; on tmpfs it does not. Issue 26 asks Sluice to stay within 1.1x of make here.
#
#   bench/peers/deleting_harness.sh [--reps N] [--n N] [--only sweep,chain,...]
#                                   [--before BIN] [DIR...]
#
# DIR: where the temporary folders go, one table per DIR (default: /var/tmp and
# /dev/shm). Needs build/launchers/sluice (or SLUICE_BIN). Prints one line per run,
#   fs=ext4 dir=/var/tmp workload=sweep tool=sluice n=1000 rep=1 wall_s=0.512 inodes=9 load1=0.52
# (inodes: what the run left in its folder; load1: the 1-minute load average when it
# ended, since a shared machine's neighbours move these numbers), then per DIR and
# workload the median of each tool and the ratio sluice/make. --before BIN: a second
# sluice binary (an earlier build), run as tool=before between the two, so that a
# change is measured against its baseline on the same disk state in one script.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
reps=5 n=1000 only="sweep,chain,layered,mapreduce" dirs=() before=""
while (($#)); do
  case "$1" in
    --reps) reps="$2"; shift ;;
    --n) n="$2"; shift ;;
    --only) only="$2"; shift ;;
    --before) before="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) dirs+=("$1") ;;
  esac
  shift
done
((${#dirs[@]})) || dirs=(/var/tmp /dev/shm)
sluice="${SLUICE_BIN:-$root/build/launchers/sluice}"
[[ -x "$sluice" ]] || { echo "no sluice at $sluice (build first or set SLUICE_BIN)" >&2; exit 3; }
[[ -z $before || -x $before ]] || { echo "no sluice at $before (--before)" >&2; exit 3; }
export PATH="$(dirname "$sluice"):$PATH"  # mapreduce tasks call `sluice` (the local
# backend puts the running binary's directory first on PATH, so --before's tasks use its own)
IFS=, read -r -a workloads <<<"$only"
tools=(sluice make)
[[ -z $before ]] || tools=(sluice before make)

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

summary=()
for base in "${dirs[@]}"; do
  fs="$(stat -f -c %T "$base")"
  results="$(mktemp)"
  for ((rep = 1; rep <= reps; ++rep)); do
    for w in "${workloads[@]}"; do
      for tool in "${tools[@]}"; do  # alternating: every tool sees the same disk state
        d="$(mktemp -d "$base/sluice-peers.XXXXXX")"
        if [[ $tool != make ]]; then
          "$root/bench/gen_workflow.sh" "$w" "$n" >"$d/wf.toml"
          bin="$sluice"
          [[ $tool == sluice ]] || bin="$before"
          cmd=("$bin" run "$d/wf.toml" --quiet --cpus 2 --home "$d/home")
        else
          "$root/bench/gen_makefile.sh" "$w" "$n" >"$d/Makefile"
          cmd=(make -j2 -s -f "$d/Makefile")
        fi
        t0="$(date +%s.%N)"
        rc=0
        (cd "$d" && "${cmd[@]}") >"$d.log" 2>&1 </dev/null || rc=$?
        t1="$(date +%s.%N)"
        inodes="$(find "$d" | wc -l)"
        wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
        load1="$(cut -d' ' -f1 /proc/loadavg)"
        line="fs=$fs dir=$base workload=$w tool=$tool n=$n rep=$rep wall_s=$wall inodes=$inodes ok=$((rc == 0)) load1=$load1"
        echo "$line"
        echo "$line" >>"$results"
        ((rc == 0)) || tail -5 "$d.log" >&2
        rm -rf "$d" "$d.log"  # deleted before the next repetition, as a harness does
      done
    done
  done
  for w in "${workloads[@]}"; do
    s="$(grep " workload=$w tool=sluice " "$results" | sed 's/.*wall_s=\([^ ]*\).*/\1/' | median)"
    m="$(grep " workload=$w tool=make " "$results" | sed 's/.*wall_s=\([^ ]*\).*/\1/' | median)"
    line="summary fs=$fs dir=$base workload=$w n=$n reps=$reps sluice_median_s=$s make_median_s=$m ratio=$(awk -v s="$s" -v m="$m" 'BEGIN { printf "%.2f", s / m }')"
    if [[ -n $before ]]; then
      b="$(grep " workload=$w tool=before " "$results" | sed 's/.*wall_s=\([^ ]*\).*/\1/' | median)"
      line+=" before_median_s=$b before_ratio=$(awk -v s="$b" -v m="$m" 'BEGIN { printf "%.2f", s / m }')"
    fi
    summary+=("$line")
  done
  rm -f "$results"
done
printf '%s\n' "${summary[@]}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
