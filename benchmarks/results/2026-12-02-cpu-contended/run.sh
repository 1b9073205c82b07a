#!/bin/bash
# Training throughput of the seed CNN with one other core kept busy by a busy loop: the
# build before the dynamic work division (BASE) against this commit's build/plinth, 2
# threads and 1 thread, in alternating rounds. Usage: bash run.sh BASE_BINARY [rounds]
base=$1; rounds=${2:-3}
out=$(dirname "$0")
python3 -c "while True: pass" &
busy=$!
trap 'kill $busy' EXIT
for round in $(seq 1 $rounds); do
  for bin in base new; do
    exe=$([ $bin = base ] && echo "$base" || echo build/plinth)
    for threads in 2 1; do
      echo "round $round $bin threads $threads load $(cut -d' ' -f1-3 /proc/loadavg)"
      $exe bench --device cpu --threads $threads --batch-sizes 32,256 --modes train --repeats 3 \
        --json $out/$bin-t$threads-round$round.json | grep "^cpu"
    done
  done
done
