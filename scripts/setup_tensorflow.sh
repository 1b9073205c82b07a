#!/usr/bin/env bash
# Installs the Keras anchor that benchmarks/keras_seed_cnn.py (and benchmarks/compare.py)
# run on: TensorFlow's CPU build from PyPI in .venv-tf (about 1.6 GB), checked by building
# and running the seed CNN for one step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install_deps.sh"  # python3-venv and python3-numpy among them
venv="$root/.venv-tf"
py="$venv/bin/python"
[ -x "$py" ] || /usr/bin/python3 -m venv "$venv"
"$py" -c "import tensorflow" 2>/dev/null || "$py" -m pip install tensorflow-cpu
TF_CPP_MIN_LOG_LEVEL=2 "$py" - <<'PY'
import numpy as np, tensorflow as tf
m = tf.keras.Sequential([tf.keras.Input(shape=(28, 28, 1)), tf.keras.layers.Conv2D(32, 3),
                         tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)])
m.compile(optimizer="adam", loss="mse")
m.train_on_batch(np.zeros((2, 28, 28, 1), np.float32), np.zeros((2, 10), np.float32))
print("tensorflow", tf.__version__, "on the CPU: ok")
PY
