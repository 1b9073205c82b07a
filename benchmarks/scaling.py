#!/usr/bin/env python3
"""Data-parallel scaling on the CPU: training samples/s of one process and of N MPI ranks.

Runs `plinth train` on the same data, model, seed and global batch as
  * 1 rank with 1 thread (the base of the efficiency),
  * 1 rank with as many threads as the ranks below use in all (what one process does with
    the same cores),
  * each N in --ranks under mpirun, with threads per rank = --threads-per-rank,
and reports the median over --repeats runs of the last epoch's samples/s (training steps
only: no evaluation, no start-up), the speed-up over 1 rank x 1 thread and the parallel
efficiency (speed-up / cores used). Every row's command is printed; --json writes the rows.

  python3 benchmarks/scaling.py --plinth build/plinth --ranks 2 --repeats 3
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def train(args, ranks, threads, history):
    cmd = [args.plinth, "train", "--device", "cpu", "--threads", str(threads),
           "--model", args.model, "--epochs", str(args.epochs), "--batch-size", str(args.batch),
           "--seed", "1", "--val-split", "0", "--labelled-fraction", str(args.fraction),
           "--history", history, "--quiet"]
    if args.data:
        cmd += ["--data", args.data]
    if ranks > 0:
        # Open MPI binds each of 2 ranks to a core; a rank with more threads needs more.
        binding = ["--bind-to", "none"] if threads > 1 else []
        cmd = [args.mpirun, "--oversubscribe", *binding, "-np", str(ranks)] + cmd
        if os.geteuid() == 0:
            cmd.insert(1, "--allow-run-as-root")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(history) as f:
        return json.load(f)["epochs"][-1]["samples_per_second"], " ".join(cmd)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plinth", default="build/plinth")
    p.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    p.add_argument("--model", default="models/seed_cnn.json")
    p.add_argument("--data", default="")
    p.add_argument("--ranks", default="2", help="rank counts to measure, e.g. 2,4")
    p.add_argument("--threads-per-rank", type=int, default=1)
    p.add_argument("--batch", type=int, default=32, help="global batch")
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--fraction", type=float, default=0.1, help="of the training set")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default="")
    args = p.parse_args()

    load_before = os.getloadavg()[0]
    configs = [(0, 1)]  # (ranks, threads); 0 ranks: plain process, no mpirun
    for n in (int(x) for x in args.ranks.split(",")):
        configs += [(0, n * args.threads_per_rank), (n, args.threads_per_rank)]
    rows, base = [], None
    with tempfile.TemporaryDirectory() as tmp:
        history = os.path.join(tmp, "history.json")
        for ranks, threads in dict.fromkeys(configs):
            figures, cmd = [], ""
            for _ in range(args.repeats):
                sps, cmd = train(args, ranks, threads, history)
                figures.append(sps)
            sps = statistics.median(figures)
            cores = max(1, ranks) * threads
            base = base or sps
            rows.append({"ranks": max(1, ranks), "threads_per_rank": threads, "cores": cores,
                         "samples_per_second": round(sps, 1), "runs": [round(x, 1) for x in figures],
                         "speedup": round(sps / base, 3),
                         "efficiency": round(sps / base / cores, 3), "command": cmd})
    print(f"load average (1 minute): {load_before:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end, on {os.cpu_count()} cores")
    print(f"{'ranks':>5} {'threads/rank':>12} {'samples/s':>10} {'speed-up':>9} "
          f"{'efficiency':>10}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['threads_per_rank']:>12} {r['samples_per_second']:>10.1f} "
              f"{r['speedup']:>9.2f} {r['efficiency']:>10.2f}")
    for r in rows:
        print("  " + r["command"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": os.getloadavg()[0],
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
