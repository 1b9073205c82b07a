#!/usr/bin/env bash
# Installs the PyTorch anchors that benchmarks/pytorch_seed_cnn.py and scripts/plot.py run on.
#
#   scripts/setup_pytorch.sh          Debian's torch 1.13, numpy, matplotlib (/usr/bin/python3)
#   scripts/setup_pytorch.sh --pypi   also the newest torch from PyPI in .venv-torch
#
# PyPI's Linux torch is a CUDA build whose dependencies (CUDA runtime wheels, cuDNN, NCCL,
# triton...) come to about 2.8 GB. Where the system already has the CUDA 13 libraries it links
# (the toolkit in /usr/local/cuda), only torch, its pure-Python dependencies and the few NVIDIA
# libraries the toolkit lacks are installed (about 1.1 GB); if that does not import, the full
# dependency set is installed instead. Either way the result is checked on the CPU.
set -euo pipefail

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

pypi=0
for arg in "$@"; do
  case "$arg" in
    --pypi) pypi=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup_pytorch.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(python3-torch python3-numpy python3-matplotlib python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi
/usr/bin/python3 -c 'import torch, numpy, matplotlib; print("debian torch", torch.__version__)'

[ "$pypi" -eq 1 ] || exit 0

venv="$root/.venv-torch"
py="$venv/bin/python"
[ -x "$py" ] || /usr/bin/python3 -m venv "$venv"

check_torch() {
  "$py" - <<'EOF'
import torch
x = torch.nn.Conv2d(1, 8, 3)(torch.randn(2, 1, 28, 28))
assert x.shape == (2, 8, 26, 26)
print("pypi torch", torch.__version__, "cuda build", torch.version.cuda,
      "cuda available", torch.cuda.is_available())
EOF
}

# The CUDA 13 libraries torch links and a toolkit install provides.
have_system_cuda() {
  local lib libs
  libs="$(ldconfig -p)"  # not piped into grep -q: with pipefail, ldconfig's SIGPIPE fails the test
  for lib in libcudart.so.13 libcublas.so.13 libcudnn.so.9 libcufft.so.12 libcusolver.so.12 \
             libcusparse.so.12 libnvrtc.so.13 libnvJitLink.so.13 libcupti.so.13; do
    grep -q "$lib" <<<"$libs" || return 1
  done
}

if check_torch 2>/dev/null; then exit 0; fi

if have_system_cuda; then
  "$py" -m pip install --no-deps torch
  # torch's own requirements, minus the NVIDIA wheels the system toolkit already provides;
  # NCCL, cuSPARSELt, NVSHMEM and cuFile are not in the toolkit, so they come from PyPI.
  mapfile -t deps < <("$py" - <<'EOF'
import re
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement

for text in requires("torch"):
    r = Requirement(text)
    if r.marker and not r.marker.evaluate({"extra": ""}):
        continue
    if re.fullmatch(r"nvidia-(nccl|cusparselt|nvshmem)-cu\d+", r.name):
        print(f"{r.name}{r.specifier}")
    elif r.name == "cuda-toolkit":
        print(f"cuda-toolkit[cufile]{r.specifier}")
    elif not r.name.startswith(("nvidia-", "cuda-", "triton")):
        print(f"{r.name}{r.specifier}")
EOF
  )
  # pip then warns that torch's cuDNN, triton and cuda-bindings are missing: expected here.
  "$py" -m pip install "${deps[@]}" numpy
  if check_torch; then exit 0; fi
  echo "setup_pytorch.sh: the small install does not import; installing torch with all its dependencies" >&2
fi

"$py" -m pip install torch numpy
check_torch
