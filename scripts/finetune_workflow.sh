#!/usr/bin/env bash
# Pretrain, then fine-tune (docs/finetune.md): the source text's worked workflow end to end.
#   (a) supervised pretraining of the model on Fashion-MNIST classes 0-4;
#   (b) (seed CNN) the conv autoencoder on all 60,000 training images, labels unused;
#   (c) the model fine-tuned on classes 5-9 with 1% of their labels, initialised from
#       (a) (new head: re-initialised) and from (b) (conv1..conv3 only);
#   (d) the same network from scratch on the same 1%, same settings;
#   (e) the split the other way round: pretrained on classes 5-9, fine-tuned on 1% of 0-4,
#       against from scratch on the same images;
#   (f) (seed CNN) semi-supervised (FixMatch): from scratch, (a) and (b), each with the
#       29,700 unlabelled images of classes 5-9 beside the same 300 labelled ones;
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
# FT_EPOCHS (60), FT_LR (0.003), FT_SCHEDULE (cosine), FT_AUGMENT (shift=2,flip), BODY_LR
# (none), SEMI_EPOCHS (100), SEMI_WARMUP (5), SEMI=0 leaves out (f), RESULTS
# (benchmarks/results); SMOKE=1 checks the script
# in a minute or two (pretraining cut to 50 steps, one seed, 2 epochs, results in OUT).
# On a busy machine: PRETRAINED_DIR=DIR takes (a) and (e)'s pretrained checkpoints from
# DIR/pre04.safetensors and DIR/pre59.safetensors (made by the same commands) instead of
# pretraining; AUTOENCODER=0 leaves out (b) and its rows; DIAGNOSTICS=0 leaves out the
# twice-the-epochs, frozen-features and all-labels runs. CONTINUE=1 continues an
# interrupted run in OUT: the runs its runs.jsonl lists are not run again.
# About 30 minutes on two CPU cores for the seed CNN, most of it the semi-supervised rows.
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
AUTOENCODER=${AUTOENCODER_ROWS:-$AUTOENCODER}
DIAGNOSTICS=${DIAGNOSTICS:-1}
OUT=${OUT:-runs/$NAME}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5}
AE_EPOCHS=${AE_EPOCHS:-5}
FT_EPOCHS=${FT_EPOCHS:-60}
FT_LR=${FT_LR:-0.003}
FT_SCHEDULE=${FT_SCHEDULE:-cosine}
FT_AUGMENT=${FT_AUGMENT:-shift=2,flip}
# Pretrained layers only (the head is new): their learning-rate factors, e.g.
# conv1=0.1,conv2=0.1 (empty: every layer at the full rate).
BODY_LR=${BODY_LR:-}
SEMI=${SEMI:-1}
SEMI_EPOCHS=${SEMI_EPOCHS:-100}
SEMI_WARMUP=${SEMI_WARMUP:-5}
RESULTS=${RESULTS:-benchmarks/results}
PRETRAIN_LIMIT=()
if [[ ${SMOKE:-0} == 1 ]]; then
  SEEDS=1 OUT=runs/$NAME-smoke FT_EPOCHS=2 RESULTS=runs/$NAME-smoke
  PRETRAIN_EPOCHS=1 AE_EPOCHS=1 PRETRAIN_LIMIT=(--max-steps 50) SEMI_EPOCHS=2 SEMI_WARMUP=1
fi

# Fine-tuning sees 1% of classes 5-9's labels: 300 images. No validation split (it would
# need labels too) and no early stopping: a fixed number of epochs. Every row, pretrained
# or not, trains all layers with the same settings (augmentation, cosine decay, 60 epochs),
# chosen on a validation split over both splits' tasks, where they beat the other recipes
# tried for the pretrained starts: lower rates for the pretrained layers and a warm-up of
# the head with the body frozen did worse (docs/finetune.md).
# shellcheck disable=SC2054  # the commas belong to --classes
FT_DATA=(--classes 5,6,7,8,9 --labelled-fraction 0.01 --val-split 0)
# The same for both models: the seed CNN's file already says Adam, a constant rate and no
# augmentation; the ResNet's recipe (SGD, one-cycle, augmentation) is for its 54,000 images.
FT_OPTIMIZER=(--optimizer adam --weight-decay 0 --schedule "$FT_SCHEDULE" --augment "$FT_AUGMENT"
  --batch-size 32)
FT_TRAIN=(--epochs "$FT_EPOCHS" --lr "$FT_LR" "${FT_OPTIMIZER[@]}")
PRETRAINED=()
[[ -n $BODY_LR ]] && PRETRAINED=(--lr-multiplier "$BODY_LR")
SETTINGS="Adam lr $FT_LR ($FT_SCHEDULE), augment $FT_AUGMENT, batch 32, $FT_EPOCHS epochs, \
pretrained layers' lr factors: ${BODY_LR:-none}, no validation split"
# (e): the same on the other split.
# shellcheck disable=SC2054
REV_DATA=(--classes 0,1,2,3,4 --labelled-fraction 0.01 --val-split 0)
# (f): the same 300 labelled images with the other 29,700 of classes 5-9 unlabelled; each
# step 32 labelled and 7 x 32 unlabelled (weak view: the labelled images' augmentation),
# a cosine schedule over SEMI_EPOCHS epochs of 9 steps, the first SEMI_WARMUP labelled only;
# threshold and strong view chosen on a validation split (docs/finetune.md).
SEMI_TRAIN=(--epochs "$SEMI_EPOCHS" --lr 0.003 --optimizer adam --weight-decay 0 --schedule cosine
  --augment shift=2,flip --batch-size 32 --unlabelled rest --semi-warmup-epochs "$SEMI_WARMUP"
  --semi-ratio 7 --semi-threshold 0.8 --strong-augment shift=2,rotate=10,flip,cutout=6)

mkdir -p "$OUT"
[[ ${CONTINUE:-0} == 1 ]] || : >"$OUT/runs.jsonl"

# run NAME VARIANT SEED ARGS...: one plinth train, its log and history under $OUT, its
# exact command line in $OUT/runs.jsonl for the report.
run() {
  local name=$1 variant=$2 seed=$3
  shift 3
  if grep -q "^{\"name\": \"$name\"," "$OUT/runs.jsonl"; then
    echo "== $name: done before (CONTINUE=1)"
    return
  fi
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
SUP_REV=$OUT/pretrain_supervised_rev.safetensors
AE=$OUT/pretrain_autoencoder.safetensors

if [[ -n ${PRETRAINED_DIR:-} ]]; then
  SUP=$PRETRAINED_DIR/pre04.safetensors SUP_REV=$PRETRAINED_DIR/pre59.safetensors
else
  # (a) Supervised pretraining: the model's recipe on classes 0-4 (relabelled 0..4).
  run pretrain_supervised pretrain-supervised 1 --model "models/$MODEL.json" --classes 0,1,2,3,4 \
    --epochs "$PRETRAIN_EPOCHS" "${PRETRAIN_LIMIT[@]}" --save "$SUP"
  # (e)'s pretraining: the same on classes 5-9.
  run pretrain_supervised_rev pretrain-supervised-rev 1 --model "models/$MODEL.json" \
    --classes 5,6,7,8,9 --epochs "$PRETRAIN_EPOCHS" "${PRETRAIN_LIMIT[@]}" --save "$SUP_REV"
fi
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
    "${FT_DATA[@]}" "${FT_TRAIN[@]}" "${PRETRAINED[@]}" --init-from "$SUP" --reset "$HEAD"
  # The autoencoder shares conv1..conv3; its decoder has no place in the classifier and
  # fc1/fc2 are new: --non-strict loads what matches and reports the rest.
  if [[ $AUTOENCODER == 1 ]]; then
    run "finetune_autoencoder_seed$seed" finetune-autoencoder "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${FT_TRAIN[@]}" "${PRETRAINED[@]}" --init-from "$AE" --non-strict
  fi
  # (d) From scratch, same data (the seed picks the same 1%), same epochs and lr.
  run "scratch_seed$seed" scratch "$seed" --model "models/$MODEL.json" "${FT_DATA[@]}" "${FT_TRAIN[@]}"
  # (e) The other split: pretrained on 5-9, fine-tuned on 1% of 0-4, and from scratch.
  run "rev_finetune_supervised_seed$seed" rev-finetune-supervised "$seed" \
    --model "models/$MODEL.json" "${REV_DATA[@]}" "${FT_TRAIN[@]}" "${PRETRAINED[@]}" \
    --init-from "$SUP_REV" --reset "$HEAD"
  run "rev_scratch_seed$seed" rev-scratch "$seed" --model "models/$MODEL.json" "${REV_DATA[@]}" \
    "${FT_TRAIN[@]}"
  [[ $DIAGNOSTICS == 1 ]] || continue
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

# (f) Semi-supervised, last as they take longest: from (a) for every seed, then from
# scratch, then from (b).
if [[ $MODEL == seed_cnn && $SEMI == 1 ]]; then
  for seed in $SEEDS; do
    run "semi_supervised_seed$seed" semi-supervised "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${SEMI_TRAIN[@]}" --init-from "$SUP" --reset "$HEAD"
  done
  for seed in $SEEDS; do
    run "semi_scratch_seed$seed" semi-scratch "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${SEMI_TRAIN[@]}"
  done
  for seed in $SEEDS; do
    [[ $AUTOENCODER == 1 ]] || break
    run "semi_autoencoder_seed$seed" semi-autoencoder "$seed" --model models/seed_cnn.json \
      "${FT_DATA[@]}" "${SEMI_TRAIN[@]}" --init-from "$AE" --non-strict
  done
fi

# What the labels would buy: all 30,000 labelled images of classes 5-9, the model's recipe.
if [[ $DIAGNOSTICS == 1 ]]; then
  run all_labels all-labels 1 --model "models/$MODEL.json" --classes 5,6,7,8,9 --val-split 0 \
    --epochs "$PRETRAIN_EPOCHS" "${PRETRAIN_LIMIT[@]}"
fi

SEMI_SETTINGS="Adam lr 0.003 (cosine), batch 32 labelled + 7 x 32 unlabelled, $SEMI_EPOCHS epochs \
of 9 steps (the first $SEMI_WARMUP labelled only), threshold 0.8, weak view shift=2,flip, strong \
view shift=2,rotate=10,flip,cutout=6"
"$PYTHON" scripts/finetune_report.py "$OUT" --out-dir "$RESULTS" --settings "$SETTINGS" \
  --semi-settings "$SEMI_SETTINGS" \
  --name "$NAME" --model "models/$MODEL.json" --plinth "$PLINTH"
