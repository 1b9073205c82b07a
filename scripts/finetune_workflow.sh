#!/usr/bin/env bash
# Pretrain, then fine-tune (docs/finetune.md): the source text's worked workflow end to end.
#   (a) supervised pretraining of the model on Fashion-MNIST classes 0-4;
#   (b) (seed CNN) the conv autoencoder on all 60,000 training images, labels unused;
#   (c) the model fine-tuned on classes 5-9 with 1% of their labels, initialised from
#       (a) (new head: re-initialised) and from (b) (conv1..conv3 only);
#   (d) the same network from scratch on the same 1%, same settings;
# for each seed in SEEDS, with diagnostics (from scratch for twice the epochs; each start
# with its feature layers frozen; all labels), then benchmarks/results/finetune-<date>.{json,md}.
#
# MODEL=seed_cnn (default) or MODEL=resnet_small: the ResNet of models/resnet_small.json,
# pretrained with its own recipe; its head is `fc`, every other layer is a feature layer
# (frozen, its BatchNorms keep their statistics), and it has no autoencoder, so (b) is left
# out. Results go to OUT runs/finetune-resnet_small and benchmarks/results/
# finetune-resnet_small-<date>.{json,md}.
#
# Environment: PLINTH (binary; default build/plinth, built if missing), DEVICE (auto),
# SEEDS ("1 2 3 4 5"), OUT (runs/finetune), PRETRAIN_EPOCHS (5), AE_EPOCHS (5),
# FT_EPOCHS (30), FT_LR (0.003), RESULTS (benchmarks/results); SMOKE=1 checks the script
# in a minute or two (pretraining cut to 50 steps, one seed, 2 epochs, results in OUT).
# About 16 minutes on two CPU cores for the seed CNN, most of it the two pretrainings.
set -euo pipefail
cd "$(dirname "$0")/.."

PLINTH=${PLINTH:-build/plinth}
if [[ ! -x $PLINTH ]]; then
  bash scripts/build.sh
  PLINTH=build/plinth
fi
DEVICE=${DEVICE:-auto}
SEEDS=${SEEDS:-1 2 3 4 5}
MODEL=${MODEL:-seed_cnn}
PYTHON=${PYTHON:-python3}
# layers_but NAME: the model's layer names but NAME, comma-separated.
layers_but() {
  "$PLINTH" layers --json --model "models/$MODEL.json" | "$PYTHON" -c \
    'import json, sys; print(",".join(n["name"] for n in json.load(sys.stdin)["nodes"] if n["name"] != sys.argv[1]))' "$1"
}
case $MODEL in
  seed_cnn)
    HEAD=fc2 FEATURES=conv1,conv2,conv3 AUTOENCODER=1 NAME=finetune
    ;;
  resnet_small)
    # Every layer but the head: the stem and the three stages, pooling included.
    HEAD=fc AUTOENCODER=0 NAME=finetune-resnet_small
    FEATURES=$(layers_but fc)
    ;;
  *)
    echo "finetune_workflow: MODEL is seed_cnn or resnet_small, not '$MODEL'" >&2
    exit 2
    ;;
esac
OUT=${OUT:-runs/$NAME}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5}
AE_EPOCHS=${AE_EPOCHS:-5}
FT_EPOCHS=${FT_EPOCHS:-30}
FT_LR=${FT_LR:-0.003}
RESULTS=${RESULTS:-benchmarks/results}
PRETRAIN_LIMIT=()
if [[ ${SMOKE:-0} == 1 ]]; then
  SEEDS=1 OUT=runs/$NAME-smoke FT_EPOCHS=2 RESULTS=runs/$NAME-smoke
  PRETRAIN_EPOCHS=1 AE_EPOCHS=1 PRETRAIN_LIMIT=(--max-steps 50)
fi

# Fine-tuning sees 1% of classes 5-9's labels: 300 images. No validation split (it would
# need labels too) and no early stopping: a fixed number of epochs. Every row, pretrained
# or not, trains all layers with the same settings, chosen on a validation split where they
# were the best or near-best for each initialisation (docs/finetune.md).
# shellcheck disable=SC2054  # the commas belong to --classes
FT_DATA=(--classes 5,6,7,8,9 --labelled-fraction 0.01 --val-split 0)
# The same for both models: the seed CNN's file already says Adam, a constant rate and no
# augmentation; the ResNet's recipe (SGD, one-cycle, augmentation) is for its 54,000 images.
FT_OPTIMIZER=(--optimizer adam --weight-decay 0 --schedule constant --augment none --batch-size 32)
FT_TRAIN=(--epochs "$FT_EPOCHS" --lr "$FT_LR" "${FT_OPTIMIZER[@]}")
SETTINGS="Adam lr $FT_LR, batch 32, $FT_EPOCHS epochs, all layers trained, no validation split"

mkdir -p "$OUT"
: >"$OUT/runs.jsonl"

# run NAME VARIANT SEED ARGS...: one plinth train, its log and history under $OUT, its
# exact command line in $OUT/runs.jsonl for the report.
run() {
  local name=$1 variant=$2 seed=$3
  shift 3
  local cmd=("$PLINTH" train --device "$DEVICE" --seed "$seed" --history "$OUT/$name.history.json" "$@")
  echo "== $name: ${cmd[*]}"
  if ! "${cmd[@]}" >"$OUT/$name.log" 2>&1; then
    tr '\r' '\n' <"$OUT/$name.log" | tail -n 5
    echo "finetune_workflow: $name failed (log: $OUT/$name.log)" >&2
    exit 1
  fi
  grep -E '^plinth:   (loaded|skipped|ignored|initialised)' "$OUT/$name.log" || true
  grep '^Test accuracy' "$OUT/$name.log"
  "$PYTHON" -c 'import json, sys; n, v, s, log, hist, *cmd = sys.argv[1:]
print(json.dumps({"name": n, "variant": v, "seed": int(s), "log": log, "history": hist, "command": cmd}))' \
    "$name" "$variant" "$seed" "$OUT/$name.log" "$OUT/$name.history.json" "${cmd[@]}" >>"$OUT/runs.jsonl"
}

SUP=$OUT/pretrain_supervised.safetensors
AE=$OUT/pretrain_autoencoder.safetensors

# (a) Supervised pretraining: the model's recipe on classes 0-4 (relabelled 0..4).
run pretrain_supervised pretrain-supervised 1 --model "models/$MODEL.json" --classes 0,1,2,3,4 \
  --epochs "$PRETRAIN_EPOCHS" "${PRETRAIN_LIMIT[@]}" --save "$SUP"
# (b) Unsupervised pretraining: reconstruct all training images; no validation split, the
# labels are never read.
if [[ $AUTOENCODER == 1 ]]; then
  run pretrain_autoencoder pretrain-autoencoder 1 --model models/conv_autoencoder.json \
    --epochs "$AE_EPOCHS" --val-split 0 "${PRETRAIN_LIMIT[@]}" --save "$AE"
fi
# Loading really happens: (a)'s weights loaded strictly, one step with every layer frozen
# (BatchNorms keep their statistics too), must give (a)'s own test accuracy on classes 0-4
# (finetune_report.py checks).
run check_load check-load 1 --model "models/$MODEL.json" --classes 0,1,2,3,4 --val-split 0 \
  --init-from "$SUP" --epochs 1 --max-steps 1 --freeze "$(layers_but none)"

for seed in $SEEDS; do
  # (c) The classifier keeps its 10 outputs: classes 5-9 are relabelled 0..4, so (a)'s head,
  # which maps 0..4 to classes 0-4, is wrong for them and is re-initialised (--reset,
  # strict for the rest); the 5 unused outputs are simply never the target.
  run "finetune_supervised_seed$seed" finetune-supervised "$seed" --model "models/$MODEL.json" \
    "${FT_DATA[@]}" "${FT_TRAIN[@]}" --init-from "$SUP" --reset "$HEAD"
  # The autoencoder shares conv1..conv3; its decoder has no place in the classifier and
  # fc1/fc2 are new: --non-strict loads what matches and reports the rest.
  if [[ $AUTOENCODER == 1 ]]; then
    run "finetune_autoencoder_seed$seed" finetune-autoencoder "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${FT_TRAIN[@]}" --init-from "$AE" --non-strict
  fi
  # (d) From scratch, same data (the seed picks the same 1%), same epochs and lr.
  run "scratch_seed$seed" scratch "$seed" --model "models/$MODEL.json" "${FT_DATA[@]}" "${FT_TRAIN[@]}"
  # Is from scratch just short of steps? The same with twice the epochs.
  run "scratch_long_seed$seed" scratch-long "$seed" --model "models/$MODEL.json" "${FT_DATA[@]}" \
    --epochs $((2 * FT_EPOCHS)) --lr "$FT_LR" "${FT_OPTIMIZER[@]}"
  # How good are the pretrained features themselves? The feature layers frozen, only the
  # rest trained: random, supervised and autoencoder features.
  run "frozen_random_seed$seed" frozen-random "$seed" --model "models/$MODEL.json" "${FT_DATA[@]}" \
    "${FT_TRAIN[@]}" --freeze "$FEATURES"
  run "frozen_supervised_seed$seed" frozen-supervised "$seed" --model "models/$MODEL.json" \
    "${FT_DATA[@]}" "${FT_TRAIN[@]}" --freeze "$FEATURES" --init-from "$SUP" --reset "$HEAD"
  if [[ $AUTOENCODER == 1 ]]; then
    run "frozen_autoencoder_seed$seed" frozen-autoencoder "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${FT_TRAIN[@]}" --freeze "$FEATURES" --init-from "$AE" --non-strict
  fi
done

# What the labels would buy: all 30,000 labelled images of classes 5-9, the model's recipe.
run all_labels all-labels 1 --model "models/$MODEL.json" --classes 5,6,7,8,9 --val-split 0 \
  --epochs "$PRETRAIN_EPOCHS" "${PRETRAIN_LIMIT[@]}"

"$PYTHON" scripts/finetune_report.py "$OUT" --out-dir "$RESULTS" --settings "$SETTINGS" \
  --name "$NAME" --model "models/$MODEL.json" --plinth "$PLINTH"
