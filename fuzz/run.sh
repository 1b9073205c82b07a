#!/usr/bin/env bash
# Builds the fuzz targets with clang and fuzzes the safetensors reader.
#   fuzz/run.sh [seconds]            default 60; PLINTH_FUZZ_BUILD picks the build folder
# New inputs it finds go to a temporary folder (the checked-in seeds stay as they are);
# a crashing input is saved as $build/crash-<sha1> and the run exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PLINTH_FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-60}

cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2

new_inputs=$(mktemp -d)
trap 'rm -rf "$new_inputs"' EXIT
"$build/fuzz_safetensors" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -dict="$root/fuzz/safetensors.dict" -artifact_prefix="$build/" \
  -print_final_stats=1 "$new_inputs" "$root/fuzz/corpus/safetensors"
