#!/usr/bin/env python3
"""The PyTorch anchor: the seed CNN trained and timed the way plinth is, so the two can be
compared row for row.

  --mode bench  training and inference throughput per batch size (JSON rows + a table)
  --mode train  Keras-style training on Fashion-MNIST with time-to-accuracy

Recipe (Keras defaults): Glorot-uniform weights, zero biases, Adam lr 1e-3, betas
(0.9, 0.999), eps 1e-7, softmax cross-entropy, pixels / 255. Runs with Debian's torch 1.13
(/usr/bin/python3) and newer ones (.venv-torch/bin/python, see scripts/setup_pytorch.sh).
"""
import argparse
import gzip
import json
import math
import os
import resource
import socket
import statistics
import sys
import time

import numpy as np

DATA_DIR = os.environ.get("PLINTH_DATA") or "/usr/share/datasets/fashion-mnist"  # as plinth's --data
TRAIN_FLOP_PER_SAMPLE = 16.4e6  # forward + weight grads + data grads (shared/perf-notes.md)
INFER_FLOP_PER_SAMPLE = 2 * 2.79e6


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["bench", "train"], required=True)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="intra-op threads (default: all cores; Debian's torch would start with 1)")
    p.add_argument("--data", default=DATA_DIR, help="folder with the Fashion-MNIST IDX .gz files (default: "
                   "$PLINTH_DATA, else /usr/share/datasets/fashion-mnist)")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tf32", action="store_true",
                   help="cuda: let cuDNN/cuBLAS use TF32 (default: strict fp32, as plinth)")
    b = p.add_argument_group("bench")
    b.add_argument("--batch-sizes", help="comma-separated (default 32,64,256,1024 and 4096 on cuda)")
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
    return p.parse_args()


def read_idx(path):
    """An IDX file: big-endian magic (0, 0, dtype 0x08 = uint8, rank), then rank uint32 dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\0\0\x08":
        sys.exit(f"{path}: not an IDX uint8 file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != math.prod(dims):
        sys.exit(f"{path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def load_fashion_mnist(folder):
    def part(prefix):
        images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
        return (images.astype(np.float32) / 255.0)[:, None, :, :], labels.astype(np.int64)
    return part("train"), part("t10k")


def seed_cnn(torch):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        # Keras flattens HWC and PyTorch CHW: only a permutation of Linear(576, 64)'s inputs.
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(),
        nn.Linear(64, 10))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)  # Keras' glorot_uniform: same fans for conv and dense
            nn.init.zeros_(m.bias)
    return model


def adam(torch, model, capturable=False):
    kwargs = {"capturable": True} if capturable else {}
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, **kwargs)


def torch_source(torch):
    return "debian" if torch.__file__.startswith("/usr/lib/python3/dist-packages") else "pypi"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Timer:
    """Wall time of GPU work needs a sync at both ends; on the CPU the ops are synchronous."""

    def __init__(self, torch, device):
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def __enter__(self):
        self.sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.seconds = time.perf_counter() - self.start


# ---------------------------------------------------------------------------------- bench

def make_train_step(torch, model, opt, loss_fn):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def make_graph_train_step(torch, model, opt, loss_fn, x0, y0):
    """The whole step (forward, backward, Adam) captured once and replayed, as in PyTorch's
    'whole-network capture' recipe: static inputs, warm-up on a side stream, then capture."""
    static_x, static_y = x0.clone(), y0.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss_fn(model(static_x), static_y).backward()
        opt.step()

    def step(x, y):
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    return step


def make_infer_step(torch, model):
    def step(x, y):
        with torch.no_grad():
            model(x)
    return step


def time_windows(torch, args, step, x, y, batch, steps):
    """Runs warm-up steps, then args.repeats windows of `steps` steps; returns samples/s per
    window. Batches walk through the data set and wrap around."""
    offsets = range(0, x.shape[0] - batch + 1, batch)
    n = len(offsets)
    i = 0

    def run(count):
        nonlocal i
        for _ in range(count):
            o = offsets[i % n]
            step(x[o:o + batch], y[o:o + batch])
            i += 1

    run(args.warmup)
    rates = []
    for _ in range(args.repeats):
        with Timer(torch, args.device) as t:
            run(steps)
        rates.append(steps * batch / t.seconds)
    return rates


def bench(torch, args, train_set):
    device = args.device
    if args.batch_sizes:
        batches = [int(b) for b in args.batch_sizes.split(",")]
    else:
        batches = [32, 64, 256, 1024] + ([4096] if device == "cuda" else [])
    modes = args.modes.split(",")
    if max(batches) > train_set[0].shape[0] or min(batches) < 1:
        sys.exit(f"pytorch_seed_cnn: batch sizes must be 1..{train_set[0].shape[0]}")
    x = torch.from_numpy(train_set[0]).to(device)  # resident: time compute, not data transfer
    y = torch.from_numpy(train_set[1]).to(device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # PyTorch's fastest setting: autotune per shape
        device_baseline = torch.cuda.memory_allocated()
    loss_fn = torch.nn.CrossEntropyLoss()

    variants = []
    if "train" in modes:
        variants.append(("train", "eager"))
        if device == "cuda":
            variants.append(("train", "cuda-graph"))
    if "infer" in modes:
        variants.append(("infer", "eager"))

    rows = []
    for batch in batches:
        steps = args.steps or max(5, math.ceil(8192 / batch))
        for mode, variant in variants:
            torch.manual_seed(args.seed)
            model = seed_cnn(torch).to(device)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            if mode == "infer":
                model.eval()
                step = make_infer_step(torch, model)
            elif variant == "cuda-graph":
                opt = adam(torch, model, capturable=True)
                step = make_graph_train_step(torch, model, opt, loss_fn, x[:batch], y[:batch])
            else:
                step = make_train_step(torch, model, adam(torch, model), loss_fn)
            rates = time_windows(torch, args, step, x, y, batch, steps)
            row = {
                "engine": "pytorch", "version": torch.__version__, "source": torch_source(torch),
                "device": device, "mode": mode, "variant": variant, "batch_size": batch,
                "samples_per_second": statistics.median(rates),
                "spread": {"min": min(rates), "max": max(rates)},
                "windows": args.repeats, "steps_per_window": steps,
                "threads": torch.get_num_threads(),
                "precision": "tf32" if args.tf32 and device == "cuda" else "fp32",
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "peak_device_mb": None,
                "host": socket.gethostname(),
            }
            if device == "cuda":
                # The resident data set is left out: it is the same for every batch size.
                row["peak_device_mb"] = round((torch.cuda.max_memory_allocated() - device_baseline) / 2**20, 1)
            rows.append(row)
            print_row(row)
            del model, step
    return rows


def print_row(row):
    if not hasattr(print_row, "header"):
        print_row.header = True
        print(f"{'mode':<6} {'variant':<10} {'batch':>6} {'samples/s':>11} {'min':>10} {'max':>10} "
              f"{'GFLOP/s':>8} {'rss MB':>8} {'dev MB':>8}")
    flop = TRAIN_FLOP_PER_SAMPLE if row["mode"] == "train" else INFER_FLOP_PER_SAMPLE
    dev = "-" if row["peak_device_mb"] is None else f"{row['peak_device_mb']:.0f}"
    print(f"{row['mode']:<6} {row['variant']:<10} {row['batch_size']:>6} {row['samples_per_second']:>11,.0f} "
          f"{row['spread']['min']:>10,.0f} {row['spread']['max']:>10,.0f} "
          f"{row['samples_per_second'] * flop / 1e9:>8.1f} {row['peak_rss_mb']:>8.0f} {dev:>8}", flush=True)


# ---------------------------------------------------------------------------------- train

def evaluate(torch, model, loss_fn, x, y, batch=1024):
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for o in range(0, x.shape[0], batch):
            logits = model(x[o:o + batch])
            loss_sum += loss_fn(logits, y[o:o + batch]) * logits.shape[0]
            correct += (logits.argmax(1) == y[o:o + batch]).sum()
    model.train()
    return loss_sum.item() / x.shape[0], correct.item() / x.shape[0]


def train(torch, args, train_set, test_set):
    device = args.device
    n_all = train_set[0].shape[0]
    n_val = int(round(n_all * args.val_split))
    n_train = n_all - n_val
    to = lambda a: torch.from_numpy(a).to(device)
    x_train, y_train = to(train_set[0][:n_train]), to(train_set[1][:n_train])
    x_val, y_val = to(train_set[0][n_train:]), to(train_set[1][n_train:])
    x_test, y_test = to(test_set[0]), to(test_set[1])

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = seed_cnn(torch).to(device)
    opt = adam(torch, model)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = args.batch_size
    steps = math.ceil(n_train / batch)
    if args.max_steps:
        steps = min(steps, args.max_steps)
    print(f"Train on {n_train} samples, validate on {n_val} samples, test on {x_test.shape[0]}; "
          f"torch {torch.__version__} ({torch_source(torch)}), {device}, {torch.get_num_threads()} threads")

    history = {"engine": "pytorch", "version": torch.__version__, "source": torch_source(torch),
               "device": device, "model": "seed_cnn", "batch_size": batch,
               "threads": torch.get_num_threads(), "epochs": []}
    train_seconds = 0.0
    reached = None
    for epoch in range(1, args.epochs + 1):
        order = torch.from_numpy(rng.permutation(n_train)).to(device)  # Keras shuffles each epoch
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        with Timer(torch, device) as t:
            for s in range(steps):
                idx = order[s * batch:(s + 1) * batch]
                x, y = x_train[idx], y_train[idx]
                opt.zero_grad(set_to_none=True)
                logits = model(x)
                loss = loss_fn(logits, y)
                loss.backward()
                opt.step()
                # Running means as Keras prints them, summed on the device to avoid a sync per step.
                loss_sum += loss.detach() * x.shape[0]
                correct += (logits.detach().argmax(1) == y).sum()
                seen += x.shape[0]
        train_seconds += t.seconds
        record = {"epoch": epoch, "loss": loss_sum.item() / seen, "accuracy": correct.item() / seen,
                  "seconds": t.seconds, "samples_per_second": seen / t.seconds}
        if n_val:
            record["val_loss"], record["val_accuracy"] = evaluate(torch, model, loss_fn, x_val, y_val)
        record["test_loss"], record["test_accuracy"] = evaluate(torch, model, loss_fn, x_test, y_test)
        history["epochs"].append(record)
        if reached is None and record["test_accuracy"] >= args.target:
            reached = {"epoch": epoch, "seconds": train_seconds}

        print(f"Epoch {epoch}/{args.epochs}")
        line = (f"{steps}/{steps} - {t.seconds:.1f}s - {t.seconds / steps * 1e3:.1f}ms/step - "
                f"loss: {record['loss']:.4f} - accuracy: {record['accuracy']:.4f}")
        if n_val:
            line += f" - val_loss: {record['val_loss']:.4f} - val_accuracy: {record['val_accuracy']:.4f}"
        line += f" - test_accuracy: {record['test_accuracy']:.4f} - {record['samples_per_second']:,.0f} samples/s"
        print(line, flush=True)
        if reached and args.stop_at_target:
            break

    last = history["epochs"][-1]
    history["test"] = {"loss": last["test_loss"], "accuracy": last["test_accuracy"]}
    history["time_to_accuracy"] = {"target": args.target, "epoch": reached and reached["epoch"],
                                   "train_seconds": reached and reached["seconds"]}
    history["train_seconds"] = train_seconds
    history["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if reached:
        print(f"test accuracy >= {args.target} after epoch {reached['epoch']}: "
              f"{reached['seconds']:.1f} s of training (evaluation excluded)")
    else:
        print(f"test accuracy never reached {args.target} (best "
              f"{max(e['test_accuracy'] for e in history['epochs']):.4f})")
    return history


def main():
    args = parse_args()
    # OpenMP and MKL read these when torch loads them, so they must be set before the import.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit(f"pytorch_seed_cnn: --device cuda, but torch {torch.__version__} sees no usable GPU")
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    train_set, test_set = load_fashion_mnist(args.data)
    if args.mode == "bench":
        result = bench(torch, args, train_set)
    else:
        result = train(torch, args, train_set, test_set)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
