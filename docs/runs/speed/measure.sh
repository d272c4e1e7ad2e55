#!/bin/bash
# Part 2 before/after side by side, then the main run's parallelism, on the real trainer.
set -u
NEW=${NEW:-build/iflame}; OLD=${OLD:?the trainer to compare against: an iflame binary built before the OpenBLAS fix, e.g. at 5cc6bf6}; D=${DATA:-work/corpus/corpus.ifds}; OUT=${OUT:-runs/measure}
rm -rf $OUT; mkdir -p $OUT
common="--preset cpu --config docs/runs/study/base.conf --set data.train=$D --set eval.every=0 --set eval.batches=1 --set log.every=1000"
export OMP_WAIT_POLICY=PASSIVE
# 1. E=128 (the width and batch of session 3's run, docs/history.md), 1 thread each, both at once
$OLD train $common --set model.dim=128 --set model.heads=4 --set train.steps=60 --set out.dir=$OUT/before > $OUT/before.log 2>&1 &
$NEW train $common --set model.dim=128 --set model.heads=4 --set train.steps=60 --set out.dir=$OUT/after > $OUT/after.log 2>&1 &
wait
# 2. E=192: one process with 2 threads vs two 1-thread workers, batch 8192 and 16384
$NEW train $common --set model.dim=192 --set model.heads=6 --set train.steps=30 --set train.threads=2 --set out.dir=$OUT/e192-t2-b8k > $OUT/e192-t2-b8k.log 2>&1
$NEW train $common --set model.dim=192 --set model.heads=6 --set train.steps=30 --set train.threads=2 --nproc 2 --set out.dir=$OUT/e192-dp2-b8k > $OUT/e192-dp2-b8k.log 2>&1
$NEW train $common --set model.dim=192 --set model.heads=6 --set train.steps=15 --set train.threads=2 --nproc 2 --set data.batch_tokens=16384 --set data.batch_size=32 --set out.dir=$OUT/e192-dp2-b16k > $OUT/e192-dp2-b16k.log 2>&1
$NEW train $common --set model.dim=192 --set model.heads=6 --set train.steps=15 --set train.threads=2 --set data.batch_tokens=16384 --set data.batch_size=32 --set out.dir=$OUT/e192-t2-b16k > $OUT/e192-t2-b16k.log 2>&1
echo done
