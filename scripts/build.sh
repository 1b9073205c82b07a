#!/usr/bin/env bash
# Configures and builds plinth (Release) into build/ with the CUDA backend where nvcc is
# found. `--target NAME` builds only that target (scripts/train.sh: plinth_cli, the plinth
# tool); other arguments go to CMake's configure step, e.g. -DPLINTH_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
configure=()
targets=()
while (($#)); do
  if [[ $1 == --target ]]; then
    (($# >= 2)) || { echo "scripts/build.sh: --target needs a target name" >&2; exit 2; }
    targets+=(--target "$2")
    shift 2
  else
    configure+=("$1")
    shift
  fi
done
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${configure[@]}" >/dev/null
cmake --build build -j"$(nproc)" "${targets[@]}"
