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
  --openimages "$C/openimages" --vggsound-csv "$C/vggsound/vggsound.csv"
avs-synth review-matches --list --matches "$OUT/matches_unreviewed.csv" \
  --lvis "$C/lvis/lvis_v1_train.json" --lvis-images "$C/coco" \
  --openimages "$C/openimages" --openimages-split train

step "2b. the same candidates with the decisions of the shipped, reviewed map"
avs-synth match --out "$OUT/matches.csv" \
  --lvis "$C/lvis/lvis_v1_train.json" --coco "$C/coco/annotations/instances_train2017.json" \
  --openimages "$C/openimages" --vggsound-csv "$C/vggsound/vggsound.csv"
avs-synth review-matches --list --all --matches "$OUT/matches.csv"

step "3. build WebDataset shards (jpg + mask.png + flac + json) with the reviewed map"
avs-synth build --corpus "$C" --matches "$OUT/matches.csv" --out "$OUT/shards" \
  --negative-ratio 0.2 --workers 2
avs-synth inspect "$OUT/shards" --samples 3
avs-synth inspect "$OUT/shards" --samples 12 --html "$OUT/shards_page" >/dev/null

S4_TEST=$(find "$C/avsbench/Single-source/s4_data/visual_frames/test" -mindepth 2 -maxdepth 2 -type d | sort | head -n 1)
S4_NAME=$(basename "$S4_TEST"); S4_CAT=$(basename "$(dirname "$S4_TEST")")

step "4. short CPU pre-training of autr_tiny on the shards (val selects best.pt, test scored at the end)"
avs-train pretrain --config demo_pretrain_tiny --shards "$OUT/shards" --out "$OUT/pretrain"

step "5. fine-tune on the mini AVSBench S4 set with 10 % of its train videos"
avs-train finetune --config demo_finetune_tiny --init "$OUT/pretrain/best.pt" \
  --avsbench "$C/avsbench" --subset s4 --fraction 0.1 --out "$OUT/finetune"

step "6. evaluate on S4 test: M_J, M_F (4 videos a batch), batch-independent M_F, per category"
avs-train evaluate --ckpt "$OUT/finetune/best.pt" --avsbench "$C/avsbench" --subset s4 \
  --out "$OUT/evaluate"

step "7. predict: masks and overlays for one S4 test video's frames and its audio"
avs-train predict --ckpt "$OUT/finetune/best.pt" "$S4_TEST" \
  --audio "$C/avsbench/Single-source/s4_data/audio_wav/test/$S4_CAT/$S4_NAME.wav" \
  --out "$OUT/predict"

step "done in $(( $(date +%s) - started )) s; outputs:"
echo "  sample corpus            $C  (layout: $C/README.md)"
echo "  matches (rule only)      $OUT/matches_unreviewed.csv"
echo "  matches (reviewed map)   $OUT/matches.csv"
echo "  shards + manifest        $OUT/shards  ($OUT/shards/manifest.json, report.json)"
echo "  shards as a page         $OUT/shards_page/index.html  (open in a browser)"
echo "  pre-training             $OUT/pretrain  (best.pt, last.pt, metrics.csv, tensorboard/, test_metrics.json)"
echo "  fine-tuning (S4, 10 %)   $OUT/finetune"
echo "  evaluation               $OUT/evaluate  (metrics.json, per_category.png, page/index.html)"
echo "  prediction               $OUT/predict  (masks/, overlays/*.png)"
