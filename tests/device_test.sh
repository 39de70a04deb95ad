#!/usr/bin/env bash
# --device cpu|cuda|auto end to end, on a GPU or on grurec's CUDA emulation (grurec
# --version says EMULATED; docs/cuda.md):
#  - a bad value is a usage error (exit 2);
#  - without a usable GPU (a build without CUDA, or CUDA_VISIBLE_DEVICES= hiding them, on
#    the emulation too): auto falls back to the CPU with one line saying why, cuda fails
#    with that line (exit 1) and writes nothing;
#  - with one: cuda prints its device line and trains; a checkpoint resumes on the GPU with
#    the uninterrupted run's bits, and on the other device (GPU -> CPU, CPU -> GPU): on the
#    emulation with the uninterrupted run's bits too, on a GPU it completes; the model
#    evaluates the same on both devices (emulation: bitwise; GPU: within 1e-3);
#  - fewer GPUs than ranks: cuda refuses the rank without one, auto stops (give --device);
#    2 ranks on 2 GPUs (NCCL) keep equal replicas (--check-every 1);
#  - on the emulation, an out-of-memory GPU (GRUREC_EMU_GPU_MEMORY): exit 1 and one line
#    naming the GPU and the bytes wanted.
# usage: device_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" device
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
params() { "$grurec" inspect "$1" --hash | tail -1; }
nums() { grep -oE '[-0-9.e+]+[,}]' "$1" | tr -d ',}' | paste -sd' '; }  # the numbers of a --json line
close() {  # A B TOL: the numbers of A and B pairwise within TOL (and as many)
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { n = split(a, x, " "); if (n == 0 || n != split(b, y, " ")) exit 1
        for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < -t || d > t) exit 1 } }'
}
emulated=0
"$grurec" --version | grep -q EMULATED && emulated=1

"$synth" --events 6000 --items 150 --days 10 --seed 5 --out "$work/clicks.tsv" 2>/dev/null
"$prep" --input "$work/clicks.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
small="--layers 16 --batch-size 8 --n-sample 16 --epochs 1 --log-every 0"

"$grurec" train --data "$work/ds" --out "$work/bad" --device gpu $small 2>"$work/err0"
check '[ $? -eq 2 ]' "--device gpu is a usage error"
check 'grep -q "device is cpu, cuda or auto" "$work/err0"' "the usage error names the choices"

# ---- no usable GPU ----
(export CUDA_VISIBLE_DEVICES=
"$grurec" train --data "$work/ds" --out "$work/nogpu" --device cuda $small >"$work/out1" 2>"$work/err1"; echo $? >"$work/rc1"
"$grurec" train --data "$work/ds" --out "$work/auto" --device auto $small >"$work/out2" 2>"$work/err2"; echo $? >"$work/rc2"
"$grurec" eval --data "$work/ds" --model "$work/auto" --device auto --json >"$work/eval" 2>"$work/err3"; echo $? >"$work/rc3")
msg=$(head -1 "$work/err1")
check '[ "$(cat "$work/rc1")" -eq 1 ] && grep -q "device cuda: no usable GPU" "$work/err1"' \
    "--device cuda without a GPU exits 1 saying so: $msg"
check '[ $(wc -l <"$work/err1") -eq 1 ]' "--device cuda without a GPU: one line"
check '[ ! -e "$work/nogpu/model.h5" ]' "--device cuda without a GPU writes no model"
check '[ "$(cat "$work/rc2")" -eq 0 ]' "--device auto falls back and trains"
check '[ $(grep -c "device auto: no usable GPU" "$work/err2") -eq 1 ]' "the fallback is said in one line"
check 'grep -q "running on the CPU" "$work/err2"' "the fallback line says where it runs"
check '[ "$(cat "$work/rc3")" -eq 0 ] && grep -q "recall@20" "$work/eval"' "eval --device auto falls back"
"$grurec" eval --data "$work/ds" --model "$work/auto" --device cpu --json >"$work/eval2" 2>"$work/err4"
check '[ $? -eq 0 ] && [ ! -s "$work/err4" ]' "eval --device cpu says nothing about GPUs"
check 'cmp -s "$work/eval" "$work/eval2"' "auto (fallen back) and cpu evaluate the same"

# ---- a GPU ----
"$grurec" train --data "$work/ds" --out "$work/cuda" --device cuda $small --stop-at-step 20 >"$work/out5" 2>"$work/err5"
rc=$?
if grep -q "no usable GPU" "$work/err5"; then
    skip_part "training and evaluating on a GPU: $(grep -o 'no usable GPU.*' "$work/err5" | head -1)"
    finish
    exit
fi
check '[ $rc -eq 75 ]' "cuda: --stop-at-step checkpoints and exits 75"
msg=$(head -1 "$work/err5")
check 'grep -q "^grurec: device: GPU 0 (" "$work/err5"' "cuda: the device line names the GPU: $msg"
if [ $emulated = 1 ]; then
    check 'grep -q "device: GPU 0 (EMULATED .*): a test build" "$work/err5"' "the emulation says it is one"
fi
"$grurec" train --data "$work/ds" --out "$work/cuda" --device cuda $small >"$work/out6" 2>"$work/err6"
check '[ $? -eq 0 ] && grep -q "resuming from" "$work/err6"' "cuda: the checkpoint resumes on the GPU"

# Checkpoints across devices: stopped at step 150 of 2 epochs, resumed on each device.
F=(--layers 16 --batch-size 8 --n-sample 8 --epochs 2 --log-every 0 --eval-every 0 --dropout-hidden 0.2 --momentum 0.3)
for d in cpu cuda; do
    "$grurec" train --data "$work/ds" --out "$work/full_$d" --device $d "${F[@]}" >/dev/null 2>&1 || bad "$d: uninterrupted run"
done
for from in cpu cuda; do
    for to in cpu cuda; do
        run=$work/$from-$to
        "$grurec" train --data "$work/ds" --out "$run" --device $from "${F[@]}" --stop-at-step 150 >/dev/null 2>&1
        check '[ $? -eq 75 ]' "$from: stopped at step 150 with a checkpoint"
        "$grurec" train --data "$work/ds" --out "$run" --device $to "${F[@]}" >/dev/null 2>"$run.err"
        rc=$?
        check '[ $rc -eq 0 ] && grep -q "resuming from" "$run.err"' "a $from checkpoint resumes on $to: $(tail -1 "$run.err")"
        if [ $from = $to ] || [ $emulated = 1 ]; then  # (the emulated GPU has the CPU's bits here)
            check '[ "$(params "$run/model.h5")" = "$(params "$work/full_$to/model.h5")" ]' \
                "$from checkpoint resumed on $to: the uninterrupted $to run's parameters, bit for bit"
        fi
    done
done
[ $emulated = 0 ] ||
    check '[ "$(params "$work/full_cpu/model.h5")" = "$(params "$work/full_cuda/model.h5")" ]' "emulation: cuda = cpu, bit for bit"

# One GPU-trained model (batch + negatives 24 columns) evaluated on both devices.
"$grurec" eval --data "$work/ds" --model "$work/cuda" --device cpu --json >"$work/e_cpu"
check '[ $? -eq 0 ]' "a GPU-trained model evaluates on the CPU"
"$grurec" eval --data "$work/ds" --model "$work/cuda" --device cuda --json >"$work/e_gpu" 2>/dev/null
check '[ $? -eq 0 ]' "and on the GPU"
if [ $emulated = 1 ]; then
    check 'cmp -s "$work/e_cpu" "$work/e_gpu"' "emulation: CPU and GPU evaluation agree bit for bit"
else
    check 'close "$(nums "$work/e_cpu")" "$(nums "$work/e_gpu")" 1e-3 && [ "$(grep -o "\"predictions\": [0-9]*" "$work/e_cpu")" = "$(grep -o "\"predictions\": [0-9]*" "$work/e_gpu")" ]' \
        "CPU and GPU evaluation agree (1e-3)"
fi

# ---- ranks and GPUs ----
if with_mpi; then
    mpi() { "$here/launch/grurec-mpirun" -np 2 "$grurec" "$@"; }
    # One GPU for two ranks: cuda refuses rank 1, auto would put the ranks on two devices.
    CUDA_VISIBLE_DEVICES=0 mpi train --data "$work/ds" --out "$work/few" --device cuda $small >"$work/out7" 2>&1
    check '[ $? -ne 0 ] && grep -q "local rank 1 has no GPU of its own (1 on this node)" "$work/out7"' \
        "2 ranks, 1 GPU, --device cuda: rank 1 is refused"
    CUDA_VISIBLE_DEVICES=0 mpi train --data "$work/ds" --out "$work/few2" --device auto $small >"$work/out8" 2>&1
    check '[ $? -ne 0 ] && grep -q "device auto chose differently: give --device" "$work/out8"' \
        "2 ranks, 1 GPU, --device auto: stops, asking for --device"
    mpi train --data "$work/ds" --out "$work/nccl" --device cuda $small --check-every 1 --comm-timeout 60 >"$work/out9" 2>&1
    rc=$?
    msg=$(tail -1 "$work/out9")
    if grep -q "has no GPU of its own" "$work/out9"; then
        skip_part "2-GPU training: needs 2 GPUs ($(grep -o 'has no GPU of its own.*' "$work/out9" | head -1))"
    else
        check '[ $rc -eq 0 ] && grep -q "gradients summed by NCCL" "$work/out9"' "2 ranks on 2 GPUs (NCCL) keep equal replicas: $msg"
    fi
else
    skip_part "ranks and GPUs: grurec built without MPI"
fi

# ---- out of memory (the emulation can cap its memory) ----
if [ $emulated = 1 ]; then
    GRUREC_EMU_GPU_MEMORY=16K "$grurec" train --data "$work/ds" --out "$work/oom" --device cuda $small >/dev/null 2>"$work/err10"
    rc=$?
    check '[ $rc -eq 1 ]' "out of GPU memory: exit 1, no crash: $(tail -1 "$work/err10")"
    check 'grep -Eq "GPU 0 \(EMULATED [^)]*, 16.0 KiB\) is out of memory: [0-9]+ more bytes wanted, [0-9]+ bytes free of 16384" "$work/err10"' \
        "the out-of-memory line names the GPU and the bytes wanted"
    check '[ "$(grep -vc "^grurec: device:" "$work/err10")" -eq 1 ]' "in one line"
    check '[ ! -e "$work/oom/model.h5" ]' "and writes no model"
fi
finish
