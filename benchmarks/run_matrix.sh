#!/usr/bin/env bash
# The training-step matrix of docs/benchmarks.md: every model family at n = 128, 300, 600, 1200, XLA off and on.
# One JSON line per run is appended to the file given as $1 (default: benchmarks/results.jsonl).
set -uo pipefail
cd "$(dirname "$0")"
out=${1:-results.jsonl}
for n in 128 300 600 1200; do
  for model in vslbase vslnet vslnet_l; do
    for xla in --noxla --xla; do
      python train_step.py --model="$model" --n="$n" --batch_size=16 --steps=4 --warmup=2 $xla 2>/dev/null \
        | tail -n 1 >> "$out" || echo "{\"model\": \"$model\", \"n\": $n, \"xla\": \"$xla\", \"error\": true}" >> "$out"
    done
  done
done
