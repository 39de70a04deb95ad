#!/usr/bin/env bash
# Prebuilt binaries for bench/gpu_check.sh on a GPU machine that lacks the build
# dependencies (the lent GPU machines have CUDA but no HDF5, Open MPI, OpenBLAS or
# Criterion, and no network). Builds here, without MPI (one process: all that one GPU
# needs) and for one CUDA architecture, then copies the programs, the GPU test and the
# shared libraries they need (not glibc's, not CUDA's: the GPU machine has its own) into
# one compressed file to carry:
#   bash bench/gpu_bundle.sh            -> .gpu-bundle.txz (git ignores it)
# and on the GPU machine (device tool: carry [".gpu-bundle.txz"]):
#   mkdir -p .gpu-bundle && tar xJf .gpu-bundle.txz -C .gpu-bundle && bash bench/gpu_check.sh --bundle .gpu-bundle
# usage: bench/gpu_bundle.sh [CUDA_ARCH (90: H100/H200)]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
arch=${1:-90}
build=$here/build-bundle
stage=$here/.gpu-bundle
out=$here/.gpu-bundle.txz
command -v nvcc >/dev/null || PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || { echo "gpu_bundle: nvcc not found (needs the CUDA toolkit)" >&2; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRUREC_MPI=OFF -DGRUREC_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="$arch" | grep '^-- grurec:'
cmake --build "$build" -j"$(nproc)" --target grurec grurec-prep grurec-synth grurec-sgemm-peak test_cuda_backend
rm -rf "$stage"
mkdir -p "$stage/data-prep" "$stage/tests" "$stage/bench" "$stage/lib"
cp "$build/grurec" "$stage/"
cp "$build/data-prep/grurec-prep" "$build/data-prep/grurec-synth" "$stage/data-prep/"
cp "$build/bench/grurec-sgemm-peak" "$stage/bench/"
cp "$build/tests/test_cuda_backend" "$stage/tests/"
# The shared libraries, but for the C library's (the GPU machine has a newer one) and
# CUDA's (cuBLAS and NCCL are hundreds of MB; the GPU machine has CUDA 13 too).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libresolv\.|libanl\.|libnsl\.|libutil\.|libcrypt\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcudart\.|libcublas|libcublasLt|libnccl)'
for bin in "$stage/grurec" "$stage/data-prep/"* "$stage/bench/"* "$stage/tests/"*; do
    ldd "$bin" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
    [[ $name =~ $skip ]] || cp -L "$path" "$stage/lib/$name"
done
strip "$stage/grurec" "$stage/data-prep/"* "$stage/bench/"* "$stage/tests/"* "$stage/lib/"* 2>/dev/null || true
"$stage/grurec" --version >"$stage/VERSION"
git -C "$here" rev-parse HEAD >>"$stage/VERSION" 2>/dev/null || true
tar cJf "$out" -C "$stage" .
echo "gpu_bundle: $(du -sh "$stage" | cut -f1) in $stage, $(du -h "$out" | cut -f1) in $out ($(ls "$stage/lib" | wc -l) libraries)"
