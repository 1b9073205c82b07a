#!/usr/bin/env python3
"""plinth against PyTorch and Keras on the seed CNN, in one run, on one device.

  /usr/bin/python3 benchmarks/compare.py [--device cpu|cuda] [--threads 2] [--rounds 3] [--tta] [--out DIR]

Throughput is measured in rounds: each round runs `plinth bench` and then every PyTorch found
(Debian's python3-torch for /usr/bin/python3, PyPI's in .venv-torch from
scripts/setup_pytorch.sh --pypi, or the one --python names) and, on the CPU, the source
text's own Keras code on TensorFlow's CPU build (.venv-tf from scripts/setup_tensorflow.sh,
benchmarks/keras_seed_cnn.py), so that a slow patch of the machine hits every engine of a
round alike. On cuda PyTorch's training step is timed twice:
eager, and captured once in a CUDA graph and replayed. A figure is the median over rounds of
each round's median; a ratio is the median of the per-round ratios, with their range. Then,
once: plinth's per-layer times and its BLAS GEMM rate (the conv layers as a fraction of it)
and, with --tta, time to 90% test accuracy for plinth's fast recipe and the anchors' Keras recipe.
With --contended a busy-loop process keeps one core busy for the whole run (a shared machine:
a CI runner, a laptop), and each round also times plinth's training on 1 thread, the rate
its threads must not fall below.
Writes OUT/bench.json (every row), OUT/compare.md (the tables, with date, commit, versions and
threads) and OUT/throughput.png.
"""
import argparse, atexit, datetime, itertools, json, os, statistics, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both engines (CPU)")
ap.add_argument("--batch-sizes", default=None, help="default 32,64,256,1024 (and 4096 on cuda)")
ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both engines")
ap.add_argument("--repeats", type=int, default=3, help="timed windows per figure and round")
ap.add_argument("--layers-batch", type=int, default=32, help="batch size of the per-layer table")
ap.add_argument("--tta", action="store_true", help="also time to 90%% test accuracy (minutes)")
ap.add_argument("--tta-model", default=os.path.join(root, "models", "seed_cnn_fast.json"))
ap.add_argument("--sources", default="debian,pypi", help="which PyTorch installs to run, of debian,pypi")
ap.add_argument("--python", help="run PyTorch with this python only (e.g. /opt/torch/.venv/bin/python3)")
ap.add_argument("--keras", default=os.path.join(root, ".venv-tf", "bin", "python"),
                help="the python with TensorFlow for the Keras anchor (skipped if missing; 'none': off)")
ap.add_argument("--plinth", default=os.path.join(root, "build", "plinth"))
ap.add_argument("--out", default=os.path.join(root, "benchmarks", "results", "latest"))
ap.add_argument("--keep-blas-coretype", action="store_true",
                help="run the engines with this environment's OPENBLAS_CORETYPE (dropped by default)")
ap.add_argument("--contended", action="store_true",
                help="keep one core busy with a busy-loop process during the run; also time plinth on 1 thread")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
batches = a.batch_sizes or ("32,64,256,1024" if a.device == "cpu" else "32,64,256,1024,4096")
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
# OPENBLAS_CORETYPE pins OpenBLAS's kernels; some sandboxes set Haswell (AVX2) on AVX-512
# machines, half the GEMM rate, which handicaps plinth and an OpenBLAS PyTorch but not a
# oneDNN/MKL one. Dropped, OpenBLAS picks the kernels a user of this CPU gets.
if not a.keep_blas_coretype and env.pop("OPENBLAS_CORETYPE", None) is not None:
    print(f"compare.py: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} dropped (--keep-blas-coretype keeps it)")


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    if subprocess.run(cmd, env=env).returncode != 0:
        sys.exit(f"compare.py: {os.path.basename(cmd[0])} {cmd[1]} failed (its error is above); no report written")


def run_json(cmd, path):
    run(cmd + ["--json", path])
    return json.load(open(path))


def pytorch_pythons():
    """(python, source) pairs, source as pytorch_seed_cnn.py names it in its rows."""
    found = []
    candidates = [a.python] if a.python else [
        py for py, source in [("/usr/bin/python3", "debian"), (os.path.join(root, ".venv-torch", "bin", "python"), "pypi")]
        if source in a.sources.split(",")]
    check = ("import torch; " + ("assert torch.cuda.is_available(); " if a.device == "cuda" else "") +
             "print('debian' if torch.__file__.startswith('/usr/lib/python3/dist-packages') else 'pypi')")
    for py in candidates:
        got = subprocess.run([py, "-c", check], capture_output=True, text=True) if os.path.exists(py) else None
        if got and got.returncode == 0:
            found.append((py, got.stdout.strip()))
        else:
            print(f"(no {'CUDA ' if a.device == 'cuda' else ''}torch for {py}; skipped)")
    return found


def keras_python():
    """The Keras anchor's python, or None: TensorFlow's CPU build only (on cuda it is left out)."""
    if a.keras == "none" or a.device != "cpu":
        return None
    ok = os.path.exists(a.keras) and subprocess.run([a.keras, "-c", "import tensorflow"],
                                                    capture_output=True).returncode == 0
    if not ok:
        print(f"(no TensorFlow for {a.keras}; the Keras anchor is skipped: scripts/setup_tensorflow.sh)")
    return a.keras if ok else None


def plinth_bench(extra, path):
    return run_json([a.plinth, "bench", "--device", a.device, "--threads", str(a.threads)] + extra, path)


def anchor(engine, py, extra, path):
    """pytorch_seed_cnn.py or keras_seed_cnn.py: the same options and rows."""
    script = os.path.join(root, "benchmarks", f"{engine}_seed_cnn.py")
    device = ["--device", a.device] if engine == "pytorch" else []
    return run_json([py, script, "--threads", str(a.threads)] + device + extra, path)


# (engine, python, source): each anchor's column of the tables.
anchors = [("pytorch", py, source) for py, source in pytorch_pythons()]
keras = keras_python()
if keras:
    anchors.append(("keras", keras, "pypi"))
if a.contended:  # the other work of a shared machine, for the whole run
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    atexit.register(busy.kill)
rows = []
for r in range(a.rounds):
    got = plinth_bench(["--batch-sizes", batches, "--repeats", str(a.repeats)], os.path.join(a.out, f"plinth-round{r}.json"))
    if a.contended:
        one = run_json([a.plinth, "bench", "--device", a.device, "--threads", "1", "--modes", "train",
                        "--batch-sizes", batches, "--repeats", str(a.repeats)],
                       os.path.join(a.out, f"plinth-1thread-round{r}.json"))
        got += [dict(x, engine="plinth-1thread") for x in one]
    for engine, py, source in anchors:
        got += anchor(engine, py, ["--mode", "bench", "--batch-sizes", batches, "--repeats", str(a.repeats)],
                      os.path.join(a.out, f"{engine}-{source}-round{r}.json"))
    for row in got:
        row["round"] = r
    rows += got

layers = plinth_bench(["--batch-sizes", str(a.layers_batch), "--modes", "train", "--repeats", str(a.repeats),
                       "--layers", "--gemm", "2048"], os.path.join(a.out, "plinth-layers.json"))
rows += [x for x in layers if x["mode"] in ("layer", "gemm")]

if a.tta:
    tta_batch = json.load(open(a.tta_model))["training"]["batch_size"]
    tta_epochs = json.load(open(a.tta_model))["training"]["epochs"]
    rows += [x for x in plinth_bench(["--model", a.tta_model, "--batch-sizes", str(tta_batch), "--modes", "train",
                                      "--repeats", "1", "--time-to-accuracy", "--tta-batch", str(tta_batch),
                                      "--tta-epochs", str(tta_epochs)], os.path.join(a.out, "plinth-tta.json"))
             if x["mode"] == "time_to_accuracy"]
    for engine, py, source in anchors:
        h = anchor(engine, py, ["--mode", "train", "--epochs", "10", "--batch-size", "32", "--val-split", "0",
                                "--stop-at-target"], os.path.join(a.out, f"{engine}-{source}-tta.json"))
        t = h["time_to_accuracy"]
        rows.append({"engine": engine, "version": h["version"], "source": source, "device": a.device,
                     "mode": "time_to_accuracy", "batch_size": 32, "target": t["target"],
                     "seconds": t["train_seconds"] or -1, "epoch": t["epoch"] or 0,
                     "epoch_seconds": h["epochs"][0]["seconds"], "threads": h["threads"],
                     "test_accuracy": [e["test_accuracy"] for e in h["epochs"]]})
json.dump(rows, open(os.path.join(a.out, "bench.json"), "w"), indent=1)


# ------------------------------------------------------------------------------ the report

def throughput(engine, source, mode, batch, variant):
    """Per-round medians of one figure, in round order."""
    return [x for x in rows if x.get("engine") == engine and x.get("mode") == mode and x.get("batch_size") == batch
            and x.get("variant", "eager") == variant and (engine.startswith("plinth") or x.get("source") == source)]


def median_row(engine, source, mode, batch, variant="eager"):
    got = throughput(engine, source, mode, batch, variant)
    if not got:
        return None
    return {"engine": engine, "version": got[0].get("version"), "source": source, "device": a.device, "mode": mode,
            "variant": variant, "batch_size": batch, "rounds": [x["samples_per_second"] for x in got],
            "samples_per_second": statistics.median(x["samples_per_second"] for x in got),
            "spread": {"min": min(x["spread"]["min"] for x in got), "max": max(x["spread"]["max"] for x in got)}}


commit = (subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
          or os.environ.get("PLINTH_COMMIT", "unknown"))  # a copy of the tree may come without .git
dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                       text=True).stdout.strip()
plinth_name = next((x.get("device_name") for x in rows if x.get("engine") == "plinth"), a.device)
# PyTorch's variants (column labels): on cuda its training step also replayed as a CUDA graph.
variants = {"eager": " eager", "cuda-graph": " CUDA graph"} if a.device == "cuda" else {"eager": ""}
names = {"pytorch": "PyTorch", "keras": "Keras"}
lines = [f"# plinth vs PyTorch and Keras: seed CNN, {a.device}, {a.threads} threads"
         + (", one other core busy (--contended)" if a.contended else ""), "",
         f"{datetime.date.today()}, commit {commit}{' (with uncommitted changes)' if dirty else ''}; "
         f"plinth: {plinth_name}; {a.rounds} rounds x {a.repeats} windows per figure.", "",
         "Samples/s: median over rounds of each round's median window (min..max over all windows). "
         "Ratio: plinth/anchor, median of the per-round ratios (their range).", "",
         "| mode | batch | plinth | " + " | ".join(f"{names[e]} {s}{label} | ratio" for e, _, s in anchors
                                                 for label in variants.values()) + " |",
         "|---|---|---|" + "---|---|" * len(anchors) * len(variants)]
plot_rows, versions = [], {}
for mode in ("train", "infer"):
    for b in [int(x) for x in batches.split(",")]:
        p = median_row("plinth", None, mode, b)
        if not p:
            continue
        plot_rows.append(p)
        cells = [mode, str(b), f"{p['samples_per_second']:,.0f} ({p['spread']['min']:,.0f}..{p['spread']['max']:,.0f})"]
        for (engine, _, source), variant in itertools.product(anchors, variants):
            t = median_row(engine, source, mode, b, variant)
            if not t:
                cells += ["-", "-"]
                continue
            if variant == "eager":
                plot_rows.append(t)
            versions[f"{names[engine]} {source}"] = t["version"]
            ratios = [pp / tt for pp, tt in zip(p["rounds"], t["rounds"])]
            cells += [f"{t['samples_per_second']:,.0f} ({t['spread']['min']:,.0f}..{t['spread']['max']:,.0f})",
                      f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}..{max(ratios):.2f})"]
        lines.append("| " + " | ".join(cells) + " |")
lines += ["", "Anchors: " + (", ".join(f"{s} {v}" for s, v in versions.items()) or "none found") +
          f"; {a.threads} threads for every engine."]
if a.contended:
    lines += ["", f"plinth training on 1 thread under the same load, and {a.threads} threads against it "
              "(median of the per-round ratios, their range):", "",
              "| batch | plinth 1 thread | threads / 1 thread |", "|---|---|---|"]
    for b in [int(x) for x in batches.split(",")]:
        p, o = median_row("plinth", None, "train", b), median_row("plinth-1thread", None, "train", b)
        if p and o:
            ratios = [pp / oo for pp, oo in zip(p["rounds"], o["rounds"])]
            lines.append(f"| {b} | {o['samples_per_second']:,.0f} | "
                         f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}..{max(ratios):.2f}) |")

gemm = next((x for x in rows if x.get("mode") == "gemm"), None)
layer_rows = [x for x in rows if x.get("mode") == "layer"]
if layer_rows:
    lines += ["", f"## Per-layer time, plinth, batch {a.layers_batch}, training step", "",
              f"BLAS fp32 GEMM 2048^3: {gemm['gflops']:.0f} GFLOP/s." if gemm else "",
              "", "| layer | forward ms | backward ms | forward GFLOP/s | of GEMM |", "|---|---|---|---|---|"]
    for x in layer_rows:
        share = f"{100 * x['forward_gflops'] / gemm['gflops']:.0f}%" if gemm and x["forward_gflops"] > 0 else ""
        lines.append(f"| {x['layer']} | {x['forward_ms']:.3f} | {x['backward_ms']:.3f} | {x['forward_gflops']:.1f} | {share} |")

tta = [x for x in rows if x.get("mode") == "time_to_accuracy"]
if tta:
    lines += ["", "## Time to 90% test accuracy (training seconds, test set checked after each epoch)", "",
              "| engine | recipe | reached at | training seconds | seconds per epoch |", "|---|---|---|---|---|"]
    for x in tta:
        who = "plinth" if x["engine"] == "plinth" else f"{names[x['engine']]} {x['version']} ({x['source']})"
        recipe = os.path.relpath(a.tta_model, root) if x["engine"] == "plinth" else "Keras recipe: Adam 1e-3, batch 32"
        reached = f"epoch {x['epoch']}" if x["seconds"] > 0 else "not reached"
        secs = f"{x['seconds']:.1f}" if x["seconds"] > 0 else "-"
        lines.append(f"| {who} | {recipe} (batch {x['batch_size']}) | {reached} | {secs} | {x['epoch_seconds']:.1f} |")

report = "\n".join(lines) + "\n"
open(os.path.join(a.out, "compare.md"), "w").write(report)
json.dump(plot_rows, open(os.path.join(a.out, "throughput.json"), "w"), indent=1)
print(report)
subprocess.run([sys.executable, os.path.join(root, "scripts", "plot.py"), "bench",
                os.path.join(a.out, "throughput.json"), "-o", os.path.join(a.out, "throughput.png")], check=True)
