#!/usr/bin/env bash
# Reproduces the shipped model (models/README.md): install, build, download the Debian
# game-data corpus and prepare it (near-duplicates removed), train with models/recipe.conf,
# and write models/iflame-default.safetensors (bf16, with its sampling defaults).
#
#   scripts/train.sh              # RUN = work/train-run; re-run to continue (--resume)
#
# Takes about 10 hours on a 2-core machine (docs: models/README.md); stop it at any time and
# run it again to continue from the last checkpoint. Environment: IFLAME_WORK (default ./work),
# RUN (the run folder; keep it outside the repository), INIT and INIT_STEP (a run folder that is
# lost can go on from weights it left, e.g. INIT=models/iflame-default.safetensors INIT_STEP=4950:
# its schedule continues at that step with fresh optimizer state; a folder with a checkpoint
# resumes from it and ignores them).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${IFLAME_WORK:-$REPO/work}
RUN=${RUN:-$WORK/train-run}
mkdir -p "$WORK"

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target iflame
IFLAME=$REPO/build/iflame

echo "== corpus"
bash scripts/build-corpus.sh "$WORK/corpus"

echo "== training (models/recipe.conf) into $RUN"
# Passive OpenMP waits: the many small LibTorch ops of a small model leave threads idle
# between parallel regions, and spinning there takes CPU from the other worker.
INIT_SETS=()
if [ -n "${INIT:-}" ]; then INIT_SETS=(--set train.init="$INIT" --set train.init_step="${INIT_STEP:-0}"); fi
OMP_WAIT_POLICY=PASSIVE "$IFLAME" train --preset cpu --config models/recipe.conf --resume \
  --set data.train="$WORK/corpus/corpus.ifds" --set out.dir="$RUN" "${INIT_SETS[@]}"

echo "== exporting models/iflame-default.safetensors"
# The sampling defaults chosen by 1-NNA on the validation split (docs/quality.md).
# shellcheck source=../models/sampling-defaults.sh
source models/sampling-defaults.sh
META=()
for kv in "${SAMPLING_DEFAULTS[@]}"; do META+=(--meta "$kv"); done
"$IFLAME" convert "$RUN/best/model.safetensors" models/iflame-default.safetensors --dtype bf16 "${META[@]}"
