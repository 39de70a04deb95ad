#!/usr/bin/env bash
# Configures, builds (warnings are errors) and runs every test: Criterion unit tests,
# multi-rank integration tests and script tests, through ctest.
# usage: tests/run_all.sh [BUILD_DIR]   (default build-tests; GRUREC_SANITIZE=1 for ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tests}
san=${GRUREC_SANITIZE:-0}
# Open MPI keeps its allocations until exit: leak reports would drown real errors. The
# tests that start no MPI turn leak checks back on (tests/CMakeLists.txt).
[ "$san" = 1 ] && export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Only our own status lines (e.g. whether the CUDA backend is built) from configuring.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRUREC_WERROR=ON \
      -DGRUREC_SANITIZE=$([ "$san" = 1 ] && echo ON || echo OFF) | { grep '^-- grurec:' || true; }
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
