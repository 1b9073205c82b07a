#!/bin/bash
# With one other core kept busy: this commit's build/plinth on 2 threads under libgomp's
# default wait policy (spin, then sleep) against OMP_WAIT_POLICY=passive (sleep at once), and
# on 1 thread, in alternating rounds. Usage: bash wait_policy.sh [rounds]
rounds=${1:-2}
out=$(dirname "$0")
python3 -c "while True: pass" &
busy=$!
trap 'kill $busy' EXIT
for round in $(seq 1 $rounds); do
  for policy in default passive one-thread; do
    echo "round $round $policy load $(cut -d' ' -f1-3 /proc/loadavg)"
    case $policy in
      default) env -u OMP_WAIT_POLICY build/plinth bench --device cpu --threads 2 --batch-sizes 32,256 \
        --modes train --repeats 3 --json $out/wait-$policy-round$round.json | grep "^cpu" ;;
      passive) OMP_WAIT_POLICY=passive build/plinth bench --device cpu --threads 2 --batch-sizes 32,256 \
        --modes train --repeats 3 --json $out/wait-$policy-round$round.json | grep "^cpu" ;;
      one-thread) build/plinth bench --device cpu --threads 1 --batch-sizes 32,256 \
        --modes train --repeats 3 --json $out/wait-$policy-round$round.json | grep "^cpu" ;;
    esac
  done
done
