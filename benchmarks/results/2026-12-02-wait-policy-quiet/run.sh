#!/usr/bin/env bash
# libgomp's default wait policy against OMP_WAIT_POLICY=passive on a quiet machine (nothing
# else running): the seed CNN, 2 threads, 2 alternating rounds; load average in the log.
set -euo pipefail
cd "$(dirname "$0")"
plinth=${PLINTH:-../../../build/plinth}
for round in 1 2; do
  for policy in default passive; do
    uptime
    if [[ $policy == passive ]]; then export OMP_WAIT_POLICY=passive; else unset OMP_WAIT_POLICY; fi
    "$plinth" bench --device cpu --threads 2 --batch-sizes 32,256 --modes train,infer \
      --repeats 5 --json "$policy-round$round.json" | grep -E "^cpu"
  done
done
