#!/usr/bin/env bash
# Configures, builds (warnings are errors) and runs every test: Criterion unit tests,
# multi-rank integration tests and script tests, through ctest; the last line says which
# tests were skipped and why (launch/install-deps.sh --tests installs what they need).
# The GPU code runs in every test run: on this machine's GPU when it has one (the nvcc
# build), else on grurec's host emulation of CUDA (-DGRUREC_CUDA_EMU=ON, a test build:
# docs/cuda.md). Where nvcc is found but no GPU, the nvcc build is compiled as well
# (BUILD_DIR/nvcc), so that it keeps compiling. GRUREC_TEST_CUDA=gpu|emu forces a choice.
# usage: tests/run_all.sh [BUILD_DIR]   (default build-tests; GRUREC_SANITIZE=1 for ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tests}
san=${GRUREC_SANITIZE:-0}
cuda=${GRUREC_TEST_CUDA:-}
if [ -z "$cuda" ]; then
    cuda=emu
    if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then cuda=gpu; fi
fi
# Open MPI keeps its allocations until exit: leak reports would drown real errors. The
# tests that start no MPI turn leak checks back on (tests/CMakeLists.txt).
[ "$san" = 1 ] && export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Only our own status lines (e.g. whether the CUDA backend is built) from configuring.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRUREC_WERROR=ON \
      -DGRUREC_SANITIZE=$([ "$san" = 1 ] && echo ON || echo OFF) \
      -DGRUREC_CUDA_EMU=$([ "$cuda" = emu ] && echo ON || echo OFF) | { grep '^-- grurec:' || true; }
cmake --build "$build" -j"$(nproc)"
nvcc=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
if [ "$cuda" = emu ] && [ -n "$nvcc" ] && [ "$san" != 1 ]; then  # (nvcc takes no -fsanitize)
    cmake -S . -B "$build/nvcc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRUREC_WERROR=ON -DGRUREC_CUDA=ON \
          -DBUILD_TESTING=OFF | { grep '^-- grurec:' || true; }
    cmake --build "$build/nvcc" -j"$(nproc)" --target grurec
fi
# ctest's output as usual (its summary lists the skipped tests), then one line naming each
# skipped test and its reason (tests/skipped.sh); the exit status is ctest's.
ctest_out=$build/ctest-output.txt
rc=0
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" | tee "$ctest_out" || rc=$?
tests/skipped.sh "$build" "$ctest_out"
exit "$rc"
