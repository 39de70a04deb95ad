#!/usr/bin/env bash
# The GPU check, in one command and at most 8 minutes: on a machine with an NVIDIA GPU,
# build grurec with CUDA into build-gpu/, run the GPU tests, check CPU/GPU parity, and
# measure training events/s (and GFLOP/s against a measured cuBLAS peak) of four setups
# and evaluation speed on synthetic data of Diginetica's size (~910k train events, 43k
# items, 187k sessions). Results: ${OUT:-bench/results}/gpu_check.txt (a table) and
# gpu_check.json (the same), each run's log in $OUT/logs/.
#
# usage: bash bench/gpu_check.sh [--dry-run] [--bundle DIR | --build DIR]
#   --dry-run  no GPU needed: every phase runs on grurec's CUDA emulation (a build with
#              -DGRUREC_CUDA_EMU=ON into build-gpu-emu/, no nvcc needed; docs/cuda.md) with
#              small synthetic data and tiny step counts: the flow, the GPU tests and the
#              CPU/GPU parity checks run for real, the speed figures mean nothing
#   --bundle DIR  use the prebuilt programs of bench/gpu_bundle.sh (unpacked into DIR)
#              instead of building: for GPU machines without HDF5, Open MPI, OpenBLAS or
#              Criterion (the lent ones); the tests are then test_cuda_backend and
#              device_test.sh, run directly (the bundle is built without MPI; with
#              --dry-run it runs on the CPU: the bundle has no emulation)
#   --build DIR  use this already built tree instead of building (e.g. tests/run_all.sh's,
#              emulated where there is no GPU); the tests are run directly, as with --bundle
# Environment: OUT (results folder), GPU_CHECK_BUDGET_S (no phase starts after it; 420),
#   GPU_CHECK_LIMIT_S (every run ends by then; 455), GPU_CHECK_TESTS (ctest -R regex;
#   'cuda|nccl|device'; with --bundle or --build it picks among test_cuda_backend and
#   device_test), GPU_CHECK_CUDA_ARCH (default: the card's compute capability).
# Exit status: 0 when everything ran (a missed target is a line in the results, not an
# error), 1 when the build, a build dependency or the GPU is missing, 2 on a bad argument.
# It installs nothing (the GPU machines have no network): a missing dependency is named.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dry=0
bundle=
prebuilt=
while [ $# -gt 0 ]; do
    arg=$1; shift
    case $arg in
        --dry-run) dry=1 ;;
        --bundle) [ $# -gt 0 ] || { echo "gpu_check: --bundle needs a folder" >&2; exit 2; }
                  bundle=$(cd "$1" 2>/dev/null && pwd) || { echo "gpu_check: no folder $1" >&2; exit 2; }; shift ;;
        --build) [ $# -gt 0 ] || { echo "gpu_check: --build needs a folder" >&2; exit 2; }
                 prebuilt=$(cd "$1" 2>/dev/null && pwd) || { echo "gpu_check: no folder $1" >&2; exit 2; }; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check: unknown argument '$arg' (--dry-run, --bundle, --build, --help)" >&2; exit 2 ;;
    esac
done
out=${OUT:-bench/results}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
# The dry run builds the emulated GPU (build-gpu-emu/), never over a real GPU build.
build=${bundle:-${prebuilt:-$here/build-gpu$([ $dry = 1 ] && echo -emu)}}
emu=0  # the dry run on the emulation (not from a bundle, which has none)
[ $dry = 1 ] && [ -z "$bundle" ] && emu=1
work=$build/gpu-check        # this call's runs (replaced every call)
datadir=$build/gpu-check-data  # the synthetic dataset (made once, kept)
budget=${GPU_CHECK_BUDGET_S:-420}
limit=${GPU_CHECK_LIMIT_S:-455}
test_regex=${GPU_CHECK_TESTS:-cuda|nccl|device}
SECONDS=0
mkdir -p "$build"
rm -rf "$work"
mkdir -p "$work" "$datadir"
: >"$work/info.tsv"; : >"$work/checks.tsv"; : >"$work/train.tsv"; : >"$work/eval.tsv"; : >"$work/phases.tsv"; : >"$work/counters.tsv"

info() { printf '%s\t%s\n' "$1" "$2" >>"$work/info.tsv"; }
check() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$work/checks.tsv"; echo "  check $1: $2${3:+ ($3)}"; }
row() {  # FILE FIELD...: one tab-separated line
    local f=$1; shift
    (IFS=$'\t'; printf '%s\n' "$*") >>"$f"
}
getinfo() { awk -F'\t' -v k="$1" '$1 == k {v = $2} END {print v}' "$work/info.tsv"; }
status="incomplete"
phase=""; phase_t0=0
end_phase() {  # [STATUS]
    if [ -n "$phase" ]; then
        printf '%s\t%d\t%s\n' "$phase" $((SECONDS - phase_t0)) "${1:-done}" >>"$work/phases.tsv"
        echo "   ($phase: $((SECONDS - phase_t0)) s)"
    fi
    phase=""
}
begin() {  # NAME [must]: 0 = run the phase, 1 = skip it (past the time budget, unless must)
    end_phase
    if [ "$SECONDS" -gt "$budget" ] && [ "${2:-}" != must ]; then
        echo "== [${SECONDS} s] SKIPPED $1: past the ${budget} s budget"
        printf '%s\t\tskipped: past the %s s budget at %s s\n' "$1" "$budget" "$SECONDS" >>"$work/phases.tsv"
        return 1
    fi
    phase=$1; phase_t0=$SECONDS
    echo "== [${SECONDS} s] $1"
}
fail() {  # a missing build, dependency or GPU: say so, write the results, exit 1
    echo "gpu_check: FAILED: $*" >&2
    status="FAILED: $*"
    exit 1
}

# --- results: gpu_check.txt and gpu_check.json, written at exit whatever happened ---
tsv_json() {  # KEY... < TSV: a JSON array of objects (numbers stay numbers, empty = null)
    awk -F'\t' -v keys="$*" '
        function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return "\"" s "\"" }
        function v(s) { if (s == "") return "null"; if (s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) return s; return q(s) }
        BEGIN { n = split(keys, k, " "); printf "[" }
        { printf "%s\n    {", (NR > 1 ? "," : ""); for (i = 1; i <= n; i++) printf "%s%s: %s", (i > 1 ? ", " : ""), q(k[i]), v($i); printf "}" }
        END { printf "%s]", (NR ? "\n  " : "") }'
}
write_results() {
    local txt=$out/gpu_check.txt json=$out/gpu_check.json
    {
        echo "grurec GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'), $([ $dry = 1 ] && echo "DRY RUN: $([ $emu = 1 ] && echo "grurec's CUDA emulation, small data" || echo '--device cpu'), tiny step counts; no speed figure means anything" || echo 'GPU run'))"
        echo "status: $status"
        awk -F'\t' '{printf "%-12s %s\n", $1 ":", $2}' "$work/info.tsv"
        echo
        echo "checks (result: pass | FAIL | warn | skip | info)"
        awk -F'\t' '{printf "  %-28s %-5s %s\n", $1, $2, $3}' "$work/checks.tsv"
        if [ -s "$work/train.tsv" ]; then
        echo
        echo "training speed: events/s = next-item targets per second, over the epochs after the first (the first"
        echo "holds the warm-up; 'incl. 1st' over all); minibatch/s = steps per second; GFLOP/s in matrix products"
        echo "(2mnk each) and their share of the measured sgemm peak (TF32 peak for the --tf32 run, the CPU's for cpu)"
        printf '  %-22s %-6s %7s %6s %10s %10s %11s %9s %7s %9s %-4s %s\n' setup device steps epochs "events/s" "incl. 1st" "minibatch/s" "GFLOP/s" "% peak" target met status
        awk -F'\t' '{printf "  %-22s %-6s %7s %6s %10s %10s %11s %9s %7s %9s %-4s %s\n", $1, $2, $3, $4, $7, $8, $9, $10, $11, $12, $13, $14 ($15 != "" ? ": " $15 : "")}' "$work/train.tsv"
        fi
        if [ -s "$work/counters.tsv" ]; then
        echo
        echo "the CUDA backend's work per training step (grurec's counters; host us = the host's own time in the"
        echo "step's calls, waits excluded), beside the run's events/s"
        printf '  %-22s %10s %6s %6s %8s %6s %9s %10s %9s %10s %6s %8s %5s %9s %9s %8s\n' setup "events/s" steps graphs kernels cublas "copies>d" "bytes>d" "copies>h" "bytes>h" waits "host us" nccl "pageable" "g.kernels" "g.nodes"
        awk -F'\t' '{printf "  %-22s %10s %6s %6s %8s %6s %9s %10s %9s %10s %6s %8s %5s %9s %9s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16}' "$work/counters.tsv"
        fi
        if [ -s "$work/eval.tsv" ]; then
        echo
        echo "evaluation speed: predictions (events ranked among all items) per second; 'in-process' is the"
        echo "evaluation inside grurec train (its metrics.jsonl eval line), 'command' the wall clock of grurec eval"
        echo "(start-up, data and model loading included)"
        printf '  %-34s %-6s %11s %9s %13s %10s %9s %s\n' what device predictions seconds "predictions/s" recall@20 mrr@20 note
        awk -F'\t' '{printf "  %-34s %-6s %11s %9s %13s %10s %9s %s\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$work/eval.tsv"
        fi
        echo
        echo "phases (seconds)"
        awk -F'\t' '{printf "  %-24s %5s %s\n", $1, $2, ($3 == "done" ? "" : $3)}' "$work/phases.tsv"
        echo "  total                    ${SECONDS}"
    } >"$txt"
    {
        printf '{\n  "dry_run": %s,\n  "status": ' "$([ $dry = 1 ] && echo true || echo false)"
        printf '%s\t\n' "$status" | awk -F'\t' '{gsub(/\\/, "\\\\", $1); gsub(/"/, "\\\"", $1); printf "\"%s\"", $1}'
        printf ',\n  "total_seconds": %d,\n  "info": {' "$SECONDS"
        awk -F'\t' '{gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "%s\n    \"%s\": \"%s\"", (NR > 1 ? "," : ""), $1, $2} END {if (NR) printf "\n  "}' "$work/info.tsv"
        printf '},\n  "checks": '
        tsv_json check result detail <"$work/checks.tsv"
        printf ',\n  "train": '
        tsv_json setup device steps epochs events seconds events_per_s events_per_s_incl_first minibatches_per_s gflops pct_of_peak target_events_per_s target_met status note <"$work/train.tsv"
        printf ',\n  "device_counters_per_step": '
        tsv_json setup events_per_s steps graph_launches kernels blas_calls copies_h2d bytes_h2d copies_d2h bytes_d2h host_waits host_us nccl_calls pageable_h2d graph_kernel_nodes graph_nodes <"$work/counters.tsv"
        printf ',\n  "eval": '
        tsv_json what device predictions seconds predictions_per_s recall_at_20 mrr_at_20 note <"$work/eval.tsv"
        printf ',\n  "phases": '
        tsv_json phase seconds status <"$work/phases.tsv"
        printf '\n}\n'
    } >"$json"
}
on_exit() {
    local rc=$?
    set +e
    end_phase "$([ $rc = 0 ] && echo "done" || echo "failed (exit status $rc)")"
    [ "$status" = incomplete ] && status=$([ $rc = 0 ] && echo "done" || echo "stopped with exit status $rc in phase '$phase'")
    write_results
    echo "== [${SECONDS} s] results: $out/gpu_check.txt, $out/gpu_check.json (logs in $out/logs/)"
    [ -f "$out/gpu_check.txt" ] && cat "$out/gpu_check.txt"
    exit $rc
}
trap on_exit EXIT

info mode "$([ $dry = 1 ] && echo "dry run ($([ $emu = 1 ] && echo "--device cuda on grurec's CUDA emulation" || echo '--device cpu'))" || echo 'gpu')"
info commit "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(n=$(git -C "$here" status --porcelain 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo " + $n uncommitted changes")"
info host "$(nproc) cores, $(uname -sr)"

# --- 1. the GPU: the driver (nvidia-smi), then the CUDA runtime (cudaGetDeviceCount) ------
begin gpu must
card=""; cc=""
if command -v nvidia-smi >/dev/null; then
    smi=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1) || {
        echo "$smi"; [ $dry = 1 ] || fail "nvidia-smi failed: $(tail -1 <<<"$smi")"; smi=""; }
    if [ -n "$smi" ]; then
        echo "$smi"
        card=$(sed -n 2p <<<"$smi" | cut -d, -f1)
        info card "$(sed -n 2p <<<"$smi" | sed 's/, */, /g')  ($(nvidia-smi -L 2>/dev/null | wc -l) GPU(s))"
        cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
    fi
elif [ $dry = 1 ]; then
    echo "dry run: no nvidia-smi here; no GPU needed"
    info card "none (dry run)"
else
    fail "nvidia-smi not found: no NVIDIA driver on this machine (bash bench/gpu_check.sh --dry-run tests the flow without a GPU)"
fi
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
cuda=ON
if [ -z "$nvcc" ]; then
    [ $dry = 1 ] || fail "nvcc not found (not on PATH nor in /usr/local/cuda/bin): the CUDA toolkit is missing"
    cuda=OFF; echo "dry run: nvcc not found: no GPU probe (the emulation needs no nvcc)"
fi
# A probe of the CUDA runtime and the card's measured peak: cuBLAS SGEMM 8192^3 in FP32 and
# in TF32 (best of 5 after a warm-up), the reference for the runs' GFLOP/s.
peak_fp32=""; peak_tf32=""
if [ $cuda = ON ]; then
    cat >"$work/gpu_peak.cu" <<'EOF'
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8192, count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        fprintf(stderr, "cudaGetDeviceCount: %s\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 3;
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    int khz = 0;
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
    printf("device 0 of %d: %s, sm_%d%d, %d SMs, %.0f MHz, %.1f GiB\n", count, p.name, p.major, p.minor,
           p.multiProcessorCount, khz / 1e3, p.totalGlobalMem / 1073741824.0);
    size_t nn = (size_t)n * n;
    float *h = (float *)malloc(nn * sizeof(float)), *a, *b, *c;
    for (size_t i = 0; i < nn; i++) h[i] = (float)(i % 7) * 0.1f - 0.3f;
    if (cudaMalloc(&a, nn * 4) || cudaMalloc(&b, nn * 4) || cudaMalloc(&c, nn * 4)) { fprintf(stderr, "cudaMalloc failed\n"); return 3; }
    cudaMemcpy(a, h, nn * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(b, h, nn * 4, cudaMemcpyHostToDevice);
    cublasHandle_t hd;
    if (cublasCreate(&hd) != CUBLAS_STATUS_SUCCESS) { fprintf(stderr, "cublasCreate failed\n"); return 3; }
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    const float one = 1, zero = 0;
    for (int mode = 0; mode < 2; mode++) {
        cublasSetMathMode(hd, mode ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        float best = 1e30f;
        for (int r = 0; r < 6; r++) {
            cudaEventRecord(t0);
            cublasSgemm(hd, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n);
            cudaEventRecord(t1);
            cudaEventSynchronize(t1);
            float ms;
            cudaEventElapsedTime(&ms, t0, t1);
            if (r > 0 && ms < best) best = ms;
        }
        if (cudaGetLastError() != cudaSuccess) { fprintf(stderr, "sgemm failed\n"); return 3; }
        printf("sgemm %d^3 %s: %.0f GFLOP/s\n", n, mode ? "tf32" : "fp32", 2.0 * n * n * (double)n / (best * 1e-3) / 1e9);
    }
    return 0;
}
EOF
    if ! "$nvcc" -O2 -o "$work/gpu-peak" "$work/gpu_peak.cu" -lcublas >"$out/logs/gpu_peak_build.log" 2>&1; then
        [ $dry = 1 ] || fail "nvcc could not build a 40-line cuBLAS program (logs/gpu_peak_build.log): is the CUDA toolkit complete?"
        echo "dry run: nvcc could not build the GPU probe (logs/gpu_peak_build.log)"
    fi
fi
if [ $dry = 0 ]; then
    probe=$("$work/gpu-peak" 8192 2>&1) || fail "no usable GPU: $(tail -1 <<<"$probe")"
    echo "$probe"
    info device "$(sed -n 1p <<<"$probe")"
    peak_fp32=$(awk '/fp32/ {print $(NF-1)}' <<<"$probe"); peak_tf32=$(awk '/tf32/ {print $(NF-1)}' <<<"$probe")
    info gpu_peak "cuBLAS SGEMM 8192^3 measured: FP32 $peak_fp32 GFLOP/s, TF32 $peak_tf32 GFLOP/s"
    case $card in  # datasheet figures (boost clock; TF32 dense, i.e. half the 'with sparsity' figure)
        *"H100 NVL"*) nominal="FP32 60 TFLOP/s, TF32 418 (H100 NVL datasheet)" ;;
        *"H100 PCIe"*) nominal="FP32 51 TFLOP/s, TF32 378 (H100 PCIe datasheet)" ;;
        *H100*) nominal="FP32 67 TFLOP/s, TF32 495 (H100 SXM datasheet)" ;;
        *"H200 NVL"*) nominal="FP32 60 TFLOP/s, TF32 418 (H200 NVL datasheet)" ;;
        *H200*) nominal="FP32 67 TFLOP/s, TF32 495 (H200 SXM datasheet)" ;;
        *) nominal="" ;;
    esac
    [ -n "$nominal" ] && info gpu_nominal "$nominal"
    case $card in *H100*) ;; *) info targets "the targets are for an H100; this card is ${card:-unknown}" ;; esac
else
    [ -x "$work/gpu-peak" ] && echo "dry run: the GPU probe compiled (not run)"
    info gpu_peak "not measured (dry run); % peak is of the CPU's 1-thread sgemm"
fi

# --- 2. build -------------------------------------------------------------------------
begin build must
if [ -n "$prebuilt" ]; then
    for b in grurec data-prep/grurec-prep data-prep/grurec-synth tests/test_cuda_backend bench/grurec-sgemm-peak; do
        [ -x "$build/$b" ] || fail "the build $build has no $b"
    done
    check build pass "prebuilt: $("$build/grurec" --version)"
elif [ -n "$bundle" ]; then
    # Prebuilt: the bundle's libraries first, then CUDA's; NCCL from the toolkit or, failing
    # that, from the Python environment's nvidia-nccl wheel.
    libs=$bundle/lib
    [ -n "${nvcc:-}" ] && cudadir=$(cd "$(dirname "$nvcc")/.." && pwd)
    for d in "${cudadir:-/usr/local/cuda}/lib64" "${cudadir:-/usr/local/cuda}/lib" /usr/local/cuda/lib64; do
        [ -d "$d" ] && libs=$libs:$d
    done
    if ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2' && ! ls "${cudadir:-/usr/local/cuda}"/lib*/libnccl.so.2 >/dev/null 2>&1; then
        ncl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
        [ -n "$ncl" ] && libs=$libs:$ncl
    fi
    export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    for b in grurec data-prep/grurec-prep data-prep/grurec-synth tests/test_cuda_backend bench/grurec-sgemm-peak; do
        [ -x "$build/$b" ] || fail "the bundle $bundle has no $b (make it with bench/gpu_bundle.sh)"
    done
    if ! v=$("$build/grurec" --version 2>&1); then
        ldd "$build/grurec" | grep "not found" >&2 || true
        check build FAIL "the bundle's grurec does not start: $v"; fail "the bundle's grurec does not start: $v"
    fi
    check build pass "prebuilt bundle: $v, $(sed -n 2p "$build/VERSION" 2>/dev/null | cut -c1-12)"
else
missing=()
for t in cmake make cc pkg-config mpicc timeout; do command -v $t >/dev/null || missing+=("$t (command)"); done
if command -v pkg-config >/dev/null; then
    for m in hdf5:libhdf5-dev zlib:zlib1g-dev libdeflate:libdeflate-dev openblas:libopenblas-dev criterion:libcriterion-dev; do
        pkg-config --exists "${m%%:*}" || missing+=("${m%%:*} (pkg-config module; Debian: ${m#*:})")
    done
fi
if [ $cuda = ON ] && [ $emu = 0 ]; then
    cudadir=$(cd "$(dirname "$nvcc")/.." && pwd)
    nccl_h=$(ls "$cudadir"/include/nccl.h "$cudadir"/targets/*/include/nccl.h /usr/include/nccl.h \
                /usr/local/include/nccl.h /usr/include/*-linux-gnu/nccl.h 2>/dev/null | head -1 || true)
    [ -n "$nccl_h" ] || missing+=("NCCL (nccl.h not in $cudadir/include nor /usr/include)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do echo "gpu_check: missing build dependency: $m" >&2; check "dependency" FAIL "missing: $m"; done
    fail "missing build dependencies: ${missing[*]} (this script installs nothing; launch/install-deps.sh lists the packages)"
fi
# A build-gpu/ configured from another checkout path (e.g. carried over) is configured again.
if [ -f "$build/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$here" "$build/CMakeCache.txt"; then
    rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi
cfg=(-DCMAKE_BUILD_TYPE=Release "-DGRUREC_CUDA=$cuda")
arch=${GPU_CHECK_CUDA_ARCH:-$cc}
[ $cuda = ON ] && [ -n "$arch" ] && cfg+=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
[ $emu = 1 ] && cfg=(-DCMAKE_BUILD_TYPE=Release -DGRUREC_CUDA_EMU=ON) && arch=""
blog=$out/logs/build.log
echo "cmake -S . -B $(basename "$build") ${cfg[*]}"
cmake -S "$here" -B "$build" "${cfg[@]}" >"$blog" 2>&1 || {
    grep -E "Could NOT find|not found|No package|FATAL_ERROR|CMake Error|required" "$blog" | head -20 >&2 || true
    check build FAIL "cmake configure failed: logs/build.log"
    fail "cmake configure failed (a build dependency? see logs/build.log)"; }
cudaline=$(grep -m1 "grurec: CUDA backend" "$blog" || true)
echo "$cudaline"
if { [ $cuda = ON ] || [ $emu = 1 ]; } && ! grep -q "CUDA backend ON" <<<"$cudaline"; then
    check build FAIL "configured without CUDA: $cudaline"; fail "configured without CUDA: $cudaline"
fi
t_build=$SECONDS
rc=0
timeout -k 10 $((limit - SECONDS)) cmake --build "$build" -j"$(nproc)" >>"$blog" 2>&1 || rc=$?
if [ $rc != 0 ]; then
    grep -E "error|Error" "$blog" | head -30 >&2 || true; tail -15 "$blog" >&2
    [ $rc = 124 ] && { check build FAIL "not built within the ${limit} s limit"; fail "the build did not finish within ${limit} s"; }
    check build FAIL "cmake --build failed: logs/build.log"; fail "the build failed (logs/build.log)"
fi
check build pass "$(basename "$build"), $([ $emu = 1 ] && echo "GRUREC_CUDA_EMU=ON" || echo "GRUREC_CUDA=$cuda")${arch:+, CMAKE_CUDA_ARCHITECTURES=$arch}, $((SECONDS - t_build)) s to compile$([ -n "$nvcc" ] && [ $emu = 0 ] && echo ", $("$nvcc" --version | grep -o 'release [0-9.]*')")"
fi
grurec=$build/grurec
[ -x "$grurec" ] || fail "the build made no $grurec"

cpu_peak_line=$("$build/bench/grurec-sgemm-peak" 2048 2>&1 || true)
peak_cpu=$(awk '/GFLOP/ {print $(NF-1)}' <<<"$cpu_peak_line")
info cpu_peak "$cpu_peak_line"

# The emulated GPU: the dry run's device (a build without it runs the dry run on the CPU).
gdev=cuda
[ $dry = 1 ] && ! "$grurec" --version | grep -q EMULATED && gdev=cpu
info device_used "$gdev$([ $dry = 1 ] && [ $gdev = cuda ] && echo " (grurec's CUDA emulation on the host CPU)")"

# --- 3. data: synthetic, Diginetica's size (made once, kept in the build folder); on the
# emulation (a CPU running every GPU thread) a small one ----------------------------------
begin data must
size=(--events 1040000 --items 44000) ds=$datadir/digi
[ $dry = 1 ] && [ $gdev = cuda ] && size=(--events 60000 --items 3000) ds=$datadir/small
if [ ! -f "$ds/meta.h5" ]; then
    "$build/data-prep/grurec-synth" "${size[@]}" --zipf 0.8 --mean-length 3.85 --days 32 --seed 7 \
        --out "$datadir/synth.tsv" 2>"$out/logs/data.log"
    "$build/data-prep/grurec-prep" --input "$datadir/synth.tsv" --test-days 2 --min-item-support 1 --shards 1 \
        --out "$ds" --force --quiet 2>>"$out/logs/data.log"
    rm -f "$datadir/synth.tsv"
fi
insp=$("$grurec" inspect "$ds")
dsize=$([ "${size[1]}" = 1040000 ] && echo "Diginetica size" || echo "small, for the emulation")
dsum=$(awk -v size="$dsize" '/items, time unit/ {for (i = 1; i < NF; i++) if ($(i+1) ~ /^items/) it = $i}
            $1 == "train" || $1 == "test" {s = s sprintf("%s %s events in %s sessions, ", $1, $4, $2)}
            END {printf "synthetic (grurec-synth, %s): %s%s items", size, s, it}' <<<"$insp")
echo "$dsum"
info data "$dsum"

# --- helpers for the runs ------------------------------------------------------------------------
epoch_stats() {  # METRICS.JSONL -> n events seconds e/s e/s_incl_first minibatches/s gflops loss
    awk 'function num(k) { return match($0, "\"" k "\": -?[0-9.e+-]+") ? substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 4) + 0 : 0 }
         /"type": "epoch"/ { n++; e = num("events"); s = num("seconds"); g = num("gflops"); st = num("steps")
                             if (n == 1) { e1 = e; s1 = s; g1 = g; st1 = st }
                             E += e; S += s; G += g * s; last = st; loss = num("loss") }
         END { if (!n || S <= 0) { print 0; exit }
               eall = E / S
               if (n >= 2 && S > s1) { es = (E - e1) / (S - s1); mb = (last - st1) / (S - s1); gf = (G - g1 * s1) / (S - s1) }
               else { es = eall; mb = last / S; gf = G / S }
               printf "%d %d %.3f %.0f %.0f %.1f %.1f %.6f\n", n, E, S, es, eall, mb, gf, loss }' "$1"
}
# train_run NAME DEVICE STEPS CAP_S TARGET THREADS EVAL(0|1) FLAGS...: one row of train.tsv.
# The cap is also at most a fair share of the time left among the speed runs still to come.
speed_runs_left=5
train_run() {
    local name=$1 dev=$2 steps=$3 cap=$4 target=$5 threads=$6 ev=$7; shift 7
    local run=$work/run-$name log=$out/logs/$name.log left=$((limit - SECONDS - 10)) rc=0 st note="" met=""
    local share=$left
    if [ -n "${speed_run:-}" ]; then
        share=$(((limit - 25 - SECONDS) / speed_runs_left)); speed_runs_left=$((speed_runs_left - 1))
    fi
    [ "$cap" -gt "$share" ] && cap=$share
    [ "$cap" -gt "$left" ] && cap=$left
    if [ "$cap" -lt 8 ]; then
        echo "  $name: SKIPPED: ${left} s left before the ${limit} s limit"
        row "$work/train.tsv" "$name" "$dev" "" "" "" "" "" "" "" "" "" "$target" "" skipped "no time left at ${SECONDS} s"
        return 0
    fi
    local evf=(--eval-every 0)
    [ "$ev" = 1 ] && evf=()
    rm -rf "$run"
    echo "  $name: grurec train --device $dev --max-steps $steps $* (cap ${cap} s)"
    timeout -s INT -k 20 "$cap" "$grurec" train --data "$ds" --out "$run" --device "$dev" --threads "$threads" \
        --epochs 1000 --max-steps "$steps" --log-every 5 "${evf[@]}" "$@" >"$log" 2>&1 || rc=$?
    [ -f "$run/metrics.jsonl" ] && cp "$run/metrics.jsonl" "$out/logs/$name.metrics.jsonl"
    if grep -q "no usable GPU" "$log"; then
        fail "grurec: $(grep -m1 -o 'no usable GPU.*' "$log")"
    fi
    if [ "$steps" = 1 ]; then  # a parity probe: its loss is what counts, not its speed
        [ $rc = 0 ] || echo "  $name: FAILED with exit status $rc (logs/$name.log)"
        return 0
    fi
    case $rc in
        0) st=ok ;;
        75|124) st=capped; note="stopped at the ${cap} s cap: completed epochs only" ;;
        *) st=FAILED; note="exit status $rc: $(grep -v '^epoch' "$log" | tail -1 | tr '\t' ' ')" ;;
    esac
    local n=0 E S es eall mb gf loss pct=""
    [ -f "$run/metrics.jsonl" ] && read -r n E S es eall mb gf loss < <(epoch_stats "$run/metrics.jsonl")
    if [ "${n:-0}" = 0 ]; then
        E=""; S=""; es=""; eall=""; mb=""; gf=""; loss=""
        local pl
        pl=$(grep '"type": "progress"' "$run/metrics.jsonl" 2>/dev/null | tail -1 || true)
        if [ -n "$pl" ]; then es=$(sed -E 's/.*"events_per_s": ([0-9.]+).*/\1/' <<<"$pl"); note="$note; no epoch completed: events/s from the last progress line"; fi
        [ "$st" = ok ] && st=FAILED
        n=""
    fi
    local pk=$peak_fp32
    [ "$dev" = cpu ] && pk=$peak_cpu
    case " $* " in *" --tf32 "*) [ "$dev" = cuda ] && pk=$peak_tf32 ;; esac
    [ -n "$gf" ] && [ -n "$pk" ] && pct=$(awk -v g="$gf" -v p="$pk" 'BEGIN {printf "%.1f", 100 * g / p}')
    if [ -n "$target" ] && [ -n "$es" ]; then
        if [ $dry = 1 ]; then met="n/a"
        else met=$(awk -v e="$es" -v t="$target" 'BEGIN {print ((e >= t) ? "yes" : "NO")}'); fi
    fi
    local last_steps
    last_steps=$(grep '"type": "epoch"' "$run/metrics.jsonl" 2>/dev/null | tail -1 | sed -E 's/.*"steps": ([0-9]+).*/\1/' || true)
    row "$work/train.tsv" "$name" "$dev" "$last_steps" "$n" "$E" "$S" "$es" "$eall" "$mb" "$gf" "$pct" "$target" "$met" "$st" "$note"
    # The CUDA backend's work per step (metrics.jsonl's device_counters, written at the run's end).
    grep '"type": "device_counters"' "$run/metrics.jsonl" 2>/dev/null | tail -1 | awk -v n="$name" -v e="${es:-}" '
        function f(k) { return match($0, "\"" k "\": [0-9.e+-]+") ? substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 4) : "" }
        { s = f("steps"); if (s > 0) printf "%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.0f\t%.1f\t%.0f\t%.2f\t%.1f\t%.2f\t%.2f\t%.1f\t%.1f\n", n, e, s,
              f("graph_launches") / s, f("kernels") / s, f("blas_calls") / s, f("copies_h2d") / s, f("bytes_h2d") / s,
              f("copies_d2h") / s, f("bytes_d2h") / s, f("host_waits") / s, f("host_us") / s,
              f("nccl_calls") / s, f("pageable_h2d") / s, f("graph_kernel_nodes") / s, f("graph_nodes") / s }' >>"$work/counters.tsv" || true
    printf '  %s: %s, %s events/s (incl. 1st epoch %s), %s minibatch/s, %s GFLOP/s, loss %s\n' "$name" "$st" "${es:-?}" "${eall:-?}" "${mb:-?}" "${gf:-?}" "${loss:-?}"
    [ -f "$run/model.h5" ] && rm -f "$run"/ckpt-*.h5  # disk: the model is what eval needs
    [ "$st" != FAILED ]
}
loss_of() { awk '/"type": "epoch"/ {l = $0} END {if (match(l, /"loss": [0-9.e+-]+/)) print substr(l, RSTART + 8, RLENGTH - 8)}' "$work/run-$1/metrics.jsonl" 2>/dev/null || true; }
rel_diff() { awk -v a="$1" -v b="$2" 'BEGIN {d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; printf "%.3g", (m > 0 ? d / m : d)}'; }
# eval_cmd WHAT DEVICE RUN: times grurec eval --json; one row of eval.tsv; the JSON in $work/WHAT.json
eval_cmd() {
    local what=$1 dev=$2 run=$3 t0 t1 rc=0
    local left=$((limit - SECONDS - 10))
    if [ "$left" -lt 8 ]; then row "$work/eval.tsv" "$what" "$dev" "" "" "" "" "" "skipped: no time left"; return 1; fi
    t0=$(date +%s.%N)
    timeout -k 10 "$left" "$grurec" eval --data "$ds" --model "$run" --device "$dev" --json >"$work/$what.json" 2>"$out/logs/$what.log" || rc=$?
    t1=$(date +%s.%N)
    cat "$work/$what.json" >>"$out/logs/$what.log"
    grep -q "no usable GPU" "$out/logs/$what.log" && fail "grurec eval: $(grep -m1 -o 'no usable GPU.*' "$out/logs/$what.log")"
    if [ $rc != 0 ]; then row "$work/eval.tsv" "$what" "$dev" "" "" "" "" "" "FAILED: exit status $rc (logs/$what.log)"; return 1; fi
    awk -v w="$what" -v d="$dev" -v t0="$t0" -v t1="$t1" '{
        p = match($0, /"predictions": [0-9]+/) ? substr($0, RSTART + 15, RLENGTH - 15) : 0
        r = match($0, /"recall@20": [0-9.]+/) ? substr($0, RSTART + 13, RLENGTH - 13) : ""
        m = match($0, /"mrr@20": [0-9.]+/) ? substr($0, RSTART + 10, RLENGTH - 10) : ""
        s = t1 - t0; printf "%s\t%s\t%d\t%.2f\t%.0f\t%s\t%s\tcommand (wall clock)\n", w, d, p, s, p / s, r, m }' "$work/$what.json" >>"$work/eval.tsv"
    tail -1 "$work/eval.tsv" | awk -F'\t' '{printf "  %s: %s predictions in %s s (%s/s), recall@20 %s\n", $1, $3, $4, $5, $6}'
}
# in-process evaluation time of a run trained without --eval-every 0 (its metrics.jsonl eval line)
eval_inproc() {
    local what=$1 dev=$2 f=$work/run-$3/metrics.jsonl
    local l
    l=$(grep '"type": "eval"' "$f" 2>/dev/null | tail -1 || true)
    [ -n "$l" ] || { row "$work/eval.tsv" "$what" "$dev" "" "" "" "" "" "no eval line in the run"; return 0; }
    awk -v w="$what" -v d="$dev" '{
        s = match($0, /"seconds": [0-9.]+/) ? substr($0, RSTART + 11, RLENGTH - 11) : 0
        p = match($0, /"predictions": [0-9]+/) ? substr($0, RSTART + 15, RLENGTH - 15) : 0
        r = match($0, /"recall@20": [0-9.]+/) ? substr($0, RSTART + 13, RLENGTH - 13) : ""
        m = match($0, /"mrr@20": [0-9.]+/) ? substr($0, RSTART + 10, RLENGTH - 10) : ""
        printf "%s\t%s\t%d\t%.3f\t%.0f\t%s\t%s\tin-process (grurec train, end of run)\n", w, d, p, s, (s > 0 ? p / s : 0), r, m }' <<<"$l" >>"$work/eval.tsv"
}

# The setups (DESIGN/README names; the flags are the issue's).
top1=(--loss top1 --final-act tanh --layers 100 --embedding onehot --batch-size 50 --dropout-hidden 0.5 --learning-rate 0.01 --momentum 0 --n-sample 0)
xe100=(--loss cross-entropy --embedding shared --layers 100 --batch-size 128 --n-sample 2048 --sample-alpha 0.5 --logq 1 --dropout-hidden 0.4 --learning-rate 0.2 --momentum 0.2)
bprmax=(--loss bpr-max --final-act elu-1 --embedding shared --layers 512 --batch-size 128 --dropout-embed 0.5 --dropout-hidden 0.3 --learning-rate 0.05 --momentum 0.15 --n-sample 2048 --sample-alpha 0.3 --bpreg 0.9)
# The official GRU4Rec paramfiles/rees46_xe_shared_best.py (softmax = linear final activation).
xe512=(--loss cross-entropy --embedding shared --layers 512 --batch-size 240 --dropout-embed 0.45 --dropout-hidden 0 --learning-rate 0.065 --momentum 0 --n-sample 2048 --sample-alpha 0.5 --logq 1)
# Steps: one epoch is ~722k events (5.7k steps at batch 128, 14.5k at 50, 3k at 240); each run
# takes ~15-25 s at the target speed (and its own cap: a slower GPU gives its completed epochs).
if [ $dry = 1 ]; then
    s_top1=120; s_xe100=60; s_bpr=8; s_xe512=6; s_cpu=30; cap=120
else
    s_top1=40000; s_xe100=50000; s_bpr=25000; s_xe512=15000; s_cpu=300; cap=50
fi

# --- 4. tests -----------------------------------------------------------------------------
if [ -n "$bundle$prebuilt" ] && begin tests; then  # no ctest in a bundle: the GPU tests directly
    if [[ test_cuda_backend =~ $test_regex ]]; then
        rc=0
        timeout -k 10 150 "$build/tests/test_cuda_backend" --jobs 1 --verbose >"$out/logs/test_cuda_backend.log" 2>&1 || rc=$?
        skips=$(grep -c '^SKIP: ' "$out/logs/test_cuda_backend.log" || true)
        check "test test_cuda_backend" "$([ $rc = 0 ] && { [ "$skips" -gt 0 ] && echo skip || echo pass; } || echo FAIL)" \
            "$(grep -E 'Synthesis' "$out/logs/test_cuda_backend.log" | tail -1 | tr -s ' ')${skips:+, $skips skipped}"
    fi
    if [[ device_test =~ $test_regex ]]; then
        rc=0
        timeout -k 10 150 bash tests/device_test.sh "$build" >"$out/logs/device_test.log" 2>&1 || rc=$?
        check "test device_test" "$(case $rc in 0) echo pass ;; 77) echo skip ;; *) echo FAIL ;; esac)" \
            "$(grep '^SKIP: ' "$out/logs/device_test.log" | paste -sd';')$(tail -1 "$out/logs/device_test.log")"
    fi
elif begin tests; then
    listed=$(cd "$build" && ctest -N -R "$test_regex" 2>/dev/null | sed -nE 's/^ *Test +#[0-9]+: (.*)$/\1/p' | tr '\n' ' ' || true)
    echo "ctest -R '$test_regex': ${listed:-no tests match}"
    left=$((limit - SECONDS - 120)); [ $left -gt 150 ] && left=150  # leave time for the runs
    if [ -z "$listed" ]; then
        check tests warn "no test matches '$test_regex' (is the build CUDA-enabled?)"
    elif [ $left -lt 15 ]; then
        check tests skip "no time left before the ${limit} s limit"
    else
        rc=0
        (cd "$build" && timeout -k 10 "$left" ctest -R "$test_regex" --output-on-failure) >"$out/logs/ctest.log" 2>&1 || rc=$?
        summary=$(grep -E "tests passed|tests failed" "$out/logs/ctest.log" | tail -1 || true)
        [ $rc = 124 ] && summary="timed out after ${left} s; $summary"
        check tests "$([ $rc = 0 ] && echo pass || echo FAIL)" "${summary:-ctest exit status $rc}"
        sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) [. ]*(\**[A-Za-z][A-Za-z ]*[A-Za-z]).* ([0-9.]+ sec).*/\1\t\2\t\3/p' "$out/logs/ctest.log" |
            while IFS=$'\t' read -r t r s; do
                skip=$(awk -v t="Testing: $t" '$0 ~ t "$" {f = 1} f && /SKIP: |no usable GPU here/ {sub(/.*SKIP: /, "SKIP: "); print; exit} f && /<end of output>/ {exit}' \
                       "$build/Testing/Temporary/LastTest.log" 2>/dev/null || true)
                check "test $t" "$(case $r in Passed) [ -n "$skip" ] && echo skip || echo pass ;; *) echo FAIL ;; esac)" "$r, $s${skip:+, $skip}"
            done
        cp "$build/Testing/Temporary/LastTest.log" "$out/logs/ctest_LastTest.log" 2>/dev/null || true
    fi
fi

# --- 5. parity: CPU and GPU on the same steps (same negatives, same dropout) ----------------
if begin parity; then
    # The first step's loss differs only by the products' rounding; after s_par steps the
    # differences have compounded (Adagrad), so the bound is looser. The CPU run is also the
    # CPU reference line of the speed table (1 thread).
    train_run parity1_cpu cpu 1 "$cap" "" 1 0 "${xe100[@]}" || true
    train_run parity1_gpu "$gdev" 1 "$cap" "" 1 0 "${xe100[@]}" || true
    a=$(loss_of parity1_cpu); b=$(loss_of parity1_gpu)
    if [ -n "$a" ] && [ -n "$b" ]; then
        d=$(rel_diff "$a" "$b")
        check "parity loss, step 1" "$(awk -v d="$d" 'BEGIN {print ((d <= 1e-4) ? "pass" : "FAIL")}')" "cpu $a, $gdev $b, relative difference $d (bound 1e-4)"
    else check "parity loss, step 1" FAIL "a run failed (logs/parity1_*.log)"; fi
    train_run cpu_ref_xe100_b128 cpu "$s_cpu" "$cap" "" 1 0 "${xe100[@]}" || true
    train_run parity_gpu "$gdev" "$s_cpu" "$cap" "" 1 1 "${xe100[@]}" || true
    a=$(loss_of cpu_ref_xe100_b128); b=$(loss_of parity_gpu)
    if [ -n "$a" ] && [ -n "$b" ]; then
        d=$(rel_diff "$a" "$b")
        check "parity loss, $s_cpu steps" "$(awk -v d="$d" 'BEGIN {print ((d <= 1e-3) ? "pass" : "warn")}')" "cpu $a, $gdev $b, relative difference $d (bound 1e-3)"
    else check "parity loss, $s_cpu steps" FAIL "a run failed (logs/cpu_ref_xe100_b128.log, logs/parity_gpu.log)"; fi
    # The same model (trained on the GPU; checkpoints and models have one layout) evaluated on both.
    if [ -f "$work/run-parity_gpu/model.h5" ]; then
        eval_inproc "xe100 model, train's own eval" "$gdev" parity_gpu
        eval_cmd eval_xe100_gpu "$gdev" "$work/run-parity_gpu" || true
        eval_cmd eval_xe100_cpu cpu "$work/run-parity_gpu" || true
        if [ -s "$work/eval_xe100_gpu.json" ] && [ -s "$work/eval_xe100_cpu.json" ]; then
            d=$(cat "$work/eval_xe100_gpu.json" "$work/eval_xe100_cpu.json" | awk '
                { gsub(/[{}"]/, ""); n = split($0, kv, ", "); for (i = 1; i <= n; i++) { split(kv[i], p, ": "); v[NR, p[1]] = p[2]; keys[p[1]] } }
                END { m = 0; for (k in keys) { d = v[1, k] - v[2, k]; if (d < 0) d = -d; if (k == "predictions" && d > 0) { print "predictions differ"; exit } if (d > m) m = d } print m }')
            check "parity eval, same model" "$(awk -v d="$d" 'BEGIN {print ((d ~ /^[0-9.e+-]+$/ && d <= 1e-3) ? "pass" : "FAIL")}')" \
                "a $gdev-trained model on $gdev and on cpu: largest metric difference $d (bound 1e-3)"
        fi
    fi
fi

# --- 6. training speed --------------------------------------------------------------------
speed_run=1
if begin "train xe100_b128"; then
    train_run xe100_b128_n2048 "$gdev" "$s_xe100" "$cap" 320000 1 0 "${xe100[@]}" || true
fi
if begin "train bprmax512_b128"; then
    train_run bprmax512_b128_n2048 "$gdev" "$s_bpr" "$cap" 160000 1 0 "${bprmax[@]}" || true
fi
if begin "train top1_paper"; then
    train_run top1_paper_b50 "$gdev" "$s_top1" "$cap" "" 1 0 "${top1[@]}" || true
fi
if begin "train xe512_b240"; then
    train_run xe512_b240_rees46 "$gdev" "$s_xe512" "$cap" "" 1 0 "${xe512[@]}" || true
fi
if begin "train bprmax512 tf32"; then
    train_run bprmax512_b128_tf32 "$gdev" "$s_bpr" "$cap" 160000 1 0 "${bprmax[@]}" --tf32 || true
fi

# --- 7. evaluation speed of the larger model --------------------------------------------------
if begin eval; then
    if [ -f "$work/run-bprmax512_b128_n2048/model.h5" ] || ls "$work"/run-bprmax512_b128_n2048/ckpt-*.h5 >/dev/null 2>&1; then
        eval_cmd eval_bprmax512_gpu "$gdev" "$work/run-bprmax512_b128_n2048" || true
    else
        row "$work/eval.tsv" eval_bprmax512_gpu "$gdev" "" "" "" "" "" "skipped: no bprmax512 model"
    fi
fi
end_phase
status="done$(awk -F'\t' '$2 == "FAIL" {n++} END {if (n) printf " (%d check(s) FAILED)", n}' "$work/checks.tsv")$(awk -F'\t' '$13 == "NO" {n++} END {if (n) printf " (%d target(s) missed)", n}' "$work/train.tsv")"
exit 0
