#!/usr/bin/env bash
# comm_nccl_init's refusals, each ending the job with one clear line (docs/nccl.md):
#  - no GPU (CUDA_VISIBLE_DEVICES= hides them, on a GPU machine and on the emulation):
#    "cudaGetDevice failed (comm_nccl_init): ...", exit non-zero, no hang;
#  - on the emulation, which can stand for another NCCL library (GRUREC_EMU_NCCL_VERSION):
#    a runtime older than the headers, and ranks with different versions.
# usage: comm_nccl_setup_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" comm-nccl-setup
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
t=$build/tests/test_comm_nccl
[ -x "$t" ] || skip_all "no $t (a build without CUDA or MPI)"
mpi() { timeout 120 "$here/launch/grurec-mpirun" -np 2 "$@" >"$work/out" 2>&1; rc=$?; }

CUDA_VISIBLE_DEVICES= mpi "$t" init 20
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank [01]: comm_nccl.c:[0-9]*: cudaGetDevice failed (comm_nccl_init): " "$work/out"' \
    "no GPU: comm_nccl_init stops with the CUDA error (exit $rc): $(grep -m1 'failed' "$work/out")"

if "$grurec" --version | grep -q EMULATED; then
    GRUREC_EMU_NCCL_VERSION=1900 mpi "$t" init 20
    check '[ $rc -ne 0 ] && grep -q "NCCL library loaded at run time is version 1.9.0, older than the NCCL 2.28.9 headers" "$work/out"' \
        "an older NCCL at run time is refused (exit $rc)"
    mpi sh -c 'if [ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then export GRUREC_EMU_NCCL_VERSION=22700; fi; exec "$0" init 20' "$t"
    check '[ $rc -ne 0 ] && grep -q "rank 1: NCCL library version code differs from rank 0" "$work/out"' \
        "ranks with different NCCL versions are refused (exit $rc): $(grep -m1 'differs' "$work/out")"
else
    skip_part "NCCL version checks: they need the emulation to stand for another NCCL library"
fi
finish
