#!/usr/bin/env python3
"""The PyTorch anchor for any plinth model file: the same graph, initialisation and recipe
(optimizer, learning-rate schedule, augmentation, epochs, batch size, validation split)
trained in PyTorch, with the accuracy and samples/s plinth reports, epoch by epoch.

The network is built from `plinth layers --model FILE --json`, as scripts/pytorch_interop.py
builds it (that script's PlinthModel), and initialised as plinth does (Glorot-uniform
weights, zero biases, BatchNorm weights at one). The recipe is read from the model file
with plinth's defaults. Differences that remain: the random streams (shuffling and
augmentation draw from NumPy, not plinth's counter-based generator), and Adam's epsilon,
which PyTorch adds after the bias correction and plinth (as Keras) before it.

  /usr/bin/python3 benchmarks/pytorch_model.py --model models/resnet_small.json --threads 2 \\
      --json runs/resnet-pytorch.json

benchmarks/compare_training.py runs it and `plinth train` on one model file, in one run.
"""
import argparse
import gzip
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("PLINTH_DATA") or "/usr/share/datasets/fashion-mnist"


def interop():
    """scripts/pytorch_interop.py as a module: its model builder and initialisation."""
    spec = importlib.util.spec_from_file_location("pytorch_interop",
                                                  os.path.join(ROOT, "scripts", "pytorch_interop.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\0\0\x08":
        sys.exit(f"{path}: not an IDX uint8 file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def recipe(spec):
    """The model file's optimizer and training recipe, with plinth's defaults."""
    opt = spec.get("optimizer", "adam")
    opt = {"type": opt} if isinstance(opt, str) else dict(opt)
    kind = opt["type"]
    opt.setdefault("lr", 0.01 if kind == "sgd" else 1e-3)
    opt.setdefault("momentum", 0.0)
    opt.setdefault("nesterov", False)
    opt.setdefault("beta1", 0.9)
    opt.setdefault("beta2", 0.999)
    opt.setdefault("rho", 0.9)
    opt.setdefault("eps", 1e-7)
    opt.setdefault("weight_decay", 0.01 if kind == "adamw" else 0.0)
    t = dict(spec.get("training", {}))
    t.setdefault("epochs", 10)
    t.setdefault("batch_size", 32)
    t.setdefault("val_split", 0.1)
    t.setdefault("normalize", False)
    augment = {"shift": 0, "rotate": 0, "scale": 0, "horizontal_flip": False}
    augment.update(t.get("augment", {}))
    t["augment"] = augment
    schedule = {"type": "constant", "step_epochs": 1, "gamma": 0.1, "min_lr": 0.0, "warmup": 0.3,
                "start_factor": 0.04}
    schedule.update(t.get("schedule", {}))
    t["schedule"] = schedule
    return opt, t


def optimizer_for(model, opt):
    p = model.parameters()
    if opt["type"] == "sgd":
        return torch.optim.SGD(p, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"],
                               weight_decay=opt["weight_decay"])
    if opt["type"] == "adam":
        return torch.optim.Adam(p, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"],
                                weight_decay=opt["weight_decay"])
    if opt["type"] == "adamw":
        return torch.optim.AdamW(p, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"],
                                 weight_decay=opt["weight_decay"])
    if opt["type"] == "rmsprop":
        return torch.optim.RMSprop(p, lr=opt["lr"], alpha=opt["rho"], eps=opt["eps"],
                                   weight_decay=opt["weight_decay"])
    sys.exit(f"unknown optimizer {opt['type']}")


def learning_rate(lr, schedule, epochs, epoch, step, steps_per_epoch):
    """plinth's Trainer::learning_rate: step counts from the start of the run."""
    t = min(1.0, step / max(1.0, epochs * steps_per_epoch))
    kind = schedule["type"]
    if kind == "step":
        return lr * schedule["gamma"] ** (epoch // schedule["step_epochs"])
    if kind == "cosine":
        return schedule["min_lr"] + (lr - schedule["min_lr"]) * 0.5 * (1 + math.cos(math.pi * t))
    if kind == "one_cycle":
        warmup, start = schedule["warmup"], schedule["start_factor"]
        if t < warmup:
            return lr * (start + (1 - start) * t / warmup)
        u = (t - warmup) / (1 - warmup)
        return schedule["min_lr"] + (lr - schedule["min_lr"]) * 0.5 * (1 + math.cos(math.pi * u))
    return lr


def augment(x, spec, rng):
    """plinth's augmentation (engine/augment_math.h): per sample a shift, rotation, scale and
    horizontal flip drawn uniformly, sampled bilinearly with zeros outside."""
    n, _, h, w = x.shape
    sym = lambda r: torch.from_numpy(rng.uniform(-r, r, n).astype(np.float32))
    tx, ty = sym(spec["shift"]), sym(spec["shift"])
    angle = sym(spec["rotate"]) * (math.pi / 180)
    scale = 1 + sym(spec["scale"])
    flip = torch.from_numpy(np.where(rng.uniform(0, 1, n) < 0.5, -1.0, 1.0).astype(np.float32)) \
        if spec["horizontal_flip"] else torch.ones(n)
    cs, sn = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Input position (pixels) of output pixel (x, y): A (x - c - t) + c, with A's rows
    # (cs f, sn) and (-sn f, cs); in grid_sample's [-1, 1] coordinates (align_corners) the
    # centre c maps to 0 and a pixel to 2 / (size - 1).
    sx, sy = 2.0 / (w - 1), 2.0 / (h - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cs * flip
    theta[:, 0, 1] = sn * sx / sy
    theta[:, 1, 0] = -sn * flip * sy / sx
    theta[:, 1, 1] = cs
    theta[:, 0, 2] = -(cs * flip * tx + sn * ty) * sx
    theta[:, 1, 2] = -(-sn * flip * tx + cs * ty) * sy
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return loss / max(1, len(y)), correct / max(1, len(y))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a plinth model file")
    p.add_argument("--plinth", default=os.environ.get("PLINTH", os.path.join(ROOT, "build", "plinth")))
    p.add_argument("--data", default=DATA_DIR)
    p.add_argument("--epochs", type=int, help="instead of the recipe's")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--max-steps", type=int, default=0, help="smoke runs: stop after this many steps")
    p.add_argument("--json", help="write the history and the test result here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    with open(args.model) as f:
        spec = json.load(f)
    opt_spec, t = recipe(spec)
    epochs = args.epochs or t["epochs"]
    batch = t["batch_size"]

    ip = interop()
    ip_args = argparse.Namespace(plinth=args.plinth)
    model = ip.build_model(ip_args, args.model)
    ip.keras_init(model, args.seed)
    optimizer = optimizer_for(model, opt_spec)

    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    n_train = int(math.floor(len(labels) * (1 - t["val_split"])))
    x_all = images.astype(np.float32) / 255
    mean, std = (float(x_all[:n_train].mean()), float(x_all[:n_train].std())) if t["normalize"] else (0.0, 1.0)
    to_tensor = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32)[:, None])
    x_train, y_train = to_tensor(x_all[:n_train]), torch.from_numpy(labels[:n_train])
    x_val, y_val = to_tensor(x_all[n_train:]), torch.from_numpy(labels[n_train:])
    test_images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255
    x_test = to_tensor(test_images)
    y_test = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))

    steps_per_epoch = n_train // batch
    augmenting = t["augment"]["shift"] > 0 or t["augment"]["rotate"] > 0 or t["augment"]["scale"] > 0 \
        or t["augment"]["horizontal_flip"]
    print(f"pytorch_model: torch {torch.__version__}, {args.threads} threads; {spec.get('name', '?')}: "
          f"{sum(p.numel() for p in model.parameters())} parameters, {opt_spec['type']} lr {opt_spec['lr']}, "
          f"batch {batch}, {epochs} epochs, {n_train} training images", flush=True)
    history, step, train_seconds = [], 0, 0.0
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(n_train))
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        for b in range(steps_per_epoch):
            if args.max_steps and step >= args.max_steps:
                break
            idx = order[b * batch:(b + 1) * batch]
            x, y = x_train[idx], y_train[idx]
            if augmenting:
                x = augment(x, t["augment"], rng)
            lr = learning_rate(opt_spec["lr"], t["schedule"], epochs, epoch, step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += int((out.argmax(1) == y).sum())
            seen += len(y)
        seconds = time.perf_counter() - start
        train_seconds += seconds
        val_loss, val_acc = evaluate(model, x_val, y_val) if len(y_val) else (0.0, 0.0)
        record = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "accuracy": correct / max(1, seen),
                  "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr, "seconds": seconds,
                  "samples_per_second": seen / max(seconds, 1e-9)}
        history.append(record)
        print(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - loss: {record['loss']:.4f} - accuracy: "
              f"{record['accuracy']:.4f} - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f} - "
              f"{record['samples_per_second']:.0f} samples/s - lr: {lr:.4g}", flush=True)
        if args.max_steps and step >= args.max_steps:
            break
    test_loss, test_acc = evaluate(model, x_test, y_test)
    print(f"Test accuracy: {test_acc:.4f} - test loss: {test_loss:.4f} ({len(y_test)} images); "
          f"{train_seconds:.1f} s of training")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engine": f"pytorch {torch.__version__}", "model": args.model, "seed": args.seed,
                       "threads": args.threads, "history": history, "test_accuracy": test_acc,
                       "test_loss": test_loss, "train_seconds": train_seconds}, f, indent=1)


if __name__ == "__main__":
    main()
