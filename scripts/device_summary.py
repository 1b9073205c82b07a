#!/usr/bin/env python3
"""The summary of one phase of scripts/device_check.sh, from the logs folder it fills.

  python3 scripts/device_summary.py LOGS_DIR

Prints the context (date, commit, GPU, versions), every step with its status, compare.py's
table when it ran, and last a short table: tests passed/failed/skipped, epoch time,
samples/s, accuracy and plinth/PyTorch ratios, with '-' for a figure whose step failed or
did not run. Needs only the standard library: it runs with whichever python3 is there.
"""
import json
import os
import re
import statistics
import sys

logs = sys.argv[1]


def text(name):
    try:
        with open(os.path.join(logs, name), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def load(name):
    try:
        with open(os.path.join(logs, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def number(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def cuda_tests():
    """Counts from Catch2's XML report, read test by test: a crash leaves it cut short."""
    cases = text("cuda_tests.xml").split("<TestCase ")[1:]
    if not cases:
        return None
    skipped = sum("SKIPPED:" in c for c in cases)
    passed = sum('<OverallResult success="true"' in c for c in cases) - skipped
    return f"{passed} passed, {len(cases) - passed - skipped} failed, {skipped} skipped"


def ctest_counts():
    log = text("tests.log")
    m = re.search(r"tests passed, (\d+) tests failed out of (\d+)", log)
    if not m:
        return None
    failed, total = int(m.group(1)), int(m.group(2))
    skipped = len(re.findall(r"\(Skipped\)\s*$", log, re.M))
    return f"{total - failed - skipped} passed, {failed} failed, {skipped} skipped"


def rate(rows, mode, batch, variant="eager"):
    """samples/s of one row of plinth's or PyTorch's bench JSON."""
    wanted = (mode, batch, variant)
    for r in rows or []:
        if (r.get("mode"), r.get("batch_size"), r.get("variant", "eager")) == wanted:
            return r["samples_per_second"]
    return None


def run_row(history):
    """Median epoch ms and samples/s, the final test accuracy, and when 90% was reached."""
    if not history or not history.get("epochs"):
        return None
    epochs = history["epochs"]
    row = (f"epoch {number(statistics.median(e['seconds'] for e in epochs) * 1e3)} ms, "
           f"{number(statistics.median(e['samples_per_second'] for e in epochs))} samples/s, "
           f"test accuracy {number(history.get('test', {}).get('accuracy'), 4)}")
    if "test_accuracy" not in epochs[0]:  # tested after each epoch only in the accuracy runs
        return row
    seconds = 0.0
    for e in epochs:
        seconds += e["seconds"]
        if e["test_accuracy"] >= 0.90:
            return row + f", 90% at epoch {e['epoch']} after {seconds:.1f} s of training"
    return row + ", 90% not reached"


def measures(ran):
    """(measure, value) rows for the steps this phase has."""
    rows = []
    if "cuda_tests" in ran:
        rows.append(("tests: the [cuda] ones", cuda_tests()))
    if "tests" in ran:
        rows.append(("tests: the whole suite (ctest)", ctest_counts()))
    for step, label in [("train", "1 epoch, batch 32"), ("accuracy", "seed CNN recipe, fp32"),
                        ("accuracy_tf32", "seed CNN recipe, TF32"),
                        ("accuracy_bf16", "seed CNN recipe, BF16"),
                        ("large_batch", "large-batch recipe (batch 1024), fp32"),
                        ("large_batch_tf32", "large-batch recipe (batch 1024), TF32"),
                        ("large_batch_bf16", "large-batch recipe (batch 1024), BF16")]:
        if step in ran:
            history = load(f"{step}.json")
            epochs = len(history["epochs"]) if history else "-"
            rows.append((f"{label}, {epochs} epoch(s)", run_row(history)))
    if "eval" in ran:
        e = load("eval.json")
        rows.append(("eval of its checkpoint through PLINTH_DATA",
                     e and f"accuracy {number(e.get('accuracy'), 4)} on {e.get('count')} images"))

    plinth, torch = load("bench.json") or [], load("pytorch.json") or []
    batches = sorted({r["batch_size"] for r in plinth + torch
                      if r.get("mode") in ("train", "infer")})
    if "bench" in ran and not batches:
        rows.append(("samples/s", None))
    for b in batches:
        train, eager = rate(plinth, "train", b), rate(torch, "train", b)
        graph = rate(torch, "train", b, "cuda-graph")
        infer, torch_infer = rate(plinth, "infer", b), rate(torch, "infer", b)
        rows += [(f"train samples/s, batch {b}: plinth / PyTorch eager / PyTorch CUDA graph",
                  f"{number(train)} / {number(eager)} / {number(graph)}"),
                 (f"train plinth/PyTorch, batch {b}: eager / CUDA graph",
                  f"{ratio(train, eager)} / {ratio(train, graph)}"),
                 (f"infer samples/s, batch {b}: plinth / PyTorch eager (plinth/PyTorch)",
                  f"{number(infer)} / {number(torch_infer)} ({ratio(infer, torch_infer)})")]
        launches = next((r.get("launches_per_step") for r in plinth
                         if (r.get("mode"), r.get("batch_size")) == ("train", b)), None)
        if launches:
            rows.append((f"launches per training step (CUDA graph), batch {b}", launches))
    eager_rows = load("bench_eager.json") or []
    for b in sorted({r["batch_size"] for r in eager_rows if r.get("mode") == "train"}):
        graph, eager = rate(plinth, "train", b), rate(eager_rows, "train", b)
        rows.append((f"plinth train samples/s, batch {b}: CUDA graph / eager (graph/eager)",
                     f"{number(graph)} / {number(eager)} ({ratio(graph, eager)})"))
    precision = {p: load(f"bench_{p}.json") or [] for p in ("tf32", "bf16")}
    for b in sorted({r["batch_size"] for rs in precision.values() for r in rs
                     if r.get("mode") == "train"}):
        fp32, tf32, bf16 = (rate(plinth, "train", b), rate(precision["tf32"], "train", b),
                            rate(precision["bf16"], "train", b))
        rows.append((f"plinth train samples/s, batch {b}: fp32 / TF32 / BF16",
                     f"{number(fp32)} / {number(tf32)} / {number(bf16)}"))
    for r in plinth:
        if r.get("mode") == "gemm":
            rows.append((f"fp32 GEMM {r['n']}^3", f"{r['gflops']:,.0f} GFLOP/s"))

    for r in load("compare/bench.json") or []:
        if r.get("mode") == "time_to_accuracy":
            who = ("plinth, seed_cnn_fast.json" if r["engine"] == "plinth"
                   else f"PyTorch {r.get('version')}, Keras recipe")
            rows.append((f"time to 90% test accuracy: {who}, batch {r['batch_size']}",
                         f"{r['seconds']:.1f} s, epoch {r['epoch']}" if r["seconds"] > 0
                         else "not reached"))
    return rows


context = dict(line.split("=", 1) for line in text("context.txt").splitlines() if "=" in line)
steps = [line.split("\t") for line in text("steps.tsv").splitlines() if line]
out = [f"plinth device check, phase {context.get('phase', '?')}: {context.get('date', '?')}, "
       f"commit {context.get('commit') or 'unknown'} (kit: {context.get('kit', '?')})",
       f"GPU: {text('gpu.txt').strip() or '-'}"]
out += [line.strip() for line in text("info.log").splitlines()
        if line.startswith(("plinth", "cuda:", "cpu:"))]
out += [f"PyTorch: {text('torch.txt').strip() or '-'}", "", "steps:"]
out += [f"  {name:<14} {status:<8} {seconds:>5} s  {note}".rstrip()
        for name, status, seconds, note in steps]
failed = [s[0] for s in steps if s[1] == "FAILED"]
out += ["", f"FAILED: {', '.join(failed)}" if failed else "no step failed", ""]

compare = text("compare/compare.md").splitlines()
first = next((i for i, line in enumerate(compare) if line.startswith("| mode | batch")),
             len(compare))
table = []  # its throughput table: the lines from that header to the first that is no row
for line in compare[first:]:
    if not line.startswith("|"):
        break
    table.append(line)
if table:
    out += ["compare.py (compare/compare.md in the archive):", *table, ""]

out += ["| measure | value |", "|---|---|"]
out += [f"| {name} | {'-' if value is None else value} |" for name, value in measures(
    {s[0] for s in steps})]
print("\n".join(out))
