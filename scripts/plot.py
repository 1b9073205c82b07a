#!/usr/bin/python3
"""Plots plinth's and PyTorch's JSON outputs (Debian's python3-matplotlib, no display needed).

  plot.py history HISTORY.json [MORE.json ...] [--labels a,b] -o out.png
      loss and accuracy per epoch, train vs validation (and test where recorded)
  plot.py confusion EVAL.json [--classes fashion|none|a,b,...] -o out.png
      confusion matrix, rows = true class, normalised per row, counts written in the cells
  plot.py bench BENCH.json [MORE.json ...] -o out.png
      throughput vs batch size, one line per engine/version/device/mode/variant
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"plot.py: {path}: {e}")


def need(obj, key, path):
    if key not in obj:
        sys.exit(f"plot.py: {path}: no '{key}' field")
    return obj[key]


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def save(fig, out):
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(f"wrote {out}")


# -------------------------------------------------------------------------------- history

def history_label(h, path):
    parts = [h.get("engine") or h.get("model"), h.get("version"), h.get("device")]
    parts = [str(p) for p in parts if p]
    return " ".join(parts) if parts else stem(path)


def plot_history(args):
    labels = args.labels.split(",") if args.labels else []
    if labels and len(labels) != len(args.files):
        sys.exit(f"plot.py: {len(labels)} labels for {len(args.files)} files")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, path in enumerate(args.files):
        h = load(path)
        epochs = need(h, "epochs", path)
        if not epochs:
            sys.exit(f"plot.py: {path}: 'epochs' is empty")
        label = labels[i] if labels else history_label(h, path)
        color = colors[i % len(colors)]
        x = [e["epoch"] for e in epochs]
        # Solid: training (running mean over the epoch); dashed: validation; dotted: test.
        for suffix, style, name in (("", "-", "train"), ("val_", "--", "val"), ("test_", ":", "test")):
            for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
                key = suffix + metric
                if all(key in e for e in epochs):
                    ax.plot(x, [e[key] for e in epochs], style, color=color, marker="o",
                            markersize=3, label=f"{label} {name}")
        test = h.get("test")
        if test and not all("test_accuracy" in e for e in epochs):
            ax_acc.plot([x[-1]], [test["accuracy"]], "*", color=color, markersize=12,
                        label=f"{label} test {test['accuracy']:.4f}")
            if "loss" in test:
                ax_loss.plot([x[-1]], [test["loss"]], "*", color=color, markersize=12)
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8, loc="best")
    save(fig, args.output)


# ------------------------------------------------------------------------------ confusion

def class_names(spec, n):
    if spec == "none":
        return [str(i) for i in range(n)]
    if spec == "fashion":
        return FASHION_MNIST if n == len(FASHION_MNIST) else [str(i) for i in range(n)]
    names = spec.split(",")
    if len(names) != n:
        sys.exit(f"plot.py: {len(names)} class names for {n} classes")
    return names


def plot_confusion(args):
    e = load(args.file)
    matrix = need(e, "confusion", args.file)
    n = len(matrix)
    if n == 0 or any(len(row) != n for row in matrix):
        sys.exit(f"plot.py: {args.file}: 'confusion' is not a square matrix")
    names = class_names(args.classes, n)
    per_class = e.get("per_class_accuracy") or [
        row[i] / sum(row) if sum(row) else 0.0 for i, row in enumerate(matrix)]
    # Colour by the share of each true class so rare classes are as readable as common ones.
    shares = [[c / sum(row) if sum(row) else 0.0 for c in row] for row in matrix]

    fig, ax = plt.subplots(figsize=(0.75 * n + 3, 0.65 * n + 1.5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8,
                    color="white" if shares[i][j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{name} ({acc:.1%})" for name, acc in zip(names, per_class)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (per-class accuracy)")
    title = "confusion matrix"
    if "count" in e:
        title += f" of {e['count']:,} images"
    if "accuracy" in e:
        title += f": accuracy {e['accuracy']:.4f}"
    if "loss" in e:
        title += f", loss {e['loss']:.4f}"
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    save(fig, args.output)


# ---------------------------------------------------------------------------------- bench

def series_key(row):
    variant = row.get("variant", "eager")
    return (row["engine"], str(row.get("version", "")), row["device"], row["mode"],
            "" if variant == "eager" else variant)


def plot_bench(args):
    series = {}  # (file, key) -> rows; the file is only shown where keys repeat across files
    for path in args.files:
        rows = load(path)
        if not isinstance(rows, list):
            sys.exit(f"plot.py: {path}: expected a list of rows")
        for row in rows:
            for field in ("engine", "device", "mode", "batch_size", "samples_per_second"):
                need(row, field, path)
            series.setdefault((path, series_key(row)), []).append(row)
    if not series:
        sys.exit("plot.py: no rows to plot")
    keys = [k for _, k in series]
    engines = sorted({k[0] for k in keys})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of = {}

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for (path, key), rows in sorted(series.items(), key=lambda s: s[0][1]):
        rows.sort(key=lambda r: r["batch_size"])
        x = [r["batch_size"] for r in rows]
        y = [r["samples_per_second"] for r in rows]
        spread = [r.get("spread") for r in rows]
        low = [yi - s["min"] if s else 0 for yi, s in zip(y, spread)]
        high = [s["max"] - yi if s else 0 for yi, s in zip(y, spread)]
        engine, version, device, mode, variant = key
        repeated = keys.count(key) > 1
        line = (engine, version, device, variant, path if repeated else "")  # train and infer share a colour
        color = color_of.setdefault(line, colors[len(color_of) % len(colors)])
        label = " ".join(p for p in (engine, version, device, variant, mode) if p)
        if repeated:
            label += f" [{stem(path)}]"
        ax.errorbar(x, y, yerr=[low, high], color=color, capsize=3,
                    linestyle="-" if mode == "train" else "--",
                    marker="o" if engine == engines[0] else "s", label=label)
    values = [r["samples_per_second"] for rows in series.values() for r in rows]
    ax.set_xscale("log", base=2)
    batches = sorted({r["batch_size"] for rows in series.values() for r in rows})
    ax.set_xticks(batches)
    ax.set_xticklabels([str(b) for b in batches])
    if max(values) / max(min(values), 1e-9) > 20:  # CPU and GPU rows together
        ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples / s (median; bars: min-max)")
    ax.set_title("seed CNN throughput (solid: train, dashed: inference)")
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", axis="y", alpha=0.15)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, args.output)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("history", help="loss and accuracy per epoch")
    h.add_argument("files", nargs="+")
    h.add_argument("--labels", help="comma-separated, one per file")
    h.set_defaults(run=plot_history)
    c = sub.add_parser("confusion", help="confusion matrix of an evaluation")
    c.add_argument("file")
    c.add_argument("--classes", default="fashion", help="fashion (default), none, or comma-separated names")
    c.set_defaults(run=plot_confusion)
    b = sub.add_parser("bench", help="throughput vs batch size")
    b.add_argument("files", nargs="+")
    b.set_defaults(run=plot_bench)
    for s in (h, c, b):
        s.add_argument("-o", "--output", required=True, help="PNG (or any format matplotlib writes)")
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
