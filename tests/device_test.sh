#!/usr/bin/env bash
# --device cpu|cuda|auto end to end. Without a usable GPU (this build machine, CI):
# auto falls back to the CPU with one line saying why, cuda fails with that line (exit 1),
# a bad value is a usage error (exit 2). With a GPU: cuda trains, a checkpoint written on
# the GPU resumes there, and the model evaluates the same on the CPU and the GPU.
# usage: device_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" device

"$synth" --events 20000 --items 200 --days 10 --seed 5 --out "$work/clicks.tsv" 2>/dev/null
"$prep" --input "$work/clicks.tsv" --test-days 1 --shards 1 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
small="--layers 16 --batch-size 8 --n-sample 16 --epochs 1 --log-every 0"

"$grurec" train --data "$work/ds" --out "$work/bad" --device gpu $small 2>"$work/err0"
check '[ $? -eq 2 ]' "--device gpu is a usage error"
check 'grep -q "device is cpu, cuda or auto" "$work/err0"' "the usage error names the choices"

"$grurec" train --data "$work/ds" --out "$work/cuda" --device cuda $small --stop-at-step 20 >"$work/out1" 2>"$work/err1"
rc=$?
if grep -q "no usable GPU" "$work/err1"; then
    skip_part "training and evaluating on a GPU: $(grep -o 'no usable GPU.*' "$work/err1" | head -1)"
    check '[ $rc -eq 1 ]' "--device cuda without a GPU exits 1"
    check '[ $(wc -l <"$work/err1") -eq 1 ]' "--device cuda without a GPU: one line"
    check '[ ! -e "$work/cuda/model.h5" ]' "--device cuda without a GPU writes no model"
    "$grurec" train --data "$work/ds" --out "$work/auto" --device auto $small >"$work/out2" 2>"$work/err2"
    check '[ $? -eq 0 ]' "--device auto falls back and trains"
    check '[ $(grep -c "device auto: no usable GPU" "$work/err2") -eq 1 ]' "the fallback is said in one line"
    check 'grep -q "running on the CPU" "$work/err2"' "the fallback line says where it runs"
    "$grurec" eval --data "$work/ds" --model "$work/auto" --device auto --json >"$work/eval" 2>"$work/err3"
    check '[ $? -eq 0 ] && grep -q "recall@20" "$work/eval"' "eval --device auto falls back"
    "$grurec" eval --data "$work/ds" --model "$work/auto" --device cpu --json >"$work/eval2" 2>"$work/err4"
    check '[ $? -eq 0 ] && [ ! -s "$work/err4" ]' "eval --device cpu says nothing about GPUs"
    check 'cmp -s "$work/eval" "$work/eval2"' "auto (fallen back) and cpu evaluate the same"
else
    check '[ $rc -eq 75 ]' "cuda: --stop-at-step checkpoints and exits 75"
    "$grurec" train --data "$work/ds" --out "$work/cuda" --device cuda $small >"$work/out5" 2>"$work/err5"
    check '[ $? -eq 0 ]' "cuda: the checkpoint resumes on the GPU"
    check 'grep -q "resuming from" "$work/err5"' "cuda: it said it resumed"
    "$grurec" eval --data "$work/ds" --model "$work/cuda" --device cpu --json >"$work/e_cpu"
    check '[ $? -eq 0 ]' "a GPU-trained model evaluates on the CPU"
    "$grurec" eval --data "$work/ds" --model "$work/cuda" --device cuda --json >"$work/e_gpu"
    check '[ $? -eq 0 ]' "and on the GPU"
    check 'python3 - "$work/e_cpu" "$work/e_gpu" <<"PY"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["predictions"] == b["predictions"]
assert all(abs(a[k] - b[k]) <= 1e-3 for k in a), (a, b)
PY' "CPU and GPU evaluation agree (1e-3)"
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if [ "${gpus:-0}" -ge 2 ] && with_mpi; then  # NCCL: replicas equal every step on 2 GPUs
        GRUREC_OVERSUBSCRIBE=1 "$(dirname "$0")/../launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" \
            --out "$work/nccl" --device cuda $small --check-every 1 --comm-timeout 60 >"$work/out6" 2>"$work/err6"
        check '[ $? -eq 0 ]' "2 ranks on 2 GPUs (NCCL) keep equal replicas: $(tail -1 "$work/err6")"
    else
        skip_part "2-GPU training: needs 2 GPUs (${gpus:-0} GPU here$(with_mpi || echo ', grurec built without MPI'))"
    fi
fi
finish
