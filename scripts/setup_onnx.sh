#!/usr/bin/env bash
# Makes .venv-onnx: onnx (its checker) and onnxruntime from PyPI, with numpy and Pillow, for
# the test that compares an exported model with plinth predict (scripts/onnx_check.py) and
# README's workflow. The test reports itself skipped where this venv is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-onnx
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv" || {
    echo "setup_onnx: python3 -m venv failed (apt-get install python3-venv)" >&2
    exit 1
  }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check onnx onnxruntime numpy pillow
"$venv/bin/python" -c 'import onnx, onnxruntime; print("setup_onnx: onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__)'
