#!/usr/bin/env python3
"""Runs plinth's and PyTorch's benchmarks of the seed CNN in one go and prints the ratio
plinth/PyTorch per row (device, mode, batch size), with each PyTorch's version, source and
thread count. Writes all rows to OUT/bench.json, the table to OUT/compare.md and the
throughput picture to OUT/throughput.png.

  /usr/bin/python3 benchmarks/compare.py [--device cpu|cuda] [--threads 2] [--out DIR]
"""
import argparse, json, os, subprocess, sys, datetime

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu")
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--batch-sizes", default=None)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--plinth", default=os.path.join(root, "build", "plinth"))
ap.add_argument("--out", default=os.path.join(root, "benchmarks", "results", "latest"))
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
batches = a.batch_sizes or ("32,64,256,1024" if a.device == "cpu" else "32,64,256,1024,4096")

def run(cmd, env=None):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)

plinth_json = os.path.join(a.out, "plinth.json")
run([a.plinth, "bench", "--device", a.device, "--threads", str(a.threads), "--batch-sizes", batches,
     "--repeats", str(a.repeats), "--layers", "--gemm", "2048", "--json", plinth_json])
rows = json.load(open(plinth_json))
pythons = [("/usr/bin/python3", "debian")]
venv = os.path.join(root, ".venv-torch", "bin", "python")
if os.path.exists(venv):
    pythons.append((venv, "pypi"))
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
for py, source in pythons:
    if subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0:
        print(f"(no torch for {py}; skipped)")
        continue
    out = os.path.join(a.out, f"pytorch-{source}.json")
    run([py, os.path.join(root, "benchmarks", "pytorch_seed_cnn.py"), "--mode", "bench", "--device", a.device,
         "--threads", str(a.threads), "--batch-sizes", batches, "--repeats", str(a.repeats), "--json", out], env)
    rows += json.load(open(out))
json.dump(rows, open(os.path.join(a.out, "bench.json"), "w"), indent=2)

commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"# plinth vs PyTorch, {a.device}, {a.threads} threads ({datetime.date.today()}, commit {commit})", "",
         "| mode | batch | plinth samples/s | " + " | ".join(f"PyTorch {s} samples/s | ratio" for _, s in pythons) + " |",
         "|---|---|---|" + "---|---|" * len(pythons)]
def find(engine, source, mode, b):
    for r in rows:
        if r.get("engine") == engine and r.get("mode") == mode and r.get("batch_size") == b and r.get("device") == a.device \
                and r.get("variant", "eager") == "eager" and (engine == "plinth" or r.get("source") == source):
            return r
versions = {}
for mode in ("train", "infer"):
    for b in [int(x) for x in batches.split(",")]:
        p = find("plinth", None, mode, b)
        if not p:
            continue
        cells = [mode, str(b), f"{p['samples_per_second']:.0f}"]
        for _, source in pythons:
            t = find("pytorch", source, mode, b)
            if t:
                versions[source] = t.get("version")
                cells += [f"{t['samples_per_second']:.0f}", f"{p['samples_per_second'] / t['samples_per_second']:.2f}x"]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
lines.append("")
lines.append("PyTorch: " + ", ".join(f"{v} ({s})" for s, v in versions.items()) + f"; threads {a.threads} for both engines.")
gemm = [r for r in rows if r.get("engine") == "plinth" and r.get("mode") == "gemm"]
if gemm:
    lines.append(f"plinth's BLAS fp32 GEMM 2048^3: {gemm[0]['gflops']:.0f} GFLOP/s.")
open(os.path.join(a.out, "compare.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
subprocess.run(["/usr/bin/python3", os.path.join(root, "scripts", "plot.py"), "bench", os.path.join(a.out, "bench.json"),
                "-o", os.path.join(a.out, "throughput.png")])
