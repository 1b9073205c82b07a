#!/bin/bash
# plinth bench with and without executor slices, in 6 alternating rounds (started with
# setsid; autogroup priority -20). Each line: slices off|on, then samples/s of training at
# batch 64, 256, 1024 and inference at 64, 256, 1024 (medians of 3 windows of 0.7 s).
echo -20 > /proc/$$/autogroup 2>/dev/null
cd "$(dirname "$0")/../../.."
for i in 1 2 3 4 5 6; do
  for v in off on; do
    r=$(env -u OPENBLAS_CORETYPE build-cpu/plinth bench --device cpu --threads 2 \
      --batch-sizes 64,256,1024 --modes train,infer --repeats 3 --window 0.7 --slices $v 2>&1 |
      grep -E "^cpu" | awk '{printf "%s ", $4}')
    echo "$v $r"
  done
done
