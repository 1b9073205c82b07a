#!/usr/bin/env bash
# The whole GPU check in one go, for a machine with an NVIDIA GPU (e.g. the lent H200):
# build (or reuse a carried build/ when it runs there), print `plinth info`, run the [cuda]
# tests, compute-sanitizer memcheck on a short training run, a 10-epoch seed CNN run on the
# GPU, and the GPU benchmark. Logs go to $OUT (or ./device-logs) for committing under
# benchmarks/results/<date>-<commit>/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-device-logs}"
mkdir -p "$out"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ) commit $commit"
echo "$stamp" | tee "$out/stamp.txt"
nvidia-smi | tee "$out/nvidia-smi.txt" || true

if [ ! -x build-gpu/plinth ] || ! build-gpu/plinth info >/dev/null 2>&1; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPLINTH_CUDA=ON >"$out/configure.log" 2>&1 || cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPLINTH_CUDA=ON >"$out/configure.log" 2>&1
  cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
fi
p=build-gpu/plinth
$p info | tee "$out/info.txt"

echo "== [cuda] tests" | tee -a "$out/summary.txt"
build-gpu/tests/plinth_tests "[cuda]" 2>&1 | tee "$out/cuda-tests.log" | tail -5 | tee -a "$out/summary.txt"

if command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck, 30 training steps" | tee -a "$out/summary.txt"
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 $p train --device cuda --epochs 1 --max-steps 30 \
    --quiet >"$out/memcheck.log" 2>&1; echo "memcheck exit $?" | tee -a "$out/summary.txt"
fi

echo "== seed CNN, 10 epochs, batch 32, GPU" | tee -a "$out/summary.txt"
$p train --device cuda --model models/seed_cnn.json --epochs 10 --batch-size 32 \
  --history "$out/seed_cnn_gpu.history.json" 2>&1 | tee "$out/train-gpu.log" | tail -3 | tee -a "$out/summary.txt"

echo "== bench" | tee -a "$out/summary.txt"
$p bench --device cuda --batch-sizes 32,64,256,1024,4096 --layers --gemm 4096 --json "$out/bench-gpu.json" \
  2>&1 | tee "$out/bench-gpu.log" | tail -25 | tee -a "$out/summary.txt"
echo "== bench, TF32 allowed, large batches" | tee -a "$out/summary.txt"
$p bench --device cuda --tf32 --batch-sizes 1024,4096 --json "$out/bench-gpu-tf32.json" \
  2>&1 | tee "$out/bench-gpu-tf32.log" | tail -8 | tee -a "$out/summary.txt"
echo "== time to 90% test accuracy: the seed CNN recipe at batch 64, then models/seed_cnn_fast.json" | tee -a "$out/summary.txt"
$p bench --device cuda --modes train --batch-sizes 64 --time-to-accuracy --tta-batch 64 \
  --json "$out/tta-gpu.json" 2>&1 | tee "$out/tta-gpu.log" | tail -3 | tee -a "$out/summary.txt"
$p bench --device cuda --model models/seed_cnn_fast.json --modes train --batch-sizes 64 --time-to-accuracy \
  --tta-batch 64 --tta-epochs 3 --json "$out/tta-gpu-fast.json" 2>&1 | tee "$out/tta-gpu-fast.log" | tail -3 \
  | tee -a "$out/summary.txt"
# PyTorch on the same GPU (eager, and with its step in a CUDA graph): through compare.py where
# /usr/bin/python3 or .venv-torch has a CUDA torch, else with whatever python3 has one.
has_cuda_torch() { "$1" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; }
if has_cuda_torch /usr/bin/python3 || { [ -x .venv-torch/bin/python ] && has_cuda_torch .venv-torch/bin/python; }; then
  /usr/bin/python3 benchmarks/compare.py --device cuda --rounds 1 --plinth "$p" --out "$out/compare" \
    2>&1 | tee "$out/compare.log" | tail -25 | tee -a "$out/summary.txt"
elif has_cuda_torch python3; then
  python3 benchmarks/pytorch_seed_cnn.py --mode bench --device cuda --json "$out/pytorch-gpu.json" \
    2>&1 | tee "$out/pytorch-gpu.log" | tail -12 | tee -a "$out/summary.txt"
fi
cat "$out/summary.txt"
