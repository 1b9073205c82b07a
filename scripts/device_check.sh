#!/usr/bin/env bash
# The GPU check, in phases that each end within 8 minutes on the lent H200 (one device call
# each; README, "On a GPU machine"), and its rehearsal on a machine without a GPU:
#   bash scripts/device_check.sh a         configure against kit/ and the torch venv's cuDNN
#                                          and cuBLAS, build, plinth info, the libraries the
#                                          binaries load, every [cuda] test, a 1-epoch GPU run,
#                                          a run on a streamed training set (eager steps),
#                                          a 1-rank NCCL job against the plain GPU run (skipped
#                                          without MPI, which the bare machine lacks),
#                                          bench at batch 64 and 1024 with --layers (CUDA
#                                          graphs), eagerly, and in TF32 and BF16 at 1024 and
#                                          4096, PyTorch eager and CUDA-graph,
#                                          compute-sanitizer memcheck
#   bash scripts/device_check.sh b         the build (again on a fresh machine), the 10-epoch
#                                          accuracy run in fp32, TF32 and BF16, the large-batch
#                                          recipe in the three, time to 90% and throughput
#                                          against PyTorch (compare.py), every test
#   bash scripts/device_check.sh rehearse  here, as the bare machine would see it: the kit's
#                                          prefix as the only place for the build's packages
#                                          (proved from CMake's cache and the compiler's
#                                          dependency lists), cuDNN as a versioned .so.9 in a
#                                          wheel-like folder, the kit's data, then the CPU parts
#                                          of both phases (12 minutes on 2 busy cores)
#   bash scripts/device_check.sh rehearse-quick   the same with the library and the tool
#                                          alone, short runs and no test suite (CI)
# Needs kit/ from scripts/device_kit.sh (carried with the tree) and no network. Every step
# has its own time limit within the phase's (PLINTH_PHASE_SECONDS: 450 for a and b), and a
# failed step does not stop the others. $OUT (default device-logs/) receives
# summary-PHASE.txt, whose table ends the output, and logs-PHASE.tar.gz with every log.
# Settings: PLINTH_TORCH_VENV (/opt/torch/.venv), PLINTH_NVCC, PLINTH_COMMIT (for a tree
# copied without .git), PLINTH_KIT (kit).
set -uo pipefail
script=$(readlink -f "$0")
root=$(cd "$(dirname "$script")/.." && pwd)
cd "$root" || exit 1
source "$root/scripts/device_steps.sh"

data_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
            t10k-labels-idx1-ubyte.gz)

# One step as its own process under a time limit: `device_check.sh --step NAME`.
if [ "${1:-}" = --step ]; then
  [ -f "$LOGS/paths.env" ] && source "$LOGS/paths.env"
  export MACHINE_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
  export LD_LIBRARY_PATH="$(library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "step_$2"
  exit
fi

phase=${1:-}
case $phase in  # build folder, device, rehearsal or not, seconds for the phase and the build
  a | b) build=build-gpu device=cuda rehearsal="" budget=450 build_limit=420 ;;
  rehearse | rehearse-quick)  # on 2 busy cores the build alone can take 10 minutes
    build=build-rehearse device=cpu rehearsal=yes budget=3600 build_limit=1800 ;;
  *) echo "usage: bash scripts/device_check.sh a|b|rehearse|rehearse-quick (see its top)" >&2
     exit 2 ;;
esac
budget=${PLINTH_PHASE_SECONDS:-$budget}
export PHASE=$phase REHEARSAL=$rehearsal DEVICE=$device ROOT=$root BUILD=$root/$build
export LOGS=$BUILD/logs-$phase KIT=$root/${PLINTH_KIT:-kit} PREFIX=$BUILD/kit-prefix
export JOBS=$(nproc) DATA_FILES="${data_files[*]}"
# The kit's data set where there is a kit: that is what the bare machine will read.
PLINTH_DATA=${PLINTH_DATA:-/usr/share/datasets/fashion-mnist}
[ -d "$KIT/fashion-mnist" ] && PLINTH_DATA=$KIT/fashion-mnist
export PLINTH_DATA
out=${OUT:-$root/device-logs}
rm -rf "$LOGS" && mkdir -p "$LOGS" "$out"
started=$(date +%s)
deadline=$((started + budget))
reserve=20  # seconds kept for the summary and the archive
{
  echo "phase=$phase"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${PLINTH_COMMIT:-}")"
  echo "kit=$(sed -n 2p "$KIT/MANIFEST.txt" 2>/dev/null)"
} >"$LOGS/context.txt"

# run_step NAME SECONDS [NEEDED_STEP...]: runs step_NAME, records its status in steps.tsv.
run_step() {
  local name=$1 limit=$2 need status note="" rc start
  shift 2
  for need in "$@"; do
    if ! grep -q "^$need	OK	" "$LOGS/steps.tsv" 2>/dev/null; then
      record "$name" "NOT RUN" 0 "needs $need"
      return
    fi
  done
  local left=$((deadline - $(date +%s) - reserve))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    record "$name" "NOT RUN" 0 "the phase's $budget s were used up"
    return
  fi
  start=$(date +%s)
  timeout -k 10 "$limit" bash "$script" --step "$name" >"$LOGS/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=OK ;;
    77) status=SKIPPED note=$(tail -1 "$LOGS/$name.log") ;;
    124 | 137) status=FAILED note="timed out after $limit s" ;;
    *) status=FAILED note="exit $rc: $(grep -v '^\s*$' "$LOGS/$name.log" | tail -1 | cut -c1-99)" ;;
  esac
  record "$name" "$status" $(($(date +%s) - start)) "$note"
  [ "$name" = locate ] && [ -f "$LOGS/paths.env" ] && source "$LOGS/paths.env"
}
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$LOGS/steps.tsv"
  printf '[%s %4ds] %-14s %-8s %s\n' "$PHASE" $(($(date +%s) - started)) "$1" "$2" "$4"
}

echo "plinth device check, phase $phase: logs in $LOGS, results to $out"
[ -n "$REHEARSAL" ] && run_step fake_venv 60
run_step locate 60
run_step env 60
run_step kit 120
run_step configure 180 kit locate
run_step build "$build_limit" configure
[ -n "$REHEARSAL" ] && run_step isolation 60 build
run_step libs 60 build
# Estimated seconds on the H200 (no GPU has run this yet) follow the new steps: bench's
# fixed windows (repeats x window per figure, plus about 1 s of warm-up) and 3-5 s per
# process for start-up, cuDNN/cuBLAS set-up and reading the data set; training runs from the
# issue's figure of about 0.1 ms per eager step at batch 64, and at batch 1024 from the seed
# CNN's 17 MFLOP per sample per training step at some 20 TFLOP/s (about 1 ms per step).
# The limits are caps: when a phase's budget runs out its last steps are NOT RUN.
case $phase in
  a)
    run_step info 30 build
    run_step cuda_tests 150 build
    run_step train 120 build
    run_step eval 60 train
    run_step streamed 30 build         # ~5 s: 40 eager steps, evaluations, start-up
    run_step nccl 90 build
    run_step bench 120 build
    run_step bench_eager 60 build      # ~10 s: 2 batch sizes x 2 s, start-up
    run_step bench_precision 90 build  # ~20 s: tf32 and bf16, 2 sizes x 2 s and --layers each
    run_step pytorch 150
    run_step memcheck 150 build  # last: under the sanitizer cuDNN's set-up alone may be slow
    ;;
  b)
    run_step info 30 build
    run_step accuracy 150 build
    run_step accuracy_tf32 150 build
    run_step accuracy_bf16 150 build     # ~10 s: 16,870 steps, 10 evaluations, start-up
    run_step large_batch 90 build        # ~6 s each: 520 steps of about 1 ms, start-up
    run_step large_batch_tf32 90 build
    run_step large_batch_bf16 90 build
    run_step compare 240 build
    run_step tests 300 build
    ;;
  rehearse)
    run_step info 30 build
    run_step tests 900 build
    run_step memcheck 60 build
    run_step train 300 build
    run_step eval 120 train
    run_step streamed 120 build
    run_step nccl 60 build
    run_step bench 300 build
    run_step bench_eager 30 build
    run_step bench_precision 30 build
    run_step pytorch 300
    run_step accuracy 300 build
    run_step accuracy_bf16 30 build
    run_step large_batch 300 build
    run_step compare 600 build
    ;;
  rehearse-quick)
    run_step info 30 build
    run_step train 300 build
    run_step eval 120 train
    run_step streamed 120 build
    run_step bench 300 build
    ;;
esac

summary=$LOGS/summary.txt
python=$(command -v "${PY:-python3}" || command -v python3)
timeout 30 "$python" "$root/scripts/device_summary.py" "$LOGS" >"$summary" 2>&1 \
  || { echo "(device_summary.py failed; steps.tsv:)"; cat "$LOGS/steps.tsv"; } >>"$summary"
cp "$summary" "$out/summary-$phase.txt"
tar -czf "$out/logs-$phase.tar.gz" -C "$BUILD" "logs-$phase"
echo
cat "$summary"
echo "wrote $out/summary-$phase.txt and $out/logs-$phase.tar.gz"
! grep -q "	FAILED	" "$LOGS/steps.tsv"
