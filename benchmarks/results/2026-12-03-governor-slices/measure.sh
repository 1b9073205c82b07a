#!/bin/bash
# Three alternating rounds of the training benchmark with the thread governor on and off, on
# the otherwise idle machine (started with setsid; autogroup priority -20). Run once with the
# binary of commit 67c6508 (before/, twice: run1 with "on" first in each round, run2 with
# "off" first) and once with the commit that tells the governor of each slice (after/).
echo -20 > /proc/$$/autogroup 2>/dev/null
cd "$(dirname "$0")/../../.."
out=${1:-/tmp/governor-ab}
mkdir -p "$out"
for r in 1 2 3; do for a in off on; do
  env -u OPENBLAS_CORETYPE build/plinth bench --device cpu --threads 2 --batch-sizes 32,256,1024 \
    --modes train --adapt-threads $a --json "$out/$a-$r.json" > "$out/$a-$r.log" 2>&1
done; done
