#!/bin/bash
# models/seed_cnn_fast.json (3 epochs) with every stride-1 3x3 layer forced to Winograd and with
# im2col + GEMM only, same seed: test accuracy after each epoch. 1 thread.
# Usage: bash accuracy.sh [seed]   (from the repository root)
seed=${1:-1}
out=$(dirname "$0")
for algo in gemm winograd; do
  PLINTH_CPU_CONV=$algo build/plinth train --device cpu --threads 1 --model models/seed_cnn_fast.json \
    --seed $seed --test-each-epoch --quiet --history $out/accuracy-$algo-seed$seed.json
done
