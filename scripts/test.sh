#!/usr/bin/env bash
# README's second command (and CI's): install, build (the CUDA backend too where nvcc is
# found, so its compile errors are caught without a GPU), run every test. Tests that need
# a GPU report themselves as skipped on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
