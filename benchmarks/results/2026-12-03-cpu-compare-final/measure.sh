#!/bin/bash
# The measurements of this folder, in one run on the otherwise idle machine (started with
# setsid; autogroup priority -20 so that nothing else of the session competes).
echo -20 > /proc/$$/autogroup 2>/dev/null
cd "$(dirname "$0")/../../.."
R=benchmarks/results/2026-12-03-cpu-compare-final
git rev-parse --short HEAD > $R/commit.txt
/usr/bin/python3 benchmarks/compare.py --threads 2 --rounds 3 --tta --out $R > $R/compare.log 2>&1
/usr/bin/python3 benchmarks/compare.py --threads 2 --rounds 3 --contended --batch-sizes 32,256 \
  --out $R/contended > $R/contended.log 2>&1
for seed in 1 2 3; do
  env -u OPENBLAS_CORETYPE build/plinth bench --device cpu --threads 2 --model models/seed_cnn_fast.json \
    --batch-sizes 64 --modes none --time-to-accuracy --tta-batch 64 --tta-epochs 3 --seed $seed \
    --json $R/tta-seed$seed.json 2>&1 | grep "time to"
done > $R/tta-seeds.log
env -u OPENBLAS_CORETYPE bash scripts/train.sh > $R/train-seed-cnn-10-epochs.log 2>&1
# The per-layer table again, five times (the VM's speed moves between runs).
for run in 1 2 3 4 5; do
  env -u OPENBLAS_CORETYPE build/plinth bench --device cpu --threads 2 --modes none --layers \
    --gemm 2048 --json $R/layers-run$run.json > /dev/null 2>&1
done
echo done > $R/finished
