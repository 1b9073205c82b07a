#!/bin/bash
# CPU seconds (user + sys) per training step on 1 thread, im2col + GEMM (PLINTH_CPU_CONV=gemm)
# against auto (Winograd where timed faster), in alternating rounds. CPU time, unlike
# samples/s, does not count the time other work on a shared machine holds the core; the
# per-step figure is the difference between runs of 60 and 10 steps, so start-up and data
# loading cancel. Usage: bash cpu_seconds_per_step.sh [rounds]  (from the repository root)
rounds=${1:-2}
run() {  # algo model batch steps -> CPU seconds
  /usr/bin/time -f "%U %S" env PLINTH_CPU_CONV=$1 build/plinth train --device cpu --threads 1 \
    --model models/$2.json --batch-size $3 --epochs 1 --max-steps $4 --val-split 0 --quiet \
    2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'
}
echo "["
first=1
for round in $(seq 1 $rounds); do
  for algo in gemm auto; do
    for spec in resnet_small:128 seed_cnn:32; do
      model=${spec%:*}; batch=${spec#*:}
      load=$(cut -d' ' -f1 /proc/loadavg)
      short=$(run $algo $model $batch 10); long=$(run $algo $model $batch 60)
      per_step=$(awk -v a=$short -v b=$long 'BEGIN {printf "%.4f", (b - a) / 50}')
      [ $first = 1 ] || echo ","
      first=0
      printf '  {"round": %d, "conv": "%s", "model": "%s", "batch": %d, "threads": 1, ' \
        $round $algo $model $batch
      printf '"cpu_s_10_steps": %s, "cpu_s_60_steps": %s, "cpu_s_per_step": %s, "load1": %s}' \
        $short $long $per_step $load
    done
  done
done
echo
echo "]"
