#!/usr/bin/env bash
# Packs into kit/ (git-ignored) everything a bare GPU machine lacks to build, test and run
# plinth, so that one device call with `carry: ["kit"]` needs no network there:
#   kit/prefix.tar.xz   Debian's fmt, nlohmann-json, zlib, OpenBLAS (OpenMP build, with the
#                       libgfortran and libquadmath it needs) and Catch2, fetched with
#                       apt-get download and unpacked with dpkg-deb -x (never into /), docs
#                       and static libraries left out; scripts/device_check.sh unpacks it
#                       and hands it to CMake as CMAKE_PREFIX_PATH
#   kit/fashion-mnist/  the data set's four IDX files
#   kit/MANIFEST.txt    date, commit, every package's version and every file's sha256
# Prints the size that will travel (the working tree plus kit/) and fails above 60 MiB:
# the device tool carries at most 64 MiB.
#   bash scripts/device_kit.sh   (PLINTH_KIT_DATA=DIR: the data set's folder, default
#                                 /usr/share/datasets/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
kit=kit
work=build-kit   # downloads and the staging prefix; ignored, and never carried
data=${PLINTH_KIT_DATA:-/usr/share/datasets/fashion-mnist}
limit_mib=60
# libgomp comes with g++ on the GPU machine; the C and C++ runtimes are the system's.
packages=(libfmt-dev libfmt9 nlohmann-json3-dev zlib1g-dev zlib1g libopenblas-openmp-dev
          libopenblas0-openmp libgfortran5 libquadmath0 catch2
          libpng-dev libpng16-16 libturbojpeg0-dev libturbojpeg0
          libonnx-dev libonnx1 libonnxifi libprotobuf-dev libprotobuf32 libprotobuf-lite32)
data_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
            t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

say() { echo "device_kit: $*"; }
die() { echo "device_kit: FAILED: $*" >&2; exit 1; }

# Its own needs, from Debian's packages: xz (apt-get, dpkg-deb and tar come with every
# Debian) and, unless PLINTH_KIT_DATA names a folder, the data set.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
needs=()
command -v xz >/dev/null || needs+=(xz-utils)
[ -n "${PLINTH_KIT_DATA:-}" ] || [ -s "$data/${data_files[0]}" ] || needs+=(dataset-fashion-mnist)
if ((${#needs[@]})); then
  say "installing ${needs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "${needs[@]}" >/dev/null 2>&1 \
    || { as_root apt-get update -qq && as_root apt-get install -y -qq "${needs[@]}" >/dev/null; } \
    || die "apt-get install ${needs[*]}"
fi
for f in "${data_files[@]}"; do
  [ -s "$data/$f" ] || die "$data/$f: not found (apt-get install dataset-fashion-mnist, or set" \
                           "PLINTH_KIT_DATA to a folder with the four Fashion-MNIST .gz files)"
done

# apt-get download needs no root, but it needs the package lists: fetch them once if absent.
rm -rf "$work" && mkdir -p "$work/debs" "$work/prefix"
download() {
  # As root, apt's sandbox user could not write into this folder: download as root.
  (cd "$work/debs" && apt-get -q -o APT::Sandbox::User=root download "${packages[@]}")
}
if ! download >"$work/download.log" 2>&1; then
  say "apt-get download failed ($(tail -1 "$work/download.log")); updating the package lists"
  as_root apt-get update -qq || die "apt-get update"
  download >"$work/download.log" 2>&1 || { cat "$work/download.log" >&2; die "apt-get download"; }
fi
say "downloaded ${#packages[@]} packages ($(du -sh "$work/debs" | cut -f1))"

for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/prefix"; done
# What plinth does not use: documentation, static libraries (58 MB of OpenBLAS alone; not
# Catch2's or ONNX's onnxifi loader, which their CMake packages name and check), the
# reference BLAS/LAPACK faces of OpenBLAS, pkg-config files and Debian's lintian notes.
(cd "$work/prefix" && rm -rf usr/share/doc usr/share/man usr/share/lintian usr/share/gcc \
  && find . \( -name '*.a' ! -name 'libCatch2*' ! -name 'libonnxifi_loader.a' \
       -o -name 'libblas.so*' -o -name 'liblapack.so*' \
       -o -name pkgconfig \) -prune -exec rm -rf {} +)
# Some packages still install into /lib (zlib1g) and link to it by absolute path (libz.so):
# merge /lib into /usr/lib as merged-/usr systems do, and make every link relative so that
# the prefix works wherever it is unpacked.
prefix=$work/prefix
if [ -d "$prefix/lib" ]; then cp -a "$prefix/lib/." "$prefix/usr/lib/" && rm -rf "$prefix/lib"; fi
find "$prefix" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfr "$prefix/usr${target#/usr}" "$link"
done
if broken=$(find -L "$work/prefix" -type l | grep .); then die "broken links: $broken"; fi

rm -rf "$kit" && mkdir -p "$kit/fashion-mnist"
XZ_OPT="-9 -T0" tar -C "$work/prefix" -cJf "$kit/prefix.tar.xz" usr
for f in "${data_files[@]}"; do cp -L "$data/$f" "$kit/fashion-mnist/"; done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git status --porcelain --untracked-files=no 2>/dev/null | grep -q . \
  && commit="$commit (with uncommitted changes)"
{
  echo "plinth device kit, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release \
    && echo "$NAME $VERSION_ID")"
  echo "commit $commit"
  echo "packages (unpacked into prefix.tar.xz):"
  for deb in "$work"/debs/*.deb; do
    echo "  $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)"
  done
  echo "data: $data"
  echo "sha256:"
  (cd "$kit" && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum | sed 's/^/  /')
} >"$kit/MANIFEST.txt"

mib() { echo $((($1 + 1048575) / 1048576)); }
kit_bytes=$(du -sb "$kit" | cut -f1)
tree_bytes=0
if git rev-parse --git-dir >/dev/null 2>&1; then
  # What the device tool sends besides carried folders: tracked and untracked-not-ignored.
  tree_bytes=$(git ls-files -z --cached --others --exclude-standard \
    | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
fi
total=$((kit_bytes + tree_bytes))
say "kit/ is $(mib "$kit_bytes") MiB (prefix.tar.xz $(mib "$(stat -c %s "$kit/prefix.tar.xz")")" \
    "MiB, fashion-mnist $(mib "$(du -sb "$kit/fashion-mnist" | cut -f1)") MiB); with the working" \
    "tree ($(mib "$tree_bytes") MiB) $(mib "$total") MiB will travel (limit $limit_mib MiB)"
[ "$total" -le $((limit_mib * 1048576)) ] \
  || die "$(mib "$total") MiB is over the $limit_mib MiB limit"
say "OK: carry kit/ with the tree (device tool: carry [\"kit\"])"
