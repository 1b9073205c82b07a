#!/usr/bin/env python3
"""plinth and PyTorch training the same model file with the same recipe, in one run: the
test accuracy, the training time and the samples/s of both engines on this machine.

Runs `plinth train --model FILE` and benchmarks/pytorch_model.py on the same file, seed and
threads, one after the other (--seeds repeats both per seed, alternating the order), and
writes DIR/compare.md (a table), DIR/compare.json (both histories) and each run's log.
Samples/s is the median over epochs of training samples per second (evaluation excluded);
training seconds are the epochs' sum.

  /usr/bin/python3 benchmarks/compare_training.py --model models/resnet_small.json \\
      --threads 2 --seeds 1,2 --out benchmarks/results/DIR
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, log):
    print("==", " ".join(command), flush=True)
    with open(log, "w") as f:
        p = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"compare_training: `{' '.join(command)}` exited with {p.returncode} (log: {log})")


def summary(engine, seed, history, test_accuracy):
    return {"engine": engine, "seed": seed, "epochs": len(history), "test_accuracy": test_accuracy,
            "best_val_accuracy": max(r["val_accuracy"] for r in history),
            "train_seconds": sum(r["seconds"] for r in history),
            "samples_per_second": statistics.median(r["samples_per_second"] for r in history)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models", "resnet_small.json"))
    p.add_argument("--plinth", default=os.environ.get("PLINTH", os.path.join(ROOT, "build", "plinth")))
    p.add_argument("--python", default="/usr/bin/python3", help="the Python with torch")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seeds", default="1")
    p.add_argument("--epochs", type=int, help="instead of the recipe's (shorter comparisons)")
    p.add_argument("--out", required=True, help="folder for the logs and the table")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    rows = []
    for k, seed in enumerate(int(s) for s in args.seeds.split(",")):
        plinth_history = os.path.join(args.out, f"plinth-seed{seed}.json")
        torch_history = os.path.join(args.out, f"pytorch-seed{seed}.json")
        plinth_cmd = [args.plinth, "train", "--model", args.model, "--device", "cpu", "--threads",
                      str(args.threads), "--seed", str(seed), "--history", plinth_history] + epochs
        torch_cmd = [args.python, os.path.join(ROOT, "benchmarks", "pytorch_model.py"), "--model",
                     args.model, "--plinth", args.plinth, "--threads", str(args.threads), "--seed",
                     str(seed), "--json", torch_history] + epochs
        runs = [("plinth", plinth_cmd), ("pytorch", torch_cmd)]
        for engine, command in runs if k % 2 == 0 else reversed(runs):
            run(command, os.path.join(args.out, f"{engine}-seed{seed}.log"))
        with open(plinth_history) as f:
            h = json.load(f)
        rows.append(summary("plinth", seed, h["epochs"], h["test"]["accuracy"]))
        with open(torch_history) as f:
            h = json.load(f)
        rows.append(summary(h["engine"], seed, h["history"], h["test_accuracy"]))

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    lines = [f"# {os.path.basename(args.model)}: plinth and PyTorch, same recipe",
             "", f"{datetime.date.today()}, commit {commit}, {platform.node()}, {args.threads} threads, "
             f"CPU. Command: `{' '.join(sys.argv)}`", "",
             "| engine | seed | epochs | test accuracy | best val accuracy | training s | samples/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['seed']} | {r['epochs']} | {100 * r['test_accuracy']:.2f}% | "
                     f"{100 * r['best_val_accuracy']:.2f}% | {r['train_seconds']:.0f} | "
                     f"{r['samples_per_second']:.0f} |")
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
