#!/usr/bin/env bash
# --reshard of sharded item tables (src/dist/tables_parts.c): a sharded run checkpointed
# on 2 ranks and resumed on 3 (and one of 3 resumed on 2) ends at the replicated run's bits
# resumed the same way, so every rank read exactly its rows and their Adagrad state from
# the old parts. Without --reshard the other rank count is refused (exit 2), and so is a
# checkpoint of the other layout (a sharded manifest resumed with whole tables, and whole
# tables resumed sharded), naming the reason rather than starting over. And grurec inspect
# --hash of a sharded checkpoint (manifest and parts) is the replicated checkpoint's. About 20 s on 2 cores.
# usage: sharded_reshard_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" sharded-reshard-test
here=$(cd "$(dirname "$0")/.." && pwd)
with_mpi || skip_all "this grurec runs no ranks (built without MPI)"
export GRUREC_OVERSUBSCRIBE=1

"$synth" --events 20000 --items 200 --days 10 --seed 7 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 6 --out "$work/ds" --quiet || exit 1
flags=(--layers 16 --batch-size 8 --n-sample 16 --momentum 0.3 --logq 1 --epochs 2 --log-every 0 --eval-every 0
       --comm-timeout 60 --checkpoint-every 300)
# run NAME P FLAGS...: grurec train on P ranks into $work/NAME; exit status in $rc
run() {
    local name=$1 P=$2; shift 2
    "$here/launch/grurec-mpirun" -np "$P" "$grurec" train --data "$work/ds" --out "$work/$name" "${flags[@]}" "$@" \
        >/dev/null 2>>"$work/$name.err"
    rc=$?
}

declare -A ckpt_hash=()
for pair in "2 3" "3 2"; do
    set -- $pair
    for mode in replicated sharded; do
        name=$mode-$1-$2
        rm -rf "$work/$name" "$work/$name.err"
        run $name $1 --item-tables $mode --stop-at-step 400
        [ $rc -eq 75 ] || bad "$name: no stop at step 400 (exit $rc): $(tail -2 "$work/$name.err")"
        ckpt_hash[$mode]=$("$grurec" inspect "$work/$name/ckpt-000000000400.h5" --hash 2>/dev/null | tail -1)
        if [ $mode = sharded ] && [ $1 = 2 ]; then  # the refusals, before the reshard
            run $name $2 --item-tables $mode
            [ $rc -eq 2 ] && grep -q "checkpointed with 2 ranks, not 3" "$work/$name.err" && ok \
                || bad "another P without --reshard: exit $rc: $(tail -1 "$work/$name.err")"
            run $name 2 --item-tables replicated
            [ $rc -eq 2 ] && grep -q "a manifest of sharded item tables" "$work/$name.err" && ok \
                || bad "a sharded checkpoint resumed replicated: exit $rc: $(tail -1 "$work/$name.err")"
            run replicated-2-3 3 --item-tables sharded  # (resumed on 3 and done: its checkpoints are of 3)
            [ $rc -eq 2 ] && grep -q "written with whole item tables" "$work/replicated-2-3.err" && ok \
                || bad "a replicated checkpoint resumed sharded: exit $rc: $(tail -1 "$work/replicated-2-3.err")"
        fi
        run $name $2 --item-tables $mode --reshard
        [ $rc -eq 0 ] && grep -q "resharding $1 ranks' checkpoint onto $2" "$work/$name.err" && ok \
            || bad "$name: reshard exit $rc: $(tail -2 "$work/$name.err")"
    done
    # a sharded checkpoint (its manifest and parts) hashes as the replicated one of the same step
    [ "${ckpt_hash[sharded]}" = "${ckpt_hash[replicated]}" ] && [ -n "${ckpt_hash[sharded]}" ] && ok \
        || bad "inspect --hash of checkpoint 400 on $1 ranks: sharded ${ckpt_hash[sharded]}, replicated ${ckpt_hash[replicated]}"
    want=$(hash_of "$work/replicated-$1-$2") got=$(hash_of "$work/sharded-$1-$2")
    [ "$got" = "$want" ] && [ "$got" != none ] && ok || bad "$1 -> $2 ranks: sharded ends at $got, replicated at $want"
done
finish
