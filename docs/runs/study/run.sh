#!/usr/bin/env bash
# One run of the scaling study: docs/runs/study/base.conf plus the run's overrides.
#   docs/runs/study/run.sh NAME DATASET RUNS_DIR KEY=VALUE...
# e.g. docs/runs/study/run.sh e128 work/corpus/corpus.ifds runs/study model.dim=128 model.heads=4 train.steps=520
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
name=$1 data=$2 runs=$3
shift 3
sets=(--set "data.train=$data" --set "out.dir=$runs/$name")
for kv in "$@"; do sets+=(--set "$kv"); done
mkdir -p "$runs"
OMP_WAIT_POLICY=PASSIVE exec "${IFLAME:-$REPO/build/iflame}" train --preset cpu --config "$REPO/docs/runs/study/base.conf" \
  --resume "${sets[@]}" > "$runs/$name.log" 2>&1
