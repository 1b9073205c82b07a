#!/usr/bin/env python3
"""Checks an ONNX model exported by `plinth export` against plinth itself.

    .venv-onnx/bin/python scripts/onnx_check.py --plinth build/plinth \
        --checkpoint C.safetensors --onnx model.onnx IMAGE.png ...

onnx.checker validates the file; onnxruntime runs it on each image (decoded with Pillow,
which must already have the model's input size and channels: no resizing here, so both
see the same pixels), and its logits and probabilities are compared with
`plinth predict --json --logits` on the same files. Exits non-zero when the largest
absolute difference exceeds --tolerance (1e-4) or a predicted class differs.
"""
import argparse
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plinth", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()

    model = onnx.load(args.onnx)
    onnx.checker.check_model(model, full_check=True)
    session = onnxruntime.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    _, channels, height, width = session.get_inputs()[0].shape
    batch = []
    for path in args.images:
        image = np.asarray(Image.open(path).convert("L" if channels == 1 else "RGB"))
        if image.shape[:2] != (height, width):
            sys.exit(f"{path}: {image.shape[1]}x{image.shape[0]}, the model takes {width}x{height}")
        image = image.reshape(height, width, -1).transpose(2, 0, 1)
        batch.append(image.astype(np.float32))
    logits, probabilities = session.run(["logits", "probabilities"], {"image": np.stack(batch)})

    out = subprocess.run([args.plinth, "predict", "--device", "cpu", "--json", "--logits",
                          "--checkpoint", args.checkpoint, *args.images],
                         check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    plinth_logits = np.array([row["logits"] for row in rows], dtype=np.float32)
    plinth_class = np.array([row["top"][0]["class"] for row in rows])
    plinth_top = np.array([row["top"][0]["probability"] for row in rows], dtype=np.float32)

    logit_diff = float(np.max(np.abs(logits - plinth_logits)))
    top_diff = float(np.max(np.abs(probabilities.max(axis=1) - plinth_top)))
    same = bool(np.all(probabilities.argmax(axis=1) == plinth_class))
    print(f"onnx_check: onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}: "
          f"{len(rows)} images, max |logits - plinth's| = {logit_diff:.2e}, "
          f"max |top probability - plinth's| = {top_diff:.2e}, same class for every image: "
          f"{'yes' if same else 'no'}")
    for path, p in zip(args.images, probabilities):
        print(f"  {path}: class {int(p.argmax())} ({float(p.max()):.4f})")
    if logit_diff > args.tolerance or top_diff > args.tolerance or not same:
        sys.exit("onnx_check: FAILED: onnxruntime and plinth disagree")


if __name__ == "__main__":
    main()
