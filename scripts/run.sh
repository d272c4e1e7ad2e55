#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine to meshes from the shipped model:
#   install packages, build the `iflame` binary (not the tests), generate 16 meshes with the
#   model in models/ (models/README.md), render them into one grid.png and write an
#   interactive gallery (iflame view).
# Environment: IFLAME_WORK (default ./work), IFLAME_WEIGHTS (other weights than the shipped
# model), IFLAME_SAMPLES (default 16), IFLAME_SEED (default 1).
# scripts/train.sh builds the corpus and trains the shipped model again.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${IFLAME_WORK:-$REPO/work}
mkdir -p "$WORK"

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target iflame
IFLAME=$REPO/build/iflame

WEIGHTS=()
[ -z "${IFLAME_WEIGHTS:-}" ] || WEIGHTS=(--weights "$IFLAME_WEIGHTS")
if [ ${#WEIGHTS[@]} -eq 0 ] && [ -z "${IFLAME_MODEL:-}" ] && [ ! -f models/iflame-default.safetensors ]; then
  # Only for a checkout without models/iflame-default.safetensors: a small model, trained here
  # for a few minutes on the light corpus, so that the job still ends in meshes.
  echo "== no model in models/: training a small stand-in for 300 steps"
  bash scripts/build-corpus.sh "$WORK/corpus" --light
  OMP_WAIT_POLICY=PASSIVE "$IFLAME" train --preset cpu --data "$WORK/corpus/corpus.ifds" --resume \
    --set train.steps=300 --set eval.every=100 --set out.save_every=100 --set out.dir="$WORK/run" \
    --set model.preset=tiny --set data.max_faces=300
  WEIGHTS=(--weights "$WORK/run/best/model.safetensors" --max-faces 300)
fi
N=${IFLAME_SAMPLES:-16}
echo "== generating $N meshes"
rm -rf "$WORK/samples"
# Sampling options not given here come from the model's metadata (its chosen defaults).
"$IFLAME" sample ${WEIGHTS[@]+"${WEIGHTS[@]}"} --n "$N" --batch 16 --seed "${IFLAME_SEED:-1}" --out "$WORK/samples"
echo "== gallery"
rm -rf "$WORK/gallery"
"$IFLAME" view "$WORK/samples" --out "$WORK/gallery"
echo "meshes:  $WORK/samples/sample_*.obj (summary.json says how each ended)"
echo "grid:    $WORK/samples/grid.png"
echo "gallery: $WORK/gallery/index.html (open it in a browser; drag to orbit)"
