#!/usr/bin/env python3
"""plinth and PyTorch training the same model file with the same recipe, in one run: the
test accuracy, the training time and the samples/s of both engines on this machine.

Runs `plinth train --model FILE` and benchmarks/pytorch_model.py on the same file, seed and
threads, one after the other (--seeds repeats both per seed, alternating the order), and
writes DIR/compare.md (a table), DIR/compare.json (every run's summary, the target's verdict,
the machine's load before and after) and each run's log and history. Samples/s is the median
over epochs of training samples per second (evaluation excluded); training seconds are the
epochs' sum. The target (issue 13): every plinth seed at least --target-accuracy in under
--target-seconds of training. Run it on a quiet machine: the timings are the point.

  /usr/bin/python3 benchmarks/compare_training.py   # resnet_small, seeds 1,2, 2 threads
  /usr/bin/python3 benchmarks/compare_training.py --epochs 1 --max-steps 20 --out runs/smoke
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


def engine_environment(keep_blas_coretype):
    """The environment both engines run in. OPENBLAS_CORETYPE pins OpenBLAS's kernels (some
    sandboxes set it to Haswell, AVX2, on AVX-512 machines: half the GEMM rate here), which
    handicaps plinth and a PyTorch on OpenBLAS but not one on oneDNN/MKL: dropped unless
    --keep-blas-coretype, so OpenBLAS picks the kernels a user of this CPU gets."""
    env = dict(os.environ)
    if not keep_blas_coretype and env.pop("OPENBLAS_CORETYPE", None) is not None:
        print(f"compare_training: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} dropped "
              "(--keep-blas-coretype keeps it)", flush=True)
    return env


def run(command, log, env):
    print("==", " ".join(command), flush=True)
    with open(log, "w") as f:
        p = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"compare_training: `{' '.join(command)}` exited with {p.returncode} (log: {log})")


def load_average():
    return list(os.getloadavg())


def summary(engine, seed, history, test_accuracy):
    """One run's row; a run stopped by --max-steps inside its first epoch has no epoch
    records (plinth keeps only whole epochs), so only its test accuracy."""
    return {"engine": engine, "seed": seed, "epochs": len(history), "test_accuracy": test_accuracy,
            "best_val_accuracy": max((r["val_accuracy"] for r in history), default=None),
            "train_seconds": sum(r["seconds"] for r in history) if history else None,
            "samples_per_second":
                statistics.median(r["samples_per_second"] for r in history) if history else None}


def cell(value, form):
    return "-" if value is None else form.format(value)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models", "resnet_small.json"))
    p.add_argument("--plinth", default=os.environ.get("PLINTH", os.path.join(ROOT, "build", "plinth")))
    p.add_argument("--python", default="/usr/bin/python3", help="the Python with torch")
    p.add_argument("--threads", type=int, default=2, help="both engines' threads")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--epochs", type=int, help="instead of the recipe's (shorter comparisons)")
    p.add_argument("--max-steps", type=int, help="smoke runs: stop both after this many steps")
    p.add_argument("--target-accuracy", type=float, default=0.935)
    p.add_argument("--target-seconds", type=float, default=1800)
    p.add_argument("--keep-blas-coretype", action="store_true",
                   help="run the engines with this environment's OPENBLAS_CORETYPE")
    p.add_argument("--out", help="folder for the logs and the table (default: "
                   "benchmarks/results/<model>-vs-pytorch-<date>)")
    args = p.parse_args()
    if not args.out:
        stem = os.path.splitext(os.path.basename(args.model))[0]
        args.out = os.path.join(ROOT, "benchmarks", "results", f"{stem}-vs-pytorch-{datetime.date.today()}")
    os.makedirs(args.out, exist_ok=True)
    env = engine_environment(args.keep_blas_coretype)
    load_before = load_average()
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    if args.max_steps:
        epochs += ["--max-steps", str(args.max_steps)]
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
            run(command, os.path.join(args.out, f"{engine}-seed{seed}.log"), env)
        with open(plinth_history) as f:
            h = json.load(f)
        rows.append(summary("plinth", seed, h["epochs"], h["test"]["accuracy"]))
        with open(torch_history) as f:
            h = json.load(f)
        rows.append(summary(h["engine"], seed, h["history"], h["test_accuracy"]))

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    plinth_rows = [r for r in rows if r["engine"] == "plinth"]
    met = all(r["test_accuracy"] >= args.target_accuracy and r["train_seconds"] is not None
              and r["train_seconds"] < args.target_seconds for r in plinth_rows)
    verdict = (f"target ({100 * args.target_accuracy:.1f}% test accuracy in under "
               f"{args.target_seconds:.0f} s of training, every plinth seed): {'met' if met else 'NOT met'}")
    loads = f"load average (1, 5, 15 min) before {load_before}, after {load_average()}"
    lines = [f"# {os.path.basename(args.model)}: plinth and PyTorch, same recipe",
             "", f"{datetime.date.today()}, commit {commit}, {platform.node()}, {args.threads} threads, "
             f"CPU. Command: `{' '.join(sys.argv)}`", "",
             "| engine | seed | epochs | test accuracy | best val accuracy | training s | samples/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['seed']} | {r['epochs']} | {100 * r['test_accuracy']:.2f}% | "
                     f"{cell(r['best_val_accuracy'] and 100 * r['best_val_accuracy'], '{:.2f}%')} | "
                     f"{cell(r['train_seconds'], '{:.0f}')} | {cell(r['samples_per_second'], '{:.0f}')} |")
    for engine in sorted({r["engine"] for r in rows}):
        accuracies = [r["test_accuracy"] for r in rows if r["engine"] == engine]
        mean = sum(accuracies) / len(accuracies)
        lines.append(f"| {engine} | mean | | {100 * mean:.2f}% | | | |")
    lines += ["", verdict + ".", "", loads + "."]
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"model": args.model, "commit": commit, "date": str(datetime.date.today()),
                   "host": platform.node(), "threads": args.threads, "command": sys.argv,
                   "openblas_coretype": env.get("OPENBLAS_CORETYPE"),
                   "load_average_before": load_before, "load_average_after": load_average(),
                   "target": {"test_accuracy": args.target_accuracy, "train_seconds": args.target_seconds,
                              "met": met},
                   "runs": rows}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
