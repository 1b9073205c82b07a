#!/usr/bin/env bash
# Installs plinth's build and run dependencies from Debian's packages (Debian 12).
# The CUDA toolkit is not a Debian package here: where /usr/local/cuda exists the CUDA
# backend is built as well (PLINTH_CUDA=AUTO), otherwise plinth is CPU-only.
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libfmt-dev nlohmann-json3-dev zlib1g-dev
          libopenblas-openmp-dev libpng-dev libturbojpeg0-dev libonnx-dev libprotobuf-dev
          libopenmpi-dev openmpi-bin catch2 clang-format dataset-fashion-mnist
          python3 python3-numpy python3-matplotlib python3-pil python3-venv "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "plinth: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
