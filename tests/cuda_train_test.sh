#!/usr/bin/env bash
# grurec train --device cuda against --device cpu on small data, for every loss and every
# embedding mode, on RANKS ranks (2: the step exchange in GPU memory, summed by NCCL; also
# with --sparse-exchange off), then
# eval and recommend of a GPU-trained model on both devices. What must agree is what
# docs/cuda.md promises:
#  - on grurec's CUDA emulation (grurec --version says EMULATED; its products are
#    OpenBLAS's): the same parameters bit for bit (these runs have batch + negatives = 16
#    columns a loss row), hence the same metrics, evaluations and recommendations;
#  - on a GPU: Recall@20 and MRR@20 within 0.02 of the CPU's, evaluation within 1e-3.
# Skips without a usable GPU (real or emulated).
# usage: cuda_train_test.sh BUILD_DIR RANKS
source "$(dirname "$0")/lib.sh" "$1" "cuda-train-$2"
here=$(cd "$(dirname "$0")/.." && pwd)
P=$2
export GRUREC_OVERSUBSCRIBE=1
launch() { if [ "$P" = 1 ]; then "$grurec" "$@"; else "$here/launch/grurec-mpirun" -np "$P" "$grurec" "$@"; fi; }
params() { "$grurec" inspect "$1" --hash | tail -1; }
emulated=0
"$grurec" --version | grep -q EMULATED && emulated=1
[ "$P" = 1 ] || with_mpi || skip_all "$P ranks: this grurec was built without MPI"

"$synth" --events 3000 --items 100 --days 10 --seed 11 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
F=(--batch-size 8 --n-sample 8 --epochs 1 --log-every 0 --comm-timeout 120)

# The first run says whether there is a GPU at all.
launch train --data "$work/ds" --out "$work/probe" --device cuda --layers 8 "${F[@]}" --max-steps 2 >/dev/null 2>"$work/probe.err"
if grep -q "no usable GPU" "$work/probe.err"; then
    skip_all "training on the GPU: $(grep -o 'no usable GPU.*' "$work/probe.err" | head -1)"
fi

# Recall@20 and MRR@20 of the last evaluation in RUN/metrics.jsonl (no python3 needed).
metrics() {
    grep '"type": "eval"' "$1/metrics.jsonl" | tail -1 | grep -oE '"(recall|mrr)@20": [-0-9.e+]+' | awk '{print $2}' | paste -sd' '
}
close() {  # A B TOL: the numbers of A and B pairwise within TOL (and as many)
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { n = split(a, x, " "); if (n == 0 || n != split(b, y, " ")) exit 1
        for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < -t || d > t) exit 1 } }'
}
# eval --json outputs A and B: the same predictions, every metric within TOL.
json_close() {
    close "$(grep -oE '[-0-9.e+]+[,}]' "$1" | tr -d ',}' | paste -sd' ')" "$(grep -oE '[-0-9.e+]+[,}]' "$2" | tr -d ',}' | paste -sd' ')" "$3" &&
        [ "$(grep -o '"predictions": [0-9]*' "$1")" = "$(grep -o '"predictions": [0-9]*' "$2")" ]
}

losses=("cross-entropy --logq 1 --dropout-hidden 0.2 --momentum 0.3" "bpr-max --bpreg 0.5 --dropout-hidden 0.1"
        "top1-max" "bpr --momentum 0.2" "top1")
embeddings=(onehot shared 6)
for loss in "${losses[@]}"; do
    for emb in "${embeddings[@]}"; do
        name="${loss%% *} / embedding $emb"
        layers=10
        [ "$emb" = 6 ] && layers=10,8  # two layers too
        run=$work/$(echo "${loss%% *}-$emb" | tr -c 'a-z0-9-\n' _)
        # shellcheck disable=SC2086
        args=(--loss $loss --embedding "$emb" --layers "$layers" "${F[@]}")
        launch train --data "$work/ds" --out "$run-cpu" --device cpu "${args[@]}" >/dev/null 2>"$run-cpu.err" ||
            { bad "$name: the CPU run failed: $(tail -1 "$run-cpu.err")"; continue; }
        launch train --data "$work/ds" --out "$run-cuda" --device cuda "${args[@]}" >/dev/null 2>"$run-cuda.err" ||
            { bad "$name: the GPU run failed: $(tail -1 "$run-cuda.err")"; continue; }
        mc=$(metrics "$run-cpu") mg=$(metrics "$run-cuda")
        if [ $emulated = 1 ]; then
            check '[ "$(params "$run-cpu/model.h5")" = "$(params "$run-cuda/model.h5")" ]' \
                "$name, $P rank(s): the emulated GPU's parameters are the CPU's bit for bit"
            check '[ "$mc" = "$mg" ]' "$name, $P rank(s): Recall@20 / MRR@20 $mg on the GPU, $mc on the CPU"
        else
            check 'close "$mc" "$mg" 0.02' "$name, $P rank(s): Recall@20 / MRR@20 $mg on the GPU, $mc on the CPU (0.02)"
        fi
    done
done

# 2 ranks: the whole-table exchange too (--sparse-exchange off: zeroed tables, rows scattered).
if [ "$P" -gt 1 ]; then
    args=(--loss cross-entropy --embedding 6 --layers 10 --sparse-exchange off "${F[@]}")
    launch train --data "$work/ds" --out "$work/dense-cpu" --device cpu "${args[@]}" >/dev/null 2>&1 || bad "dense exchange: CPU run"
    launch train --data "$work/ds" --out "$work/dense-cuda" --device cuda "${args[@]}" >/dev/null 2>"$work/dense.err" ||
        bad "dense exchange: GPU run: $(tail -1 "$work/dense.err")"
    if [ $emulated = 1 ]; then
        check '[ "$(params "$work/dense-cpu/model.h5")" = "$(params "$work/dense-cuda/model.h5")" ]' \
            "--sparse-exchange off, $P ranks: the emulated GPU's parameters are the CPU's bit for bit"
    else
        check 'close "$(metrics "$work/dense-cpu")" "$(metrics "$work/dense-cuda")" 0.02' "--sparse-exchange off, $P ranks: metrics (0.02)"
    fi
fi

# The step's host waits, counted (not timed): the difference of a 24-step and a 4-step run
# leaves out the start-up's buffer growth and the last loss. None on one rank or several:
# the loss is read a step late, and with ranks the step's header (HDR_STOP, the pairs)
# travels with the ids over MPI, so the host never reads the all-reduce's sums back; later
# event waits watch its deadline. And one NCCL all-reduce a step, and no upload from
# pageable memory.
counter() { grep -o "\"$2\": [0-9]*" "$1/metrics.jsonl" | tail -1 | awk '{print $2}'; }
for n in 4 24; do
    launch train --data "$work/ds" --out "$work/count$n" --device cuda --layers 8 "${F[@]}" --max-steps "$n" >/dev/null 2>&1 ||
        bad "the $n-step counter run failed"
done
steps=$(( $(counter "$work/count24" steps) - $(counter "$work/count4" steps) ))
waits=$(( $(counter "$work/count24" host_waits) - $(counter "$work/count4" host_waits) ))
check '[ "$steps" = 20 ] && [ "$waits" = 0 ]' "$P rank(s): $waits host waits in $steps steps (want 0)"
pageable=$(( $(counter "$work/count24" pageable_h2d) - $(counter "$work/count4" pageable_h2d) ))
check '[ "$pageable" = 0 ]' "$P rank(s): $pageable uploads from pageable memory in $steps steps (the step's go through pinned slots)"
if [ "$P" = 1 ]; then  # the negatives drawn inside k_step_lists: one launch fewer
    kernels=$(( $(counter "$work/count24" kernels) - $(counter "$work/count4" kernels) ))
    check '[ "$kernels" -le $(( 20 * steps )) ]' "1 rank: $kernels kernels in $steps steps (20 a step at most)"
fi
if [ "$P" = 1 ]; then  # one CUDA graph per full step: the plain stream's bits, no kernel launched beside it
    GRUREC_CUDA_GRAPHS=0 launch train --data "$work/ds" --out "$work/count24-plain" --device cuda --layers 8 "${F[@]}" \
        --max-steps 24 >/dev/null 2>&1 || bad "the 24-step run without graphs failed"
    check '[ "$(params "$work/count24/model.h5")" = "$(params "$work/count24-plain/model.h5")" ]' \
        "1 rank: the same parameters with and without CUDA graphs (GRUREC_CUDA_GRAPHS=0)"
    graphs=$(( $(counter "$work/count24" graph_launches) - $(counter "$work/count4" graph_launches) ))
    check '[ "$graphs" = "$steps" ] && [ "$kernels" = 0 ]' "1 rank: $graphs graph launches and $kernels kernels beside them in $steps steps"
    check '[ "$(counter "$work/count24-plain" graph_launches)" = 0 ]' "1 rank: GRUREC_CUDA_GRAPHS=0 launches no graph"
    nodes=$(( $(counter "$work/count24" graph_kernel_nodes) - $(counter "$work/count4" graph_kernel_nodes) ))
    check '[ "$nodes" -le $(( 20 * steps )) ]' "1 rank: $nodes kernel nodes in $steps graph launches (20 a step at most)"
fi
if [ "$P" -gt 1 ]; then
    check '[ "$(counter "$work/count24" nccl_calls)" = 24 ]' "$P ranks: $(counter "$work/count24" nccl_calls) NCCL calls in 24 steps"
fi

# A GPU-trained model evaluated and serving on both devices.
model=$work/cross-entropy-shared-cuda
launch eval --data "$work/ds" --model "$model" --device cuda --json >"$work/e_gpu" 2>"$work/e_gpu.err"
rc=$?
msg=$(tail -1 "$work/e_gpu.err")
check '[ $rc -eq 0 ] && grep -q "recall@20" "$work/e_gpu"' "eval --device cuda, $P rank(s): $msg"
launch eval --data "$work/ds" --model "$model" --device cpu --json >"$work/e_cpu" 2>/dev/null
if [ $emulated = 1 ]; then
    check 'cmp -s "$work/e_gpu" "$work/e_cpu"' "eval, $P rank(s): the same metrics on both devices"
else
    check 'json_close "$work/e_cpu" "$work/e_gpu" 1e-3' "eval, $P rank(s): CPU and GPU within 1e-3"
fi
if [ "$P" = 1 ]; then  # recommend is one process
    items=$(cut -f2 "$work/c.tsv" | sed -n '2p;3p;4p' | paste -sd,)
    "$grurec" recommend --model "$model" --data "$work/ds" --session "$items" -k 10 --device cuda >"$work/r_gpu" 2>"$work/r_gpu.err"
    rc=$?
    msg=$(tail -1 "$work/r_gpu.err")
    check '[ $rc -eq 0 ] && [ "$(wc -l <"$work/r_gpu")" -eq 10 ]' "recommend --device cuda: $msg"
    "$grurec" recommend --model "$model" --data "$work/ds" --session "$items" -k 10 --device cpu >"$work/r_cpu" 2>/dev/null
    if [ $emulated = 1 ]; then
        check 'cmp -s "$work/r_gpu" "$work/r_cpu"' "recommend: the same items and scores on both devices"
    else
        check '[ "$(cut -f2 "$work/r_gpu" | head -3)" = "$(cut -f2 "$work/r_cpu" | head -3)" ]' "recommend: the same top 3 on both devices"
    fi
fi
finish
