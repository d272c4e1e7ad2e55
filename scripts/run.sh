#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine to generated meshes:
#   install packages, build, build the Debian game-data corpus and prepare it as a dataset,
#   train a small iFlame on it for a few minutes (unless IFLAME_WEIGHTS names trained weights),
#   generate meshes, and render them.
# Environment: IFLAME_WORK (default ./work), IFLAME_WEIGHTS (skip training), IFLAME_TRAIN_STEPS
# (default 300), IFLAME_SAMPLES (default 8), CORPUS=full for the full 7,000-mesh corpus
# (3.9 GB of packages; the default light set is 1.3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${IFLAME_WORK:-$REPO/work}
mkdir -p "$WORK"

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
IFLAME=$REPO/build/iflame

echo "== tokenizer on a reference mesh"
"$IFLAME" tokenize "$REPO/tests/data/meshes/cube.obj" | head -5

echo "== corpus"
if [ "${CORPUS:-light}" = full ]; then
  bash scripts/build-corpus.sh "$WORK/corpus"
else
  bash scripts/build-corpus.sh "$WORK/corpus" --light
fi
DATASET=$WORK/corpus/corpus.ifds

WEIGHTS=${IFLAME_WEIGHTS:-}
if [ -z "$WEIGHTS" ]; then
  echo "== training a small iFlame for ${IFLAME_TRAIN_STEPS:-300} steps (no IFLAME_WEIGHTS given)"
  # Passive waits for training: its many small LibTorch ops leave threads idle between regions,
  # and spinning there only takes CPU from OpenBLAS and other processes (docs/benchmarks.md).
  # Sampling keeps OpenMP's default (spin a little, then sleep): the fused decoder's regions
  # follow each other within microseconds.
  OMP_WAIT_POLICY=PASSIVE "$IFLAME" train --preset cpu --data "$DATASET" --resume \
    --set train.steps="${IFLAME_TRAIN_STEPS:-300}" --set eval.every=100 --set out.save_every=100 \
    --set out.dir="$WORK/run" --set model.preset=tiny --set data.max_faces=300
  WEIGHTS=$WORK/run/best/model.safetensors
fi

echo "== generating ${IFLAME_SAMPLES:-8} meshes"
"$IFLAME" sample --weights "$WEIGHTS" --n "${IFLAME_SAMPLES:-8}" --batch 8 --max-faces 300 --seed 1 \
  --out "$WORK/samples"
echo "meshes: $WORK/samples/*.obj   previews: $WORK/samples/*.png (grid.png shows all)"
if [ -f "$WORK/run/log.jsonl" ]; then
  "$IFLAME" render --curve "$WORK/run/log.jsonl" --out "$WORK/run/curve.png" && echo "training curve: $WORK/run/curve.png"
fi
