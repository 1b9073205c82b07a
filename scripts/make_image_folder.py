#!/usr/bin/env python3
"""Writes part of Fashion-MNIST out as an image folder, the layout `plinth --data` reads:

    /usr/bin/python3 scripts/make_image_folder.py OUT [--train-per-class N] [--test-per-class M]

OUT/train/<class>/*.png|jpg and OUT/test/<class>/*.png|jpg, the first N (M) images of each
class in file order, alternately PNG and JPEG (quality 95), grey as in the data set; with
--colour every other image is written as RGB (the grey value in all three channels), and
--corrupt adds one truncated PNG to train/ (plinth skips it, or refuses it with --strict).
Class folders are numbered so that their sorted order is Fashion-MNIST's label order.
Needs numpy and Pillow (Debian: python3-numpy, python3-pil).
"""
import argparse
import gzip
import os

import numpy as np
from PIL import Image

CLASSES = ["0_tshirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat", "5_sandal",
           "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise SystemExit(f"{data_dir}: no {stem}[.gz]")


def write_split(args, prefix, split, per_class):
    images = read_idx(find(args.data, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(args.data, f"{prefix}-labels-idx1-ubyte"))
    written = 0
    for c, name in enumerate(CLASSES):
        folder = os.path.join(args.out, split, name)
        os.makedirs(folder, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            image = Image.fromarray(images[i])
            if args.colour and k % 4 >= 2:
                image = image.convert("RGB")
            path = os.path.join(folder, f"{i:05d}." + ("png" if k % 2 == 0 else "jpg"))
            image.save(path, quality=95) if path.endswith(".jpg") else image.save(path)
            written += 1
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--colour", action="store_true")
    parser.add_argument("--corrupt", action="store_true")
    args = parser.parse_args()
    train = write_split(args, "train", "train", args.train_per_class)
    test = write_split(args, "t10k", "test", args.test_per_class)
    if args.corrupt:
        path = os.path.join(args.out, "train", CLASSES[0], "corrupt.png")
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    print(f"make_image_folder: {train} training and {test} test images in {args.out}"
          + (" (and one corrupt PNG)" if args.corrupt else ""))


if __name__ == "__main__":
    main()
