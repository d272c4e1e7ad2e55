#!/bin/bash
# Issue 13, part 2, on the real trainer: `measure.sh e128` runs two trainers side by side at the
# width and batch of session 3's run (E = 128, 8,192 tokens, one thread each), OLD against NEW;
# `measure.sh e192` compares the main run's layouts (threads and data-parallel workers).
# Then: python3 docs/runs/speed/summarize.py OUT
set -u
part=${1:?which part: e128 or e192}
NEW=${NEW:-build/iflame}; D=${DATA:-work/corpus/corpus.ifds}; OUT=${OUT:-runs/measure}; STEPS=${STEPS:-40}
rm -rf $OUT; mkdir -p $OUT
common="--preset cpu --config docs/runs/study/base.conf --set data.train=$D --set eval.every=0 --set eval.batches=1 --set log.every=1000"
export OMP_WAIT_POLICY=PASSIVE
if [ "$part" = e128 ]; then
  OLD=${OLD:?the trainer to compare against, e.g. an iflame binary built at 0499105}
  e128="--set model.dim=128 --set model.heads=4 --set train.steps=$STEPS"
  $OLD train $common $e128 --set out.dir=$OUT/before > $OUT/before.log 2>&1 &
  $NEW train $common $e128 --set out.dir=$OUT/after > $OUT/after.log 2>&1 &
  wait
else
  e192="--set model.dim=192 --set model.heads=6 --set train.threads=2"
  $NEW train $common $e192 --set train.steps=30 --set out.dir=$OUT/e192-t2-b8k > $OUT/e192-t2-b8k.log 2>&1
  $NEW train $common $e192 --set train.steps=30 --nproc 2 --set out.dir=$OUT/e192-dp2-b8k > $OUT/e192-dp2-b8k.log 2>&1
  big="--set train.steps=15 --set data.batch_tokens=16384 --set data.batch_size=32"
  $NEW train $common $e192 $big --nproc 2 --set out.dir=$OUT/e192-dp2-b16k > $OUT/e192-dp2-b16k.log 2>&1
  $NEW train $common $e192 $big --set out.dir=$OUT/e192-t2-b16k > $OUT/e192-t2-b16k.log 2>&1
fi
echo done
