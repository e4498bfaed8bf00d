#!/bin/sh
# A stand-in for a training script (used by examples/sweep.toml): parses
# --lr and --layers, "trains" for 0.2 s and prints a made-up score.
set -eu
lr=0.01
layers=2
while [ $# -gt 0 ]; do
  case "$1" in
    --lr) lr="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    *) echo "train.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
echo "training: lr=$lr layers=$layers"
sleep 0.2
# Best near lr = 10^-2.7, and deeper is a little better.
awk -v lr="$lr" -v layers="$layers" 'BEGIN {
  d = log(lr) / log(10) + 2.7
  printf "score=%.4f\n", 0.70 + 0.05 * layers - 0.1 * d * d
}'
