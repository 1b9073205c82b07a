#!/usr/bin/env bash
# README's first command: install, build the plinth tool (only it: the tests are built by
# scripts/test.sh), train the seed CNN on Fashion-MNIST (GPU if one is usable, else the
# CPU) for 10 epochs and report test accuracy. Extra arguments go to `plinth train`, e.g.
# --epochs 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target plinth_cli
mkdir -p runs
exec build/plinth train --model models/seed_cnn.json --device auto --epochs 10 --batch-size 32 \
  --history runs/seed_cnn.history.json --save runs/seed_cnn.safetensors "$@"
