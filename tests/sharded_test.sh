#!/usr/bin/env bash
# Sharded item tables (--item-tables sharded, src/dist/tables_sharded.c) give the
# replicated mode's bits: at 2 and 4 ranks, for each embedding mode (shared with momentum
# and logq, one-hot without samples, a separate embedding with two layers), the final
# parameter hash (grurec inspect --hash of model.h5, gathered whole on rank 0) is the
# replicated run's. Also: the start-up line names the mode and prints the model state per
# rank, checkpoints are one part per rank plus the manifest (old parts rotated away with
# their checkpoint), and a run stopped and resumed at the same rank count ends at the
# uninterrupted bits. About a minute on 2 cores.
# usage: sharded_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" sharded-test
here=$(cd "$(dirname "$0")/.." && pwd)
with_mpi || skip_all "this grurec runs no ranks (built without MPI)"
export GRUREC_OVERSUBSCRIBE=1

"$synth" --events 20000 --items 200 --days 10 --seed 7 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 6 --out "$work/ds" --quiet || exit 1
declare -A cfg=(
    [shared]="--layers 16 --batch-size 8 --n-sample 16 --dropout-hidden 0.2 --momentum 0.3 --logq 1"
    [onehot]="--embedding onehot --loss top1 --final-act tanh --layers 16 --batch-size 8 --n-sample 0 --dropout-hidden 0.2"
    [separate]="--embedding 8 --layers 12,10 --batch-size 8 --n-sample 16 --momentum 0.2 --dropout-embed 0.1 --learning-rate 0.1"
)
common=(--epochs 1 --log-every 0 --eval-every 0 --check-every 7 --comm-timeout 60 --keep 2 --checkpoint-every 300)
# run NAME P FLAGS...: grurec train on P ranks into $work/NAME; exit status in $rc
run() {
    local name=$1 P=$2; shift 2
    "$here/launch/grurec-mpirun" -np "$P" "$grurec" train --data "$work/ds" --out "$work/$name" "${common[@]}" "$@" \
        >/dev/null 2>"$work/$name.err"
    rc=$?
}
train() {
    rm -rf "$work/$1"
    run "$@"
    [ $rc -eq 0 ] || bad "$1: training failed (exit $rc): $(tail -2 "$work/$1.err")"
    h=$(hash_of "$work/$1")
}

for c in shared onehot separate; do
    for P in 2 4; do
        train "$c-$P-rep" $P ${cfg[$c]} --item-tables replicated
        want=$h
        train "$c-$P-sh" $P ${cfg[$c]} --item-tables sharded
        [ "$h" = "$want" ] && [ "$h" != none ] && ok || bad "$c on $P ranks: sharded ends at $h, replicated at $want"
    done
done

# The start-up lines, and the checkpoint layout: the newest two manifests, each with its P parts.
err=$work/shared-4-sh.err
grep -q "; item tables sharded" "$err" && grep -q "model state per rank: " "$err" && ok \
    || bad "start-up lines: $(grep -m2 'item tables\|state per rank' "$err")"
manifests=$(ls "$work/shared-4-sh" | grep -c '^ckpt-[0-9]*\.h5$')
parts=$(ls "$work/shared-4-sh" | grep -c '^ckpt-[0-9]*\.h5\.part-[0-3]-of-4$')
[ "$manifests" = 2 ] && [ "$parts" = 8 ] && ok || bad "checkpoints: $manifests manifests, $parts parts: $(ls "$work/shared-4-sh")"

# Stopped and resumed at the same rank count: the uninterrupted bits.
rm -rf "$work/stop"
run stop 3 ${cfg[shared]} --item-tables sharded --stop-at-step 250
[ $rc -eq 75 ] && ok || bad "no stop at step 250 (exit $rc): $(tail -2 "$work/stop.err")"
run stop 3 ${cfg[shared]} --item-tables sharded
resumed=$(hash_of "$work/stop")
train whole3 3 ${cfg[shared]} --item-tables sharded
[ $rc -eq 0 ] && grep -q "resuming from" "$work/stop.err" && [ "$resumed" = "$h" ] && ok \
    || bad "stopped and resumed ends at $resumed, not $h: $(tail -2 "$work/stop.err")"

# A damaged part makes its checkpoint damaged on every rank: all resume from the one before.
rm -rf "$work/dmg"
run dmg 2 ${cfg[shared]} --item-tables sharded --stop-at-step 700
newest=$(ls "$work/dmg" | grep '^ckpt-[0-9]*\.h5$' | sort | tail -1)
printf 'garbage' | dd of="$work/dmg/$newest.part-1-of-2" bs=1 seek=3000 conv=notrunc 2>/dev/null
run dmg 2 ${cfg[shared]} --item-tables sharded
[ $rc -eq 0 ] && grep -q "damaged" "$work/dmg.err" && grep -q "resuming from .*ckpt-000000000600" "$work/dmg.err" && ok \
    || bad "a damaged part (exit $rc): $(grep -m3 'damaged\|resuming' "$work/dmg.err")"
finish
