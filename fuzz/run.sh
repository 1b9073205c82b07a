#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and fuzzes each in turn for a bounded time.
#   fuzz/run.sh [seconds] [target...]   default 60 s each, all targets (scripts/fuzz.sh runs this)
#   PLINTH_FUZZ_BUILD picks the build folder (default build-fuzz)
# Targets run one after another (each is single-threaded). Seeds come from
# fuzz/corpus/<target without fuzz_> and fuzz/regressions/<same>; new inputs go to a
# temporary folder, so the checked-in files stay as they are. A crashing input is saved as $build/<target>-crash-<sha1>; the
# run goes on with the other targets and exits non-zero at the end. The last line per
# target gives its time, executions and corpus size.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PLINTH_FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_idx fuzz_idx_dataset fuzz_model fuzz_checkpoint_meta
                                      fuzz_image fuzz_packed fuzz_cifar fuzz_cli_numbers fuzz_geometry)

cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  name=${target#fuzz_}
  dict=()
  [ -f "$root/fuzz/$name.dict" ] && dict=(-dict="$root/fuzz/$name.dict")
  regressions=()  # inputs that once broke the target: explored from, never written to
  [ -d "$root/fuzz/regressions/$name" ] && regressions=("$root/fuzz/regressions/$name")
  mkdir -p "$work/$name"
  echo "== $target: $seconds s"
  status=0
  "$build/$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    "${dict[@]}" -artifact_prefix="$build/$target-" -print_final_stats=1 \
    "$work/$name" "$root/fuzz/corpus/$name" "${regressions[@]}" >"$work/$name.log" 2>&1 || status=$?
  grep -v -e '^#' -e '^INFO:' -e '# Uses: ' -e '^MS: ' -e 'NEW_FUNC' "$work/$name.log" || true  # the news, not the progress
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
  corpus=$(ls "$work/$name" | wc -l)
  line="$target: ${seconds} s, ${execs:-?} executions, $corpus new corpus inputs"
  if [ $status -ne 0 ]; then line+=", FAILED (see $build/$target-*)"; failed+=("$target"); fi
  summary+=("$line")
done
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
