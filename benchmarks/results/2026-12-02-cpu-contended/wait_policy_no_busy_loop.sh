#!/bin/bash
# As wait_policy.sh but without the busy loop (only what else runs on the machine): 2 threads
# under libgomp's default wait policy against OMP_WAIT_POLICY=passive, alternating rounds.
rounds=${1:-2}
out=$(dirname "$0")
for round in $(seq 1 $rounds); do
  for policy in default passive; do
    echo "round $round $policy load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $policy = passive ]; then export OMP_WAIT_POLICY=passive; else unset OMP_WAIT_POLICY; fi
    build/plinth bench --device cpu --threads 2 --batch-sizes 32,256 --modes train --repeats 3 \
      --json $out/nobusy-$policy-round$round.json | grep "^cpu"
  done
done
