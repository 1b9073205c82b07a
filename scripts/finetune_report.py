#!/usr/bin/env python3
"""Summarises a scripts/finetune_workflow.sh run: benchmarks/results/finetune-<date>.{json,md}.

  finetune_report.py RUN_DIR [--out-dir benchmarks/results] [--settings TEXT]
      [--name finetune] [--model models/seed_cnn.json] [--plinth build/plinth]

RUN_DIR holds runs.jsonl (one line per plinth command: name, variant, seed, command, log,
history) with the logs and histories it names. The report holds every run's test accuracy,
mean / std / min / max per variant over the seeds, the gain over from scratch on the same
labelled images, the load checks, the date, the commit and the exact commands. It fails
(exit 1) when a load check fails: fine-tuning results mean nothing if the pretrained
weights were not really loaded.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Table rows, in order: variant -> what it is.
FINETUNE_VARIANTS = {
    "finetune-supervised": "(a) supervised pretraining on classes 0-4, new head",
    "finetune-autoencoder": "(b) conv autoencoder on all 60,000 training images, no labels",
    "scratch": "(d) from scratch",
    "scratch-long": "from scratch, twice the epochs",
}
FROZEN_VARIANTS = {
    "frozen-random": "random (from scratch)",
    "frozen-supervised": "(a) supervised pretraining",
    "frozen-autoencoder": "(b) conv autoencoder",
}
# (e): the split the other way round, on classes 0-4.
REVERSE_VARIANTS = {
    "rev-finetune-supervised": "supervised pretraining on classes 5-9, new head",
    "rev-scratch": "from scratch",
}
# (f): semi-supervised, the 300 labelled images of classes 5-9 and the other 29,700 unlabelled.
SEMI_VARIANTS = {
    "semi-supervised": "(a) supervised pretraining, with the unlabelled images",
    "semi-autoencoder": "(b) conv autoencoder, with the unlabelled images",
    "semi-scratch": "from scratch, with the unlabelled images",
    "finetune-supervised": "(a) supervised pretraining, labelled images only",
    "finetune-autoencoder": "(b) conv autoencoder, labelled images only",
    "scratch": "(d) from scratch, labelled images only",
}
PREVIOUS_BEST = 0.9253  # the best row before semi-supervised training (finetune-2026-11-29.md)
PRETRAIN_VARIANTS = ("pretrain-supervised", "pretrain-supervised-rev", "pretrain-autoencoder")


def fail(message):
    sys.exit(f"finetune_report: FAIL: {message}")


def read_log(path):
    with open(path, errors="replace") as f:
        lines = f.read().replace("\r", "\n").splitlines()
    load = {kind: [] for kind in ("loaded", "skipped", "ignored", "initialised")}
    for line in lines:
        m = re.match(r"plinth:\s+(loaded|skipped|ignored|initialised)\s+(\S+)", line)
        if m:
            load[m.group(1)].append(m.group(2))

    def first(pattern):
        return next((m for m in map(lambda l: re.search(pattern, l), lines) if m), None)

    data = first(r"^plinth: data: (\d+) training, (\d+) validation, (\d+) test")
    test = first(r"^Test accuracy: ([\d.]+) - test loss: ([\d.]+) \((\d+) images\)")
    device = first(r"^plinth: device: (.*)")
    return {
        "load": load if any(load.values()) else None,
        "train_images": int(data.group(1)) if data else None,
        "test_images": int(data.group(3)) if data else None,
        "test_accuracy": float(test.group(1)) if test else None,
        "test_loss": float(test.group(2)) if test else None,
        "device": device.group(1) if device else "?",
    }


def read_runs(run_dir):
    manifest = os.path.join(run_dir, "runs.jsonl")
    if not os.path.exists(manifest):
        fail(f"{manifest}: missing; run scripts/finetune_workflow.sh first")
    runs = []
    with open(manifest) as f:
        for line in filter(str.strip, f):
            run = json.loads(line)
            run.update(read_log(os.path.join(ROOT, run["log"])))
            if run["test_accuracy"] is None:
                fail(f"{run['log']}: no 'Test accuracy' line; did the run finish?")
            with open(os.path.join(ROOT, run["history"])) as h:
                epochs = json.load(h)["epochs"]
            run["epochs"] = len(epochs)
            run["final_train_loss"] = epochs[-1]["loss"] if epochs else None
            run["epoch1_train_accuracy"] = epochs[0]["accuracy"] if epochs else None
            runs.append(run)
    return runs


def variant_rows(runs, variants):
    """variant -> its runs by seed and the mean/std/min/max of their test accuracy."""
    rows = {}
    for variant in variants:
        chosen = [r for r in runs if r["variant"] == variant]
        if not chosen:
            continue
        acc = [r["test_accuracy"] for r in chosen]
        rows[variant] = {
            "runs": [{k: r[k] for k in ("seed", "test_accuracy", "train_images", "epoch1_train_accuracy")}
                     for r in chosen],
            "mean": statistics.mean(acc), "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "min": min(acc), "max": max(acc),
        }
    return rows


def add_gains(rows, baseline):
    """Gain over the baseline on the same seed, i.e. on the same labelled images."""
    if baseline not in rows:
        return
    base = {r["seed"]: r["test_accuracy"] for r in rows[baseline]["runs"]}
    for variant, row in rows.items():
        diffs = [r["test_accuracy"] - base[r["seed"]] for r in row["runs"] if r["seed"] in base]
        if variant != baseline and diffs:
            row["gain"] = {"mean": statistics.mean(diffs), "min": min(diffs), "max": max(diffs),
                           "wins": sum(d > 0 for d in diffs), "seeds": len(diffs)}


def model_tensors(plinth, model):
    """The model's parameters and buffers by layer, from `plinth layers --json --model`."""
    out = subprocess.run([plinth, "layers", "--json", "--model", model], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"{plinth} layers --model {model}: {out.stderr.strip()}")
    return {n["name"]: [t["name"] for t in n["parameters"] + n.get("buffers", [])]
            for n in json.loads(out.stdout)["nodes"]}


def option(run, name):
    command = run["command"]
    return command[command.index(name) + 1] if name in command else None


def check_loads(runs, tensors):
    """Each run that starts from a checkpoint must report that it loaded exactly the
    tensors it should, and (a)'s weights loaded into a fresh run must reproduce (a)."""
    conv = [f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]
    fc = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    checks = []
    for run in runs:
        source = run["variant"].split("-")[-1]
        if not run["variant"].startswith(("finetune-", "frozen-", "semi-", "rev-finetune-")):
            continue
        if source == "supervised":  # everything but the layers reset (the head)
            reset = (option(run, "--reset") or "").split(",")
            loaded = [t for layer, names in tensors.items() if layer not in reset for t in names]
            want = (loaded, [r for r in reset if r])
        elif source == "autoencoder":  # the seed CNN's conv1..conv3 from the autoencoder
            want = (conv, fc)
        else:
            continue
        loaded, initialised = want
        load = run["load"] or {}
        ok = (sorted(load.get("loaded", [])) == sorted(loaded) and
              sorted(load.get("initialised", [])) == sorted(initialised))
        names = (", ".join(loaded) if len(loaded) <= 10 else
                 f"the {len(loaded)} tensors of every layer but {', '.join(initialised)}")
        checks.append({"check": f"{run['name']}: loaded {names}; initialised {', '.join(initialised)}",
                       "ok": ok, "observed": load})
    pretrained = [r for r in runs if r["variant"] == "pretrain-supervised"]
    for run in runs:
        if run["variant"] == "check-load" and pretrained:
            expected = pretrained[0]["test_accuracy"]
            checks.append({"check": f"{run['name']}: (a)'s checkpoint loaded into a fresh run (one step, every layer frozen) "
                                    f"gives (a)'s test accuracy on classes 0-4, {expected:.4f}",
                           "ok": run["test_accuracy"] == expected, "observed": run["test_accuracy"]})
    return checks


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(run):
    return " ".join(a if re.fullmatch(r"[\w./,=:+-]+", a) else f"'{a}'" for a in run["command"])


def table(rows, labels, seeds):
    out = ["| start | " + " | ".join(f"seed {s}" for s in seeds) +
           " | mean | std | min | max | gain over the from-scratch row, same images: mean (min, max) | wins |",
           "|---|" + "---:|" * (len(seeds) + 6)]
    for variant, label in labels.items():
        row = rows.get(variant)
        if not row:
            continue
        by_seed = {r["seed"]: r["test_accuracy"] for r in row["runs"]}
        g = row.get("gain")
        gain = f"{g['mean'] * 100:+.2f} ({g['min'] * 100:+.2f}, {g['max'] * 100:+.2f})" if g else ""
        wins = f"{g['wins']}/{g['seeds']}" if g else ""
        out.append(f"| {label} | " + " | ".join(f"{by_seed[x]:.4f}" if x in by_seed else "-" for x in seeds) +
                   f" | **{row['mean']:.4f}** | {row['std']:.4f} | {row['min']:.4f} | {row['max']:.4f} | "
                   f"{gain} | {wins} |")
    return out


def markdown(report):
    ft = report["finetune"]
    seeds = ft["seeds"]
    out = [f"# Pretrain, then fine-tune {os.path.basename(report['model'])}: {report['date']}", "",
           f"Commit `{report['commit']}`{' (with uncommitted changes)' if report['dirty'] else ''}, "
           f"device: {report['device']}. Produced by `scripts/finetune_workflow.sh`.", "",
           f"## Test accuracy on classes 5-9 ({ft['test_images']} test images), trained on "
           f"1% of their labels ({ft['train_images']} images)", "",
           f"Settings: {ft['settings']} (the \"twice the epochs\" row: twice the epochs). "
           "The seed picks the labelled images (the same for every row) and initialises the new "
           "layers. std: sample standard deviation over the seeds; gain in points.", ""]
    out += table(ft["variants"], FINETUNE_VARIANTS, seeds)
    if ft.get("reverse"):
        out += ["", "## The other split: test accuracy on classes 0-4, trained on 1% of their labels", "",
                "Pretrained on classes 5-9 (all their labels), fine-tuned with the same settings as above; "
                "gain over from scratch on the same labelled images.", ""]
        out += table(ft["reverse"], REVERSE_VARIANTS, seeds)
    if ft.get("semi"):
        semi = ft["semi"].get("semi-supervised")
        out += ["", "## Semi-supervised (FixMatch): classes 5-9, the same 300 labels and the other 29,700 "
                    "images unlabelled", "",
                f"Settings: {ft['semi_settings']}. The rows without unlabelled images are the ones above; "
                "gain over (d) from scratch, labelled images only, on the same labelled images.", ""]
        out += table(ft["semi"], SEMI_VARIANTS, seeds)
        for variant, row in ft["semi"].items():
            if variant.startswith("semi-"):
                above = sum(r["test_accuracy"] > PREVIOUS_BEST for r in row["runs"])
                out.append(f"- {SEMI_VARIANTS[variant]}: mean {row['mean']:.4f}, "
                           f"{(row['mean'] - PREVIOUS_BEST) * 100:+.2f} points against the best row before "
                           f"semi-supervised training ({PREVIOUS_BEST}, finetune-2026-11-29.md); above it on "
                           f"{above} of {len(row['runs'])} seeds")
    if ft["frozen"]:
        out += ["", f"### The features alone: {report['features']} frozen, only the rest trained", ""]
        out += table(ft["frozen"], FROZEN_VARIANTS, seeds)
    for run in report["runs"]:
        if run["variant"] == "all-labels":
            out += ["", f"For scale: all {run['train_images']} labels of classes 5-9, from scratch, "
                        f"{run['epochs']} epochs of the model's recipe: test accuracy {run['test_accuracy']:.4f}."]
    out += ["", "## Pretraining", "",
            "| run | training images | epochs | final train loss | test |", "|---|---:|---:|---:|---|"]
    for run in report["runs"]:
        if run["variant"] in PRETRAIN_VARIANTS:
            test = (f"accuracy {run['test_accuracy']:.4f} on classes 0-4" if run["variant"] == "pretrain-supervised"
                    else f"accuracy {run['test_accuracy']:.4f} on classes 5-9"
                    if run["variant"] == "pretrain-supervised-rev"
                    else f"reconstruction loss {run['test_loss']:.4f} (binary cross-entropy)")
            loss = run["final_train_loss"]
            out.append(f"| {run['name']} | {run['train_images']} | {run['epochs']} | "
                       f"{'-' if loss is None else f'{loss:.4f}'} | {test} |")
    out += ["", "## Checks", ""]
    out += [f"- [{'x' if c['ok'] else ' '}] {c['check']}" for c in report["checks"]]
    out += ["", "## Commands", "", "```"] + [command_line(r) for r in report["runs"]] + ["```", ""]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="the workflow's output folder (runs/finetune)")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--settings", default="", help="the fine-tune settings, in words")
    p.add_argument("--semi-settings", default="", help="the semi-supervised settings, in words")
    p.add_argument("--name", default="finetune", help="the report's file name before the date")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "seed_cnn.json"),
                   help="the model fine-tuned (for the tensors a load must report)")
    p.add_argument("--plinth", default=os.path.join(ROOT, "build", "plinth"))
    args = p.parse_args()
    tensors = model_tensors(args.plinth, args.model)

    runs = read_runs(args.run_dir)
    finetunes = [r for r in runs if r["variant"] in FINETUNE_VARIANTS]
    if not finetunes:
        fail(f"{args.run_dir}: no fine-tune runs in runs.jsonl")
    variants = variant_rows(runs, FINETUNE_VARIANTS)
    add_gains(variants, "scratch")
    reverse = variant_rows(runs, REVERSE_VARIANTS)
    add_gains(reverse, "rev-scratch")
    semi = variant_rows(runs, SEMI_VARIANTS)
    add_gains(semi, "scratch")
    frozen = variant_rows(runs, FROZEN_VARIANTS)
    add_gains(frozen, "frozen-random")
    date = datetime.date.today().isoformat()
    report = {
        "date": date,
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "device": finetunes[0]["device"],
        "finetune": {
            "classes": [5, 6, 7, 8, 9],
            "labelled_fraction": 0.01,
            "seeds": sorted({r["seed"] for r in finetunes}),
            "train_images": "/".join(sorted({str(r["train_images"]) for r in finetunes})),
            "test_images": finetunes[0]["test_images"],
            "settings": args.settings,
            "variants": variants,
            "frozen": frozen,
            "reverse": reverse,
            "semi": semi if any(v.startswith("semi-") for v in semi) else {},
            "semi_settings": args.semi_settings,
        },
        "model": args.model,
        "features": next((option(r, "--freeze") for r in runs if r["variant"] == "frozen-random"), "?"),
        "checks": check_loads(runs, tensors),
        "runs": runs,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, f"{args.name}-{date}")
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    text = markdown(report)
    with open(stem + ".md", "w") as f:
        f.write(text)
    print(text)
    print(f"wrote {stem}.json and {stem}.md")
    failed = [c["check"] for c in report["checks"] if not c["ok"]]
    if failed:
        fail("load checks failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
