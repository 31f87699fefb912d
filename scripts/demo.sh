#!/usr/bin/env bash
# The README's first command: every pipeline stage on the bundled sample corpus, under ./demo_out/.
set -euo pipefail
OUT="${DEMO_OUT:-demo_out}"
rm -rf "$OUT"
mkdir -p "$OUT"
started=$(date +%s)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. sample corpus (LVIS, COCO, Open Images, VGGSound, AVSBench formats) -> $OUT/corpus"
avs-synth sample-corpus "$OUT/corpus" --seed 0

step "done in $(( $(date +%s) - started )) s; outputs:"
echo "  sample corpus      $OUT/corpus"
