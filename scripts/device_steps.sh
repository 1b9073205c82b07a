# The steps of scripts/device_check.sh, sourced by it. Each step_NAME runs as its own
# process with its output in $LOGS/NAME.log: it returns 0 (OK), 77 with the reason as its
# last line (SKIPPED), or anything else (FAILED). The phase's context comes in exported
# variables (PHASE, REHEARSAL, DEVICE, ROOT, BUILD, LOGS, KIT, PREFIX, JOBS, PLINTH_DATA)
# and in $LOGS/paths.env, which step_locate writes (NVCC, PY, CUDNN_ROOT, CUBLAS_ROOT,
# SANITIZER).

skip() { echo "SKIPPED: $*"; return 77; }

# PyTorch alone runs with the library path the machine gave, not the kit's older libz and
# libgfortran in front (compare.py runs plinth too, so it has the kit's).
torch_python() { LD_LIBRARY_PATH=$MACHINE_LIBRARY_PATH "$PY" "$@"; }

# The first argument that is an executable file.
first_executable() {
  local candidate
  for candidate in "$@"; do
    [ -f "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
}

# Where the binaries find what the system lacks: the kit's libraries (OpenBLAS needs
# libgfortran, which RUNPATH does not reach), and cuDNN's sub-libraries, which libcudnn.so.9
# loads at run time from the library path.
library_path() {
  local dirs=() d
  for d in "$PREFIX"/usr/lib/*-linux-gnu "$PREFIX"/usr/lib/*-linux-gnu/openblas-openmp \
           "${CUDNN_ROOT:+$CUDNN_ROOT/lib}" "${CUBLAS_ROOT:+$CUBLAS_ROOT/lib}"; do
    [ -n "$d" ] && [ -d "$d" ] && dirs+=("$d")
  done
  (IFS=:; echo "${dirs[*]}")
}

# ---- set-up --------------------------------------------------------------------------

# rehearse: cuDNN and cuBLAS laid out as in PyTorch's pip wheels, from this machine's
# copies: nvidia/cudnn/{include,lib} with libcudnn*.so.9 and no libcudnn.so link, and
# nvidia/cu13/lib with libcublas.so.13 (CUDA 13's wheels share one nvidia/cu13 folder). The
# libraries are hard links where the file system allows, so that they are found by this
# folder's path and not the originals'; cuDNN's shim is seen loading its sub-libraries from
# there (a host-only call; no GPU needed).
step_fake_venv() {
  local cudnn_lib="" cublas_lib=/usr/local/cuda/lib64 include=/usr/local/cuda/include d f
  local site=$BUILD/fake-venv/lib/python3.12/site-packages/nvidia
  for d in /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/libcudnn.so.9" ] && cudnn_lib=$d && break
  done
  [ -e "$cudnn_lib/libcudnn.so.9" ] || { echo "no libcudnn.so.9 on this machine"; return 1; }
  [ -e "$cublas_lib/libcublas.so.13" ] || { echo "no $cublas_lib/libcublas.so.13"; return 1; }
  rm -rf "$BUILD/fake-venv"
  mkdir -p "$site/cudnn/include" "$site/cudnn/lib" "$site/cu13/lib"
  link() { ln "$(readlink -f "$1")" "$2/${1##*/}" 2>/dev/null || ln -s "$1" "$2/"; }
  for f in "$cudnn_lib"/libcudnn*.so.9; do link "$f" "$site/cudnn/lib"; done
  for f in "$cublas_lib"/libcublas.so.13 "$cublas_lib"/libcublasLt.so.13; do
    link "$f" "$site/cu13/lib"
  done
  ln -s "$include"/cudnn*.h "$site/cudnn/include/"
  ls -l "$site/cudnn/lib" "$site/cu13/lib"
  python3 - "$site/cudnn/lib" <<'EOF'
import ctypes, os, sys
folder = sys.argv[1]
cudnn = ctypes.CDLL(folder + "/libcudnn.so.9")
status = cudnn.cudnnCreateTensorDescriptor(ctypes.byref(ctypes.c_void_p()))
loaded = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libcudnn" in line})
print(f"cudnnCreateTensorDescriptor: status {status}; cuDNN's libraries loaded:", *loaded,
      sep="\n  ")
# With hard links (not symbolic ones, which resolve to the originals) all come from here.
elsewhere = [p for p in loaded if not p.startswith(folder)]
sys.exit(status != 0 or len(loaded) < 2
         or bool(elsewhere) and not os.path.islink(folder + "/libcudnn.so.9"))
EOF
}

# nvcc, the python with torch, the venv's cuDNN and cuBLAS folders, compute-sanitizer.
step_locate() {
  local venv=${PLINTH_TORCH_VENV:-/opt/torch/.venv} nvcc py site cudnn="" cublas="" sanitizer d
  [ -n "$REHEARSAL" ] && venv=$BUILD/fake-venv
  nvcc=$(first_executable "${PLINTH_NVCC:-}" "$(command -v nvcc)" /usr/local/cuda/bin/nvcc \
    "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc /usr/local/cuda-*/bin/nvcc)
  # The first python with torch, else the first python.
  local pythons=("$venv/bin/python3" "$(command -v python3)" /usr/bin/python3)
  for py in "${pythons[@]}" ""; do
    [ -x "$py" ] && PY=$py torch_python -c "import torch" 2>/dev/null && break
  done
  [ -n "$py" ] || py=$(first_executable "${pythons[@]}")
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
  [ -d "$site/nvidia" ] || site=$(ls -d "$venv"/lib/python3*/site-packages 2>/dev/null | head -1)
  d=$site/nvidia/cudnn
  [ -e "$d/include/cudnn_version.h" ] && ls "$d"/lib/libcudnn.so* >/dev/null 2>&1 && cudnn=$d
  for d in "$site/nvidia/cu13" "$site/nvidia/cublas"; do
    ls "$d"/lib/libcublas.so* >/dev/null 2>&1 && { cublas=$d; break; }
  done
  d=$(dirname "$nvcc")
  sanitizer=$(first_executable "$(command -v compute-sanitizer)" "$d/compute-sanitizer" \
    "$d/../compute-sanitizer/compute-sanitizer" /usr/local/cuda/compute-sanitizer/compute-sanitizer)
  printf 'NVCC=%q\nPY=%q\nCUDNN_ROOT=%q\nCUBLAS_ROOT=%q\nSANITIZER=%q\n' \
    "$nvcc" "$py" "$cudnn" "$cublas" "$sanitizer" | tee "$LOGS/paths.env"
  [ -n "$nvcc" ] || { echo "no nvcc (PATH, /usr/local/cuda, the venv); set PLINTH_NVCC"; return 1; }
  [ -n "$cudnn" ] || echo "no cuDNN in $venv: the toolkit's or the system's will be searched"
}

step_env() {
  uname -a
  echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
  nvidia-smi || echo "nvidia-smi: not available"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    >"$LOGS/gpu.txt" 2>/dev/null || echo "no GPU" >"$LOGS/gpu.txt"
  "$NVCC" --version
  cmake --version | head -1
  ninja --version 2>/dev/null || echo "no ninja"
  c++ --version | head -1
  [ -n "$CUDNN_ROOT" ] && grep -E "define CUDNN_(MAJOR|MINOR|PATCHLEVEL) " \
    "$CUDNN_ROOT/include/cudnn_version.h"
  torch_python -c 'import sys, torch
print(sys.executable, "torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN",
      torch.backends.cudnn.version(), "GPU usable:", torch.cuda.is_available())' 2>&1 \
    | tee "$LOGS/torch.txt"
  return 0
}

# The kit's packages unpacked into $PREFIX (again only when the archive changed, so that a
# warm build is not rebuilt), and its data set.
step_kit() {
  local archive=$KIT/prefix.tar.xz stamp f
  if [ ! -f "$archive" ]; then
    echo "$archive: not found (make it with bash scripts/device_kit.sh and carry kit/)"
    return 1
  fi
  stamp=$(sha256sum <"$archive" | cut -c1-64)
  if [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$PREFIX" && mkdir -p "$PREFIX"
    if ! tar -xJf "$archive" -C "$PREFIX"; then
      echo "tar -xJ failed (no xz?); unpacking with python"
      "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$archive" "$PREFIX" || return 1
    fi
    echo "$stamp" >"$PREFIX/.stamp"
  fi
  cat "$KIT/MANIFEST.txt"
  for f in $DATA_FILES; do
    [ -s "$PLINTH_DATA/$f" ] || { echo "$PLINTH_DATA/$f: not found"; return 1; }
  done
  echo "prefix $PREFIX ($(du -sh "$PREFIX" | cut -f1)); data $PLINTH_DATA"
}

# ---- build ---------------------------------------------------------------------------

step_configure() {
  local args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPLINTH_CUDA=ON
              -DCMAKE_PREFIX_PATH="$PREFIX/usr" -DCMAKE_CUDA_COMPILER="$NVCC"
              -DPLINTH_CUDNN_ROOT="$CUDNN_ROOT" -DPLINTH_CUBLAS_ROOT="$CUBLAS_ROOT")
  [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null && args+=(-G Ninja)
  # The rehearsal hides the system's prefixes, where this machine has the same packages
  # (CMake then warns that it finds no librt for CUDA::cudart_static, which plinth never uses).
  [ -n "$REHEARSAL" ] && args+=("-DCMAKE_IGNORE_PREFIX_PATH=/usr;/;/usr/local")
  # The GPU machine has no MPI; the rehearsal must not find this machine's.
  [ -n "$REHEARSAL" ] && args+=(-DPLINTH_MPI=OFF)
  cmake "${args[@]}" && cp "$BUILD/CMakeCache.txt" "$LOGS/"
}

# rehearse-quick builds the library and the tool alone, not the test suite.
step_build() {
  local target=()
  [ "$PHASE" = rehearse-quick ] && target=(--target plinth_cli)
  cmake --build "$BUILD" -j "$JOBS" "${target[@]}"
}

# rehearse: every package came from the kit. CMake's cache says where each was found, and
# the compiler's dependency lists and the link lines say which files were used.
step_isolation() {
  local var value bad=0 used
  for var in fmt_DIR nlohmann_json_DIR Catch2_DIR ZLIB_INCLUDE_DIR ZLIB_LIBRARY_RELEASE \
             PLINTH_OPENBLAS_LIBRARY PLINTH_CBLAS_INCLUDE_DIR PNG_LIBRARY_RELEASE \
             PNG_PNG_INCLUDE_DIR PLINTH_TURBOJPEG_LIBRARY PLINTH_TURBOJPEG_INCLUDE_DIR ONNX_DIR \
             Protobuf_INCLUDE_DIR Protobuf_LIBRARY_RELEASE; do
    value=$(grep -E "^$var:" "$BUILD/CMakeCache.txt" | cut -d= -f2-)
    case $value in
      "$PREFIX"/*) echo "kit:   $var=$value" ;;
      *) echo "NOT IN THE KIT: $var=$value"; bad=1 ;;
    esac
  done
  for var in PLINTH_CUDNN_LIBRARY PLINTH_CUBLAS_LIBRARY; do
    value=$(grep -E "^$var:" "$BUILD/CMakeCache.txt" | cut -d= -f2-)
    case $value in
      "$BUILD"/fake-venv/*) echo "venv:  $var=$value" ;;
      *) echo "NOT FROM THE WHEEL FOLDER: $var=$value"; bad=1 ;;
    esac
  done
  [[ $(grep -E "^PLINTH_CUDNN_LIBRARY:" "$BUILD/CMakeCache.txt") == *libcudnn.so.9 ]] \
    || { echo "cuDNN was not linked as the versioned libcudnn.so.9"; bad=1; }
  # Paths that start with these folders (the kit's own copies only contain them).
  local headers='fmt|nlohmann|catch2|zlib\.h|zconf\.h|x86_64-linux-gnu/openblas|png|libpng'
  headers+='|turbojpeg|onnx|google'
  local libraries='libfmt|libz\.|openblas|libgfortran|libpng|libturbojpeg|libonnx|libprotobuf'
  used=$(ninja -C "$BUILD" -t deps | grep -E \
    "^\\s*/usr/include/($headers)" | sort -u)
  [ -z "$used" ] && echo "no object read a system header of these packages (ninja -t deps)" \
    || { echo "system headers used:"; echo "$used"; bad=1; }
  used=$(grep -oE "(^|[ :,])/usr/lib/[^ :]*($libraries)[^ :]*" "$BUILD/build.ninja" | sort -u)
  [ -z "$used" ] && echo "no link line names a system copy of these libraries (build.ninja)" \
    || { echo "system libraries linked:"; echo "$used"; bad=1; }
  return $bad
}

# The shared libraries the binaries load: the kit's, the C/C++ runtime, the CUDA runtime and
# driver, cuDNN and cuBLAS (from the venv's folders when it has them), and nothing else.
step_libs() {
  local bin line name path verdict bad=0
  for bin in "$BUILD/plinth" "$BUILD/tests/plinth_tests"; do
    if [ ! -e "$bin" ]; then
      [ "$PHASE" = rehearse-quick ] && continue  # builds no test suite
      echo "$bin: missing"; bad=1; continue
    fi
    echo "== $bin"
    readelf -d "$bin" | grep -E "NEEDED|RPATH|RUNPATH"
    while IFS= read -r line; do
      line=${line#"${line%%[![:space:]]*}"}
      name=${line%% *} path=""
      [[ $line == *" => "* ]] && { path=${line#* => }; path=${path% (*}; }
      [[ $name == /* ]] && path=$name
      case ${name##*/} in
        libcudnn*) verdict=cuDNN; [[ $path == "${CUDNN_ROOT:-/}"* ]] || verdict=WRONG ;;
        libcublas*) verdict=cuBLAS; [[ $path == "${CUBLAS_ROOT:-/}"* ]] || verdict=WRONG ;;
        libcudart.so* | libcuda.so*) verdict=CUDA ;;
        linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | \
          libstdc++.so* | libgcc_s.so* | libgomp.so*) verdict=runtime ;;
        *) verdict=OUTSIDE; [[ $path == "$PREFIX"/* ]] && verdict=kit ;;
      esac
      [ "$path" = "not found" ] && verdict=MISSING
      [[ $verdict == WRONG || $verdict == OUTSIDE || $verdict == MISSING ]] && bad=1
      printf '  %-8s %-28s %s\n' "$verdict" "$name" "$path"
    done < <(ldd "$bin")
  done
  return $bad
}

# ---- checks --------------------------------------------------------------------------

step_info() { "$BUILD/plinth" info; }

step_cuda_tests() {
  local rc skipped
  "$BUILD/tests/plinth_tests" "[cuda]" -r xml -o "$LOGS/cuda_tests.xml"
  rc=$?
  skipped=$(grep -c "SKIPPED:" "$LOGS/cuda_tests.xml")
  grep -E "<OverallResults(Cases)? " "$LOGS/cuda_tests.xml" | tail -2
  ((skipped > 0)) && { echo "$skipped [cuda] tests skipped: no usable GPU?"; return 1; }
  return $rc
}

step_tests() { ctest --test-dir "$BUILD" -j "$JOBS" --timeout 300 --output-on-failure; }

step_memcheck() {
  [ -n "$SANITIZER" ] || { skip "no compute-sanitizer (PATH, by nvcc, /usr/local/cuda)"; return; }
  [ "$DEVICE" = cuda ] || { skip "no GPU in the $PHASE phase"; return; }
  # 20 steps and a 2,000-image test set: every kernel and cuDNN call of a training run.
  "$SANITIZER" --tool memcheck --error-exitcode 9 --print-limit 20 "$BUILD/plinth" train \
    --device cuda --classes 0,1 --epochs 1 --max-steps 20 --quiet
}

# One epoch of the seed CNN (batch 32) with --data, then eval of its checkpoint through
# PLINTH_DATA alone; the rehearsal's epoch has two classes' images (338 steps).
step_train() {
  local short=()
  [ -n "$REHEARSAL" ] && short=(--classes 0,1 --threads 2)
  "$BUILD/plinth" train --device "$DEVICE" --epochs 1 --data "$PLINTH_DATA" \
    --history "$LOGS/train.json" --save "$BUILD/one-epoch.safetensors" "${short[@]}"
}

# A 1-rank NCCL job equals the plain GPU run: the same weights, so the same evaluation (one
# GPU cannot host two NCCL ranks). It needs MPI and NCCL in the build and mpirun, which the
# bare GPU machine lacks unless they travel with the kit: then it says so and skips.
step_nccl() {
  [ "$DEVICE" = cuda ] || { skip "no GPU in the $PHASE phase"; return; }
  "$BUILD/plinth" info | grep -q "^nccl: built" || { skip "this build has no NCCL (no MPI here)"; return; }
  command -v mpirun >/dev/null || { skip "no mpirun on this machine"; return; }
  local run=(train --device cuda --deterministic --epochs 1 --max-steps 100 --seed 5
             --data "$PLINTH_DATA") plain nccl
  "$BUILD/plinth" "${run[@]}" --quiet --save "$BUILD/plain.safetensors" || return 1
  mpirun --allow-run-as-root --oversubscribe -np 1 "$BUILD/plinth" "${run[@]}" \
    --save "$BUILD/nccl.safetensors" 2>&1 | tee "$LOGS/nccl-train.log" || return 1
  grep -q "gradients over NCCL" "$LOGS/nccl-train.log" || { echo "NCCL was not used"; return 1; }
  plain=$("$BUILD/plinth" eval --device cuda --checkpoint "$BUILD/plain.safetensors" --json \
    --data "$PLINTH_DATA") || return 1
  nccl=$("$BUILD/plinth" eval --device cuda --checkpoint "$BUILD/nccl.safetensors" --json \
    --data "$PLINTH_DATA") || return 1
  echo "plain: $plain"
  echo "nccl:  $nccl"
  [ "$plain" = "$nccl" ] || { echo "the 1-rank NCCL run differs from the plain GPU run"; return 1; }
}

step_eval() {
  local short=()
  [ -n "$REHEARSAL" ] && short=(--classes 0,1 --threads 2)
  "$BUILD/plinth" eval --device "$DEVICE" --checkpoint "$BUILD/one-epoch.safetensors" --json \
    "${short[@]}" | tee "$LOGS/eval.json"
}

step_bench() {
  local args=(--batch-sizes 64,1024 --layers --gemm 4096)
  [ -n "$REHEARSAL" ] && args=(--batch-sizes 64 --repeats 2 --window 0.3 --layers --gemm 512
                               --threads 2)
  "$BUILD/plinth" bench --device "$DEVICE" "${args[@]}" --json "$LOGS/bench.json"
}

# A training set streamed from the host a batch at a time (--data-memory 0): it trains, and on
# a GPU the tool says once that such steps run eagerly (a CUDA graph cannot replay the host's
# copies), and --verbose's report says that no step was replayed.
step_streamed() {
  local out rc threads=()
  [ -n "$REHEARSAL" ] && threads=(--threads 2)
  out=$("$BUILD/plinth" train --device "$DEVICE" --data-memory 0 --epochs 1 --max-steps 40 \
    --classes 0,1 --verbose "${threads[@]}" 2>&1)
  rc=$?
  echo "$out"
  ((rc == 0)) || return $rc
  grep -q "more than --data-memory 0: streamed" <<<"$out" \
    || { echo "no line saying that the training set streams"; return 1; }
  [ "$DEVICE" = cuda ] || return 0
  [ "$(grep -c "steps run eagerly, not from CUDA graphs" <<<"$out")" = 1 ] \
    || { echo "not said exactly once that streamed steps run eagerly"; return 1; }
  grep -q "training steps: 40 eager (the data set streams from host memory" <<<"$out" \
    || { echo "the verbose report does not say that all 40 steps ran eagerly, and why"; return 1; }
}

# plinth's training step run eagerly, against bench's default of replaying it from a CUDA
# graph: what the graph saves at a small and a large batch.
step_bench_eager() {
  [ "$DEVICE" = cuda ] || { skip "CUDA graphs are a GPU feature"; return; }
  "$BUILD/plinth" bench --device cuda --modes train --batch-sizes 64,1024 --repeats 3 \
    --window 0.5 --cuda-graph off --json "$LOGS/bench_eager.json"
}

# Training throughput with TF32 and BF16 tensor cores at large batches, with the per-layer
# table (time and launches) at batch 1024.
step_bench_precision() {
  local p rc=0
  [ "$DEVICE" = cuda ] || { skip "TF32 and BF16 are GPU settings"; return; }
  for p in tf32 bf16; do
    "$BUILD/plinth" bench --device cuda --modes train --batch-sizes 1024,4096 --repeats 3 \
      --window 0.5 --precision "$p" --layers --json "$LOGS/bench_$p.json" || rc=1
  done
  return $rc
}

# PyTorch's seed CNN on the same device: eager, and on a GPU its step in a CUDA graph.
step_pytorch() {
  local args=(--batch-sizes 64,1024)
  [ -n "$REHEARSAL" ] && args=(--batch-sizes 64 --repeats 2 --steps 5 --warmup 2 --threads 2)
  torch_python -c "import torch" 2>/dev/null || { skip "no torch for $PY"; return; }
  torch_python "$ROOT/benchmarks/pytorch_seed_cnn.py" --mode bench --device "$DEVICE" "${args[@]}" \
    --json "$LOGS/pytorch.json"
}

# The seed CNN's recipe for 10 epochs, test accuracy after each (time to 90%); the
# rehearsal's is one epoch on two classes.
step_accuracy() { accuracy_run "$LOGS/accuracy.json"; }
step_accuracy_tf32() {
  [ "$DEVICE" = cuda ] || { skip "TF32 is a GPU setting"; return; }
  accuracy_run "$LOGS/accuracy_tf32.json" --precision tf32
}
step_accuracy_bf16() {
  [ "$DEVICE" = cuda ] || { skip "BF16 is a GPU setting"; return; }
  accuracy_run "$LOGS/accuracy_bf16.json" --precision bf16
}
accuracy_run() {
  local history=$1 length=(--epochs 10)
  shift
  [ -n "$REHEARSAL" ] && length=(--epochs 1 --classes 0,1 --threads 2)
  "$BUILD/plinth" train --device "$DEVICE" --model models/seed_cnn.json --batch-size 32 \
    --test-each-epoch --history "$history" --verbose "${length[@]}" "$@"
}

# The large-batch recipe (models/seed_cnn_large_batch.json: batch 1024, one-cycle) for 10
# epochs, test accuracy after each, in fp32, TF32 and BF16; the rehearsal's is one epoch
# on two classes.
step_large_batch() { large_batch_run "$LOGS/large_batch.json"; }
step_large_batch_tf32() {
  [ "$DEVICE" = cuda ] || { skip "TF32 is a GPU setting"; return; }
  large_batch_run "$LOGS/large_batch_tf32.json" --precision tf32
}
step_large_batch_bf16() {
  [ "$DEVICE" = cuda ] || { skip "BF16 is a GPU setting"; return; }
  large_batch_run "$LOGS/large_batch_bf16.json" --precision bf16
}
large_batch_run() {
  local history=$1 length=()
  shift
  [ -n "$REHEARSAL" ] && length=(--epochs 1 --classes 0,1 --threads 2)
  "$BUILD/plinth" train --device "$DEVICE" --model models/seed_cnn_large_batch.json \
    --test-each-epoch --history "$history" --verbose "${length[@]}" "$@"
}

# compare.py: both engines in alternating rounds at batch 64 and 1024, and time to 90%.
step_compare() {
  local args=(--batch-sizes 64,1024 --rounds 3 --tta --layers-batch 64)
  [ -n "$REHEARSAL" ] && args=(--batch-sizes 64 --rounds 1 --repeats 1 --threads 2)
  "$PY" -c "import torch" 2>/dev/null || { skip "no torch for $PY"; return; }
  "$PY" "$ROOT/benchmarks/compare.py" --device "$DEVICE" --python "$PY" --plinth "$BUILD/plinth" \
    --out "$LOGS/compare" "${args[@]}"
}
