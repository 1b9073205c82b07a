#!/usr/bin/env bash
# README's image-folder workflow end to end, reproducible here: Fashion-MNIST written out as
# a folder of PNG and JPEG files (grey and RGB, one corrupt), packed, trained on, evaluated
# with F1, exported to ONNX and checked with onnxruntime against plinth predict.
#   bash scripts/image_folder_workflow.sh [OUT]      (default runs/folder; needs build/plinth,
#   and .venv-onnx from scripts/setup_onnx.sh for the last step)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/folder}
run() { echo "\$ $*"; "$@"; }
rm -rf "$out/images"
mkdir -p "$out"
run /usr/bin/python3 scripts/make_image_folder.py "$out/images" --train-per-class 300 \
  --test-per-class 100 --colour --corrupt
run build/plinth data pack "$out/images" "$out/fashion.pack" --shape 1,28,28
run build/plinth data info "$out/fashion.pack"
run build/plinth train --data "$out/fashion.pack" --model models/seed_cnn.json --epochs 5 \
  --device cpu --save "$out/cnn.safetensors"
run build/plinth eval --data "$out/fashion.pack" --checkpoint "$out/cnn.safetensors" \
  --device cpu --mistakes 3
run build/plinth export --checkpoint "$out/cnn.safetensors" --onnx "$out/cnn.onnx"
probes=("$out"/images/test/7_sneaker/*.png)
probes=("${probes[0]}" "$(ls "$out"/images/test/0_tshirt_top/*.png | head -1)"
        "$(ls "$out"/images/test/8_bag/*.png | head -1)")
run build/plinth predict --checkpoint "$out/cnn.safetensors" --device cpu --top 2 "${probes[@]}"
if [ -x .venv-onnx/bin/python ]; then
  run .venv-onnx/bin/python scripts/onnx_check.py --plinth build/plinth \
    --checkpoint "$out/cnn.safetensors" --onnx "$out/cnn.onnx" "${probes[@]}"
else
  echo "(onnxruntime check skipped: bash scripts/setup_onnx.sh makes .venv-onnx)"
fi
