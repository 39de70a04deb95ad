#!/usr/bin/env bash
# Configures, builds (warnings are errors) and runs every test: Criterion unit tests,
# multi-rank integration tests and script tests, through ctest.
# usage: tests/run_all.sh [BUILD_DIR]   (default build-tests; GRUREC_SANITIZE=1 for ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tests}
san=${GRUREC_SANITIZE:-0}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRUREC_WERROR=ON \
      -DGRUREC_SANITIZE=$([ "$san" = 1 ] && echo ON || echo OFF) >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
