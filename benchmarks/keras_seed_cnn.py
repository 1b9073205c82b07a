#!/usr/bin/env python3
"""The seed's own engine as an anchor: the source text's Keras code (TensorFlow's CPU build
from PyPI, scripts/setup_tensorflow.sh) trained and timed the way plinth and
benchmarks/pytorch_seed_cnn.py are, with the same options and JSON rows.

  --mode bench  training and inference throughput per batch size (train_on_batch /
                predict_on_batch on resident data; the median of timed windows)
  --mode train  model.fit as in the source text (batch 32, Adam, categorical cross-entropy),
                with a validation split, test accuracy per epoch and time-to-accuracy

The network and its defaults are the source text's: Conv2D 32 -> MaxPool -> Conv2D 64 ->
MaxPool -> Conv2D 64 -> Flatten -> Dense 64 -> Dense 10 softmax, valid padding, Glorot-uniform
kernels, zero biases, Adam lr 1e-3 (eps 1e-7), pixels / 255, inputs 28x28x1 (channels last).

  .venv-tf/bin/python benchmarks/keras_seed_cnn.py --mode bench --threads 2
"""
import argparse
import json
import math
import os
import socket
import statistics
import sys
import time

from pytorch_seed_cnn import (INFER_FLOP_PER_SAMPLE, TRAIN_FLOP_PER_SAMPLE, DATA_DIR,
                              load_fashion_mnist, peak_rss_mb)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["bench", "train"], required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="TensorFlow's intra-op threads (inter-op: 1, so the cores are not oversubscribed)")
    p.add_argument("--data", default=DATA_DIR, help="folder with the Fashion-MNIST IDX .gz files")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--seed", type=int, default=0)
    b = p.add_argument_group("bench")
    b.add_argument("--batch-sizes", default="32,64,256,1024")
    b.add_argument("--steps", type=int, default=0,
                   help="steps per timed window (default: enough for 8192 samples, at least 5)")
    b.add_argument("--warmup", type=int, default=10, help="untimed steps before the windows")
    b.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    b.add_argument("--modes", default="train,infer", help="which of train,infer to time")
    t = p.add_argument_group("train")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--val-split", type=float, default=0.1,
                   help="fraction held out from the end of the training set (0: train on all 60000)")
    t.add_argument("--target", type=float, default=0.90, help="test accuracy for time-to-accuracy")
    t.add_argument("--stop-at-target", action="store_true", help="stop after the epoch that reaches --target")
    t.add_argument("--max-steps", type=int, default=0, help="smoke tests: stop each epoch after this many steps")
    args = p.parse_args()
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def seed_cnn(keras):
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def channels_last(data):
    images, labels = data
    return images.transpose(0, 2, 3, 1).copy(), labels


def one_hot(np, labels):
    return np.eye(10, dtype=np.float32)[labels]


def row(tf, args, mode, batch, rates, steps):
    return {"engine": "keras", "version": tf.__version__, "source": "pypi", "device": "cpu",
            "mode": mode, "variant": "eager",
            "batch_size": batch, "samples_per_second": statistics.median(rates),
            "spread": {"min": min(rates), "max": max(rates)}, "windows": args.repeats,
            "steps_per_window": steps, "threads": args.threads, "precision": "fp32",
            "peak_rss_mb": round(peak_rss_mb(), 1), "peak_device_mb": None,
            "host": socket.gethostname()}


def bench(tf, np, args, train_set):
    keras = tf.keras
    x, labels = train_set
    y = one_hot(np, labels)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    if max(batches) > x.shape[0] or min(batches) < 1:
        sys.exit(f"keras_seed_cnn: batch sizes must be 1..{x.shape[0]}")
    rows = []
    print(f"{'mode':<6} {'batch':>6} {'samples/s':>11} {'min':>10} {'max':>10} {'GFLOP/s':>8}")
    for batch in batches:
        steps = args.steps or max(5, math.ceil(8192 / batch))
        offsets = range(0, x.shape[0] - batch + 1, batch)
        for mode in args.modes.split(","):
            keras.utils.set_random_seed(args.seed)
            model = seed_cnn(keras)
            if mode == "train":
                step = lambda xb, yb: model.train_on_batch(xb, yb)
            else:
                step = lambda xb, yb: model.predict_on_batch(xb)
            i = 0

            def run(count):
                nonlocal i
                for _ in range(count):
                    o = offsets[i % len(offsets)]
                    step(x[o:o + batch], y[o:o + batch])
                    i += 1

            run(args.warmup)
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                run(steps)
                rates.append(steps * batch / (time.perf_counter() - start))
            r = row(tf, args, mode, batch, rates, steps)
            flop = TRAIN_FLOP_PER_SAMPLE if mode == "train" else INFER_FLOP_PER_SAMPLE
            print(f"{mode:<6} {batch:>6} {r['samples_per_second']:>11,.0f} {min(rates):>10,.0f} "
                  f"{max(rates):>10,.0f} {r['samples_per_second'] * flop / 1e9:>8.1f}", flush=True)
            rows.append(r)
    return rows


def train(tf, np, args, train_set, test_set):
    keras = tf.keras
    n_all = train_set[0].shape[0]
    n_val = int(round(n_all * args.val_split))
    n_train = n_all - n_val
    x, y = train_set[0], one_hot(np, train_set[1])
    x_test, y_test = test_set[0], one_hot(np, test_set[1])
    keras.utils.set_random_seed(args.seed)
    model = seed_cnn(keras)
    history = {"engine": "keras", "version": tf.__version__, "source": "pypi", "device": "cpu",
               "model": "seed_cnn", "batch_size": args.batch_size, "threads": args.threads,
               "epochs": []}
    steps = math.ceil(n_train / args.batch_size)
    if args.max_steps:
        steps = min(steps, args.max_steps)
    print(f"Train on {n_train} samples, validate on {n_val}, test on {x_test.shape[0]}; "
          f"TensorFlow {tf.__version__}, {args.threads} threads")
    train_seconds, reached = 0.0, None
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        fit = model.fit(x[:n_train], y[:n_train], batch_size=args.batch_size, epochs=1,
                        steps_per_epoch=steps if args.max_steps else None, shuffle=True, verbose=0)
        seconds = time.perf_counter() - start
        train_seconds += seconds
        seen = min(n_train, steps * args.batch_size)
        record = {"epoch": epoch, "loss": fit.history["loss"][-1],
                  "accuracy": fit.history["accuracy"][-1], "seconds": seconds,
                  "samples_per_second": seen / seconds}
        if n_val:
            record["val_loss"], record["val_accuracy"] = model.evaluate(
                x[n_train:], y[n_train:], batch_size=1024, verbose=0)
        record["test_loss"], record["test_accuracy"] = model.evaluate(x_test, y_test, batch_size=1024,
                                                                      verbose=0)
        history["epochs"].append(record)
        if reached is None and record["test_accuracy"] >= args.target:
            reached = {"epoch": epoch, "seconds": train_seconds}
        print(f"Epoch {epoch}/{args.epochs} - {seconds:.1f}s - loss: {record['loss']:.4f} - "
              f"accuracy: {record['accuracy']:.4f} - test_accuracy: {record['test_accuracy']:.4f} - "
              f"{record['samples_per_second']:,.0f} samples/s", flush=True)
        if reached and args.stop_at_target:
            break
    last = history["epochs"][-1]
    history["test"] = {"loss": last["test_loss"], "accuracy": last["test_accuracy"]}
    history["time_to_accuracy"] = {"target": args.target, "epoch": reached and reached["epoch"],
                                   "train_seconds": reached and reached["seconds"]}
    history["train_seconds"] = train_seconds
    history["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return history


def main():
    args = parse_args()
    # TensorFlow reads these when it starts its thread pools: set before the import.
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    train_set, test_set = load_fashion_mnist(args.data)
    train_set, test_set = channels_last(train_set), channels_last(test_set)
    if args.mode == "bench":
        result = bench(tf, np, args, train_set)
    else:
        result = train(tf, np, args, train_set, test_set)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
