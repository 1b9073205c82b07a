#!/usr/bin/env bash
# Configures and builds plinth (Release) into build/ with the CUDA backend where nvcc is
# found. Extra arguments go to CMake's configure step, e.g. -DPLINTH_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
