#!/usr/bin/env bash
# Checks that a build installs into a usable package: installs it into a temporary
# prefix, checks the layout (the public headers and no internal ones), compiles each
# installed header on its own against the package, builds examples/ against it with
# find_package(plinth) and runs the example for one short epoch on a Fashion-MNIST slice.
#   scripts/check_install.sh [BUILD_DIR]   (default: build; PLINTH_DEVICE=auto|cpu|cuda)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

say() { echo "check_install: $*"; }
die() { echo "check_install: FAILED: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null || die "cmake --install $build"
for f in include/plinth/plinth.h include/plinth/engine/sequential.h include/plinth/datasets/dataset.h \
         bin/plinth share/plinth/models/seed_cnn.json lib/cmake/plinth/plinthConfig.cmake; do
  [[ -e $prefix/$f ]] || die "$f is not installed"
done
ls "$prefix"/lib/libplinth.* >/dev/null 2>&1 || die "the library is not installed"
# The engine promises that no public header needs a CUDA header.
if grep -rlE '#include *[<"](cuda|cudnn|cublas|cub/|thrust/)' "$prefix/include"; then
  die "an installed header includes a CUDA header"
fi
# Nor an MPI or NCCL header: data-parallel training is behind engine/communicator.h.
if grep -rlE '#include *[<"](mpi|nccl)[^>"]*\.h' "$prefix/include"; then
  die "an installed header includes an MPI or NCCL header"
fi
# Only the public API is installed: internals and the tool's own headers stay behind.
for f in engine/hd.h engine/elementwise.h engine/augment_math.h engine/rng.h engine/json_fields.h \
         engine/device_dataset.h engine/layers datasets/sampling.h cli; do
  [[ ! -e $prefix/include/plinth/$f ]] || die "the internal $f is installed"
done
"$prefix/bin/plinth" info >/dev/null || die "the installed plinth does not run"
say "installed $build into a temporary prefix"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# Each installed header compiles on its own (one translation unit that includes only it),
# with nothing but the package's include paths and dependencies.
mkdir "$work/headers"
sources=()
for h in $(cd "$prefix/include" && find plinth -name '*.h' | sort); do
  source=$(echo "$h" | tr '/.' '__').cpp
  echo "#include <$h>" >"$work/headers/$source"
  sources+=("$source")
done
cat >"$work/headers/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.25)
project(plinth_header_check LANGUAGES CXX)
find_package(plinth CONFIG REQUIRED)
add_library(header_check OBJECT ${sources[*]})
target_link_libraries(header_check PRIVATE plinth::plinth)
EOF
cmake -S "$work/headers" -B "$work/headers/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  >/dev/null || die "configuring the header check against the installed package"
cmake --build "$work/headers/build" -j2 >"$work/headers.log" 2>&1 \
  || { cat "$work/headers.log"; die "an installed header does not compile on its own"; }
say "compiled each of the ${#sources[@]} installed headers on its own"
cmake -S "$root/examples" -B "$work/examples" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null \
  || die "configuring examples/ against the installed package"
cmake --build "$work/examples" -j2 >/dev/null || die "building examples/ against the installed package"
say "built examples/ with find_package(plinth)"

data=/usr/share/datasets/fashion-mnist
if [[ ! -e $data/train-images-idx3-ubyte.gz && ! -e $data/train-images-idx3-ubyte ]]; then
  say "WARN SKIPPED: running the example (no Fashion-MNIST in $data)"
  exit 0
fi
(cd "$work" && "$work/examples/seed_cnn" --epochs 1 --limit 2000 --device "${PLINTH_DEVICE:-auto}") \
  > "$work/example.log" 2>&1 || { cat "$work/example.log"; die "the example failed"; }
grep -q '^Test accuracy' "$work/example.log" && [[ -s $work/cnn.safetensors ]] \
  || { cat "$work/example.log"; die "the example did not report a test accuracy and save"; }
say "ran the example: $(grep '^Test accuracy' "$work/example.log")"
say "OK"
