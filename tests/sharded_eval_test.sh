#!/usr/bin/env bash
# Evaluation over sharded item tables (src/eval/evaluate_sharded.c, src/dist/tables_rank.c)
# gives the replicated path's metrics exactly: at 2 and 4 ranks, for each embedding mode
# and a tie mode each, the eval lines of metrics.jsonl (each epoch's and the final test
# evaluation, "seconds" left out) are the replicated run's, byte for byte. One of them
# evaluates with more lanes than a training step fetches rows (the step table grows to
# --eval-batch). About 20 s on 2 cores.
# usage: sharded_eval_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" sharded-eval-test
here=$(cd "$(dirname "$0")/.." && pwd)
with_mpi || skip_all "this grurec runs no ranks (built without MPI)"
export GRUREC_OVERSUBSCRIBE=1

"$synth" --events 20000 --items 300 --days 10 --seed 11 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 2 --shards 6 --out "$work/ds" --quiet || exit 1
declare -A cfg=(
    [shared]="--layers 16 --batch-size 8 --n-sample 16 --momentum 0.3 --logq 1 --eval-batch 16"
    [onehot]="--embedding onehot --loss top1 --final-act tanh --layers 16 --batch-size 4 --n-sample 0 --eval-batch 64 --ties median"
    [separate]="--embedding 8 --layers 12,10 --batch-size 8 --n-sample 16 --eval-batch 24 --ties standard"
)
common=(--epochs 2 --eval-every 1 --log-every 0 --comm-timeout 60)
# evals NAME P FLAGS...: the run's eval lines, without their seconds
evals() {
    local name=$1 P=$2; shift 2
    rm -rf "$work/$name"
    "$here/launch/grurec-mpirun" -np "$P" "$grurec" train --data "$work/ds" --out "$work/$name" "${common[@]}" "$@" \
        >/dev/null 2>"$work/$name.err" || { echo "exit $?: $(tail -2 "$work/$name.err")"; return; }
    grep '"type": "eval"' "$work/$name/metrics.jsonl" | sed 's/"seconds": [0-9.]*, //'
}

for c in shared onehot separate; do
    for P in 2 4; do
        want=$(evals "$c-$P-rep" $P ${cfg[$c]} --item-tables replicated)
        got=$(evals "$c-$P-sh" $P ${cfg[$c]} --item-tables sharded)
        [ "$(echo "$want" | grep -c '"predictions"')" = 2 ] && [ "$got" = "$want" ] && ok \
            || bad "$c on $P ranks: sharded evaluates to
$got
replicated to
$want"
    done
done
finish
