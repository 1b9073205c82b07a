#!/usr/bin/env python3
"""Chooses fine-tuning and semi-supervised settings on a validation split, never the test set.

  finetune_tuning.py GRID [--seeds 11 12 13 14] [--out DIR] [--plinth build/plinth]
      [--pretrained NAME=CKPT ...] [--jobs 1]

GRID is a JSON file: {"tasks": {TASK: [plinth train options]}, "starts": {START: [options]},
"recipes": {RECIPE: [[options of stage 1], [options of stage 2], ...]}, "cells": [[TASK,
START, RECIPE], ...]}. Every cell runs once per seed: its task's, start's and recipe's
options, `--seed S` and `--val-split 0.05` (1,500 labelled images of the task's classes held
out: labels beyond the task's 1%, used for this choice only). A recipe of several stages
runs them in turn, each later stage initialised from the one before (`--init-from`, the
start's options only in the first). The score of a run is its last stage's final
val_accuracy. Writes DIR/tuning.json (every run, its commands and score) and DIR/tuning.md
(the mean over the seeds of each cell).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cell(plinth, out, task, start, recipe, seed, grid):
    stages = grid["recipes"][recipe]
    previous = None
    commands = []
    for k, stage in enumerate(stages):
        name = f"{task}__{start}__{recipe}__seed{seed}__stage{k + 1}"
        history = os.path.join(out, name + ".history.json")
        cmd = [plinth, "train", "--device", "cpu", "--seed", str(seed), "--val-split", "0.05",
               "--history", history, *grid["tasks"][task], *stage]
        if k == 0:
            cmd += grid["starts"][start]
        else:
            cmd += ["--init-from", previous]
        if k + 1 < len(stages):
            previous = os.path.join(out, name + ".safetensors")
            cmd += ["--save", previous]
        commands.append(cmd)
        with open(os.path.join(out, name + ".log"), "w") as log:
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode:
                sys.exit(f"finetune_tuning: {name} failed (log {out}/{name}.log)")
    with open(history) as f:
        epochs = json.load(f)["epochs"]
    return {"task": task, "start": start, "recipe": recipe, "seed": seed,
            "val_accuracy": epochs[-1]["val_accuracy"], "commands": commands}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid")
    p.add_argument("--seeds", nargs="+", type=int, default=[11, 12, 13, 14])
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "tuning"))
    p.add_argument("--plinth", default=os.path.join(ROOT, "build", "plinth"))
    args = p.parse_args()
    with open(args.grid) as f:
        grid = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    results_path = os.path.join(args.out, "tuning.json")
    runs = []
    if os.path.exists(results_path):  # cells already measured are kept, not run again
        with open(results_path) as f:
            runs = json.load(f)["runs"]
    done = {(r["task"], r["start"], r["recipe"], r["seed"]) for r in runs}
    for task, start, recipe in grid["cells"]:
        for seed in args.seeds:
            if (task, start, recipe, seed) in done:
                continue
            run = run_cell(args.plinth, args.out, task, start, recipe, seed, grid)
            print(f"{task} {start} {recipe} seed {seed}: val_accuracy {run['val_accuracy']:.4f}",
                  flush=True)
            runs.append(run)
            with open(results_path, "w") as f:
                json.dump({"grid": grid, "runs": runs}, f, indent=1)
    lines = ["| task | start | recipe | seeds | mean val_accuracy | min | max |",
             "|---|---|---|---:|---:|---:|---:|"]
    for task, start, recipe in grid["cells"]:
        acc = [r["val_accuracy"] for r in runs if (r["task"], r["start"], r["recipe"]) == (task, start, recipe)]
        if acc:
            lines.append(f"| {task} | {start} | {recipe} | {len(acc)} | {statistics.mean(acc):.4f} | "
                         f"{min(acc):.4f} | {max(acc):.4f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "tuning.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
