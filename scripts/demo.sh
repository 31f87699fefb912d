#!/usr/bin/env bash
# The README's first command: every pipeline stage on the bundled sample corpus, under ./demo_out/.
set -euo pipefail
OUT="${DEMO_OUT:-demo_out}"
export COLUMNS="${COLUMNS:-150}"
rm -rf "$OUT"
mkdir -p "$OUT"
started=$(date +%s)
C="$OUT/corpus"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. sample corpus (LVIS, COCO, Open Images, VGGSound, AVSBench formats) -> $C"
avs-synth sample-corpus "$C" --seed 0

step "2a. category matching by the rule alone, then the pairs a human would review"
avs-synth match --no-seed --out "$OUT/matches_unreviewed.csv" \
  --lvis "$C/lvis/lvis_v1_train.json" --coco "$C/coco/annotations/instances_train2017.json" \
  --openimages "$C/openimages" --vggsound "$C/vggsound/vggsound.csv"
avs-synth review-matches --list --matches "$OUT/matches_unreviewed.csv" \
  --lvis "$C/lvis/lvis_v1_train.json" --lvis-images "$C/coco" \
  --openimages "$C/openimages" --openimages-split train

step "2b. the same candidates with the decisions of the shipped, reviewed map"
avs-synth match --out "$OUT/matches.csv" \
  --lvis "$C/lvis/lvis_v1_train.json" --coco "$C/coco/annotations/instances_train2017.json" \
  --openimages "$C/openimages" --vggsound "$C/vggsound/vggsound.csv"
avs-synth review-matches --list --all --matches "$OUT/matches.csv"

step "3. build WebDataset shards (jpg + mask.png + flac + json) with the reviewed map"
avs-synth build --corpus "$C" --matches "$OUT/matches.csv" --out "$OUT/shards" \
  --negative-ratio 0.2 --workers 2
avs-synth inspect "$OUT/shards" --samples 3

step "done in $(( $(date +%s) - started )) s; outputs:"
echo "  sample corpus            $C  (layout: $C/README.md)"
echo "  matches (rule only)      $OUT/matches_unreviewed.csv"
echo "  matches (reviewed map)   $OUT/matches.csv"
echo "  shards + manifest        $OUT/shards  ($OUT/shards/manifest.json, report.json)"
