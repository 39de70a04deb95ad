#!/usr/bin/env bash
# Sharded item tables on GPU ranks (--item-tables sharded --device cuda; the shard and its
# Adagrad state in host memory, a step table on the device: docs/cuda.md) against the same
# run on CPU ranks, at 1, 2 and 4 ranks (oversubscribed), for each embedding mode (shared with
# momentum, logq and dropout; one-hot without samples; a separate embedding with two
# layers): what must agree is what tests/cuda_train_test.sh asks of the replicated mode:
#  - on grurec's CUDA emulation: the final parameters bit for bit (grurec inspect --hash of
#    model.h5) and every evaluation line of metrics.jsonl ("seconds" left out);
#  - on a GPU: Recall@20 and MRR@20 of the last evaluation within 0.02 of the CPU's.
# And a GPU run stopped and resumed from its checkpoint parts ends at the uninterrupted
# run's bits, one resharded from 2 to 3 ranks at the CPU ranks' (emulated), and the
# start-up line names the host's transport (the rows' fetch and return; the dense
# gradients are summed by NCCL). Skips without a usable GPU (real or
# emulated); a part that needs more GPUs than the machine has is skipped. About a minute
# on 2 cores (emulated).
# usage: cuda_sharded_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" cuda-sharded-test
here=$(cd "$(dirname "$0")/.." && pwd)
with_mpi || skip_all "this grurec runs no ranks (built without MPI)"
export GRUREC_OVERSUBSCRIBE=1
emulated=0
"$grurec" --version | grep -q EMULATED && emulated=1

"$synth" --events 8000 --items 150 --days 10 --seed 7 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 2 --shards 4 --out "$work/ds" --quiet || exit 1
common=(--epochs 1 --eval-every 1 --log-every 0 --comm-timeout 120 --checkpoint-every 300 --item-tables sharded)
# run NAME P DEVICE FLAGS...: grurec train on P ranks into $work/NAME; exit status in $rc
run() {
    local name=$1 P=$2 dev=$3; shift 3
    "$here/launch/grurec-mpirun" -np "$P" "$grurec" train --data "$work/ds" --out "$work/$name" --device "$dev" \
        "${common[@]}" "$@" >/dev/null 2>>"$work/$name.err"
    rc=$?
}

# The first run says whether there is a GPU at all.
run probe 2 cuda --layers 8 --max-steps 2
if grep -q "no usable GPU" "$work/probe.err"; then
    skip_all "training on the GPU: $(grep -o 'no usable GPU.*' "$work/probe.err" | head -1)"
fi

declare -A cfg=(
    [shared]="--layers 16 --batch-size 8 --n-sample 16 --dropout-hidden 0.2 --momentum 0.3 --logq 1 --eval-batch 16"
    [onehot]="--embedding onehot --loss top1 --final-act tanh --layers 16 --batch-size 4 --n-sample 0 --eval-batch 64 --ties median"
    [separate]="--embedding 8 --layers 12,10 --batch-size 8 --n-sample 16 --momentum 0.2 --dropout-embed 0.1 --learning-rate 0.1 --eval-batch 24 --ties standard"
)
# The eval lines of RUN/metrics.jsonl without their seconds; Recall@20 and MRR@20 of the last.
evals() { grep '"type": "eval"' "$1/metrics.jsonl" | sed 's/"seconds": [0-9.]*, //'; }
metrics() { evals "$1" | tail -1 | grep -oE '"(recall|mrr)@20": [-0-9.e+]+' | awk '{print $2}' | paste -sd' '; }
close() {  # A B TOL: the numbers of A and B pairwise within TOL (and as many)
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { n = split(a, x, " "); if (n == 0 || n != split(b, y, " ")) exit 1
        for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < -t || d > t) exit 1 } }'
}
# GPU run directory GPU against CPU run directory CPU (WHAT names them): the same bits on
# the emulation (and, with EVALS, the same evaluation lines), metrics within 0.02 on a GPU.
gpu_matches_cpu() {
    local gpu=$1 cpu=$2 what=$3 with_evals=${4:-}
    if [ $emulated = 1 ]; then
        check '[ "$(hash_of "$gpu")" = "$(hash_of "$cpu")" ] && [ "$(hash_of "$cpu")" != none ]' \
            "$what: the emulated GPUs end at $(hash_of "$gpu"), the CPUs at $(hash_of "$cpu")"
        [ -z "$with_evals" ] ||
            check '[ "$(evals "$cpu" | grep -c predictions)" -ge 1 ] && [ "$(evals "$gpu")" = "$(evals "$cpu")" ]' \
                "$what: the emulated GPUs evaluate to $(evals "$gpu" | tail -1), the CPUs to $(evals "$cpu" | tail -1)"
    else
        check 'close "$(metrics "$cpu")" "$(metrics "$gpu")" 0.02' \
            "$what: Recall@20 / MRR@20 $(metrics "$gpu") on the GPUs, $(metrics "$cpu") on the CPUs (0.02)"
    fi
}

for c in shared onehot separate; do
    for P in 1 2 4; do  # (1: no sums; 2 and 4: the dense gradients summed by NCCL)
        for dev in cpu cuda; do
            rm -rf "$work/$c-$P-$dev" "$work/$c-$P-$dev.err"
            # shellcheck disable=SC2086
            run "$c-$P-$dev" $P $dev ${cfg[$c]}
            [ $rc -eq 0 ] || grep -q "no usable GPU" "$work/$c-$P-$dev.err" ||
                bad "$c, $P ranks, --device $dev: training failed (exit $rc): $(tail -2 "$work/$c-$P-$dev.err")"
        done
        cpu=$work/$c-$P-cpu gpu=$work/$c-$P-cuda
        if grep -q "no usable GPU" "$gpu.err"; then  # (a machine with fewer GPUs than ranks)
            skip_part "$c on $P ranks: $(grep -o 'no usable GPU.*' "$gpu.err" | head -1)"
            continue
        fi
        gpu_matches_cpu "$gpu" "$cpu" "$c, $P ranks" evals
    done
done

# The start-up line: sharded, over the host's comm (MPI or shared memory), not NCCL.
check 'grep -q "; item tables sharded (item i on rank i mod P, in host memory)" "$work/shared-2-cuda.err" && grep -q "\"transport\": \"\(mpi\|shared-memory\)\"" "$work/shared-2-cuda/metrics.jsonl"' \
    "the GPU run's start-up: $(grep -m1 'item tables' "$work/shared-2-cuda.err"); $(grep -o '"transport": "[a-z-]*"' "$work/shared-2-cuda/metrics.jsonl" | head -1)"

# Stopped at step 250 and resumed from its checkpoint (the parts: host data): the
# uninterrupted GPU run's bits.
rm -rf "$work/stop" "$work/stop.err"
# shellcheck disable=SC2086
run stop 2 cuda ${cfg[shared]} --stop-at-step 250
[ $rc -eq 75 ] || bad "no stop at step 250 (exit $rc): $(tail -2 "$work/stop.err")"
# shellcheck disable=SC2086
run stop 2 cuda ${cfg[shared]}
check '[ $rc -eq 0 ] && grep -q "resuming from .*ckpt-000000000250" "$work/stop.err" && [ "$(hash_of "$work/stop")" = "$(hash_of "$work/shared-2-cuda")" ]' \
    "stopped and resumed on the GPUs ends at $(hash_of "$work/stop"), uninterrupted at $(hash_of "$work/shared-2-cuda"): $(tail -1 "$work/stop.err")"

# Resharded: stopped on 2 GPU ranks at step 250 and resumed on 3 with --reshard (every rank
# reads its rows and their Adagrad state from the old host parts), against the same on CPU
# ranks.
for dev in cpu cuda; do
    rm -rf "$work/rs-$dev" "$work/rs-$dev.err"
    # shellcheck disable=SC2086
    run rs-$dev 2 $dev ${cfg[separate]} --stop-at-step 250
    [ $rc -eq 75 ] || bad "reshard, --device $dev: no stop at step 250 (exit $rc): $(tail -2 "$work/rs-$dev.err")"
    # shellcheck disable=SC2086
    run rs-$dev 3 $dev ${cfg[separate]} --reshard
    [ $rc -eq 0 ] && grep -q "resharding 2 ranks' checkpoint onto 3" "$work/rs-$dev.err" ||
        grep -q "no usable GPU" "$work/rs-$dev.err" ||
        bad "reshard 2 -> 3, --device $dev: exit $rc: $(tail -2 "$work/rs-$dev.err")"
done

# Warm-started from the CPU run's checkpoint (its parts: host data read by each rank for
# its own rows), on GPU ranks and on CPU ranks: the same bits.
for dev in cpu cuda; do
    rm -rf "$work/ws-$dev" "$work/ws-$dev.err"
    # shellcheck disable=SC2086
    run ws-$dev 2 $dev ${cfg[separate]} --warm-start "$work/rs-cpu"
    [ $rc -eq 0 ] && grep -q "warm start from" "$work/ws-$dev.err" ||
        bad "warm start, --device $dev: exit $rc: $(tail -2 "$work/ws-$dev.err")"
done
gpu_matches_cpu "$work/ws-cuda" "$work/ws-cpu" "warm-started"

if grep -q "no usable GPU" "$work/rs-cuda.err"; then
    skip_part "reshard onto 3 GPU ranks: $(grep -o 'no usable GPU.*' "$work/rs-cuda.err" | head -1)"
else
    gpu_matches_cpu "$work/rs-cuda" "$work/rs-cpu" "resharded 2 -> 3"
fi
finish
