#!/usr/bin/env bash
# The item tables' modes (src/dist/tables.h) and transports reachable here give the same
# bits: on 1, 2 and 3 ranks, for three models (shared embedding with momentum, one-hot
# input without samples, a separate embedding and two layers), every combination of
# --item-tables replicated|node, shared memory or MPI messages (GRUREC_COMM_SHM=0), and
# --sparse-exchange on|off ends at one parameter hash per rank count, and that hash is the
# one recorded before the tables became one module (tests/expected/tables_hashes.txt).
# Also: the start-up line and metrics.jsonl name the mode and the transport, the old
# switch GRUREC_SHARED_MODEL=0 still means replicated, an impossible or unknown
# --item-tables is refused, and a run stopped and resumed in either mode ends at the
# uninterrupted run's bits. About a minute on 2 cores.
# usage: tables_test.sh BUILD_DIR   (RECORD=1: print the hashes in the expected file's format)
source "$(dirname "$0")/lib.sh" "$1" tables-test
here=$(cd "$(dirname "$0")/.." && pwd)
with_mpi || skip_all "this grurec runs no ranks (built without MPI)"
export GRUREC_OVERSUBSCRIBE=1
expected=$here/tests/expected/tables_hashes.txt

"$synth" --events 20000 --items 200 --days 10 --seed 7 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 6 --out "$work/ds" --quiet || exit 1
declare -A cfg=(
    [xe]="--layers 16 --batch-size 8 --n-sample 16 --dropout-hidden 0.2 --momentum 0.3"
    [top1]="--embedding onehot --loss top1 --final-act tanh --layers 16 --batch-size 8 --n-sample 0 --dropout-hidden 0.2"
    [sep]="--embedding 8 --layers 12,10 --batch-size 8 --n-sample 16 --momentum 0.2 --dropout-embed 0.1 --learning-rate 0.1"
)
common=(--epochs 1 --log-every 0 --eval-every 0 --check-every 7 --comm-timeout 60)
# run NAME P ENV-ASSIGNMENTS... -- FLAGS...: grurec train on P ranks (1: no launcher) into
# $work/NAME, its standard error in $work/NAME.err; its exit status in $rc
run() {
    local name=$1 P=$2; shift 2
    local env=() cmd=("$grurec")
    while [ "$1" != "--" ]; do env+=("$1"); shift; done
    shift
    [ "$P" = 1 ] || cmd=("$here/launch/grurec-mpirun" -np "$P" "$grurec")
    env "${env[@]}" "${cmd[@]}" train --data "$work/ds" --out "$work/$name" "${common[@]}" "$@" >/dev/null 2>"$work/$name.err"
    rc=$?
}
# train NAME P ENV... -- FLAGS...: a fresh run to its end; its final hash in $h
train() {
    rm -rf "$work/$1"
    run "$@"
    [ $rc -eq 0 ] || bad "$1: training failed (exit $rc): $(tail -2 "$work/$1.err")"
    h=$(hash_of "$work/$1")
}
# says NAME MODE TRANSPORT: the start-up line and metrics.jsonl's config name them
says() {
    grep -q "; item tables $2" "$work/$1.err" \
        && grep -m1 '"type": "config"' "$work/$1/metrics.jsonl" | grep -q "\"item_tables\": \"$2\", \"transport\": \"$3\"" \
        && ok || bad "$1: not described as $2 over $3: $(grep -o 'item tables.*' "$work/$1.err")"
}

# name:env:flags, per rank count above 1: the modes and transports this machine reaches
combos=(
    "node-shm-on::"
    "node-shm-off::--item-tables node --sparse-exchange off"
    "rep-shm-on::--item-tables replicated"
    "rep-shm-off::--item-tables replicated --sparse-exchange off"
    "rep-mpi-on:GRUREC_COMM_SHM=0:"
    "rep-mpi-off:GRUREC_COMM_SHM=0:--sparse-exchange off"
)
declare -A got
for c in xe top1 sep; do
    train "$c-1" 1 -- ${cfg[$c]}
    got[$c 1]=$h
    says "$c-1" replicated none
    for P in 2 3; do
        first=
        for combo in "${combos[@]}"; do
            IFS=: read -r name env flags <<<"$combo"
            train "$c-$P-$name" "$P" $env -- ${cfg[$c]} $flags
            case $name in node-*) mode=node ;; *) mode=replicated ;; esac
            case $name in *-shm-*) tr=shared-memory ;; *) tr=mpi ;; esac
            says "$c-$P-$name" $mode $tr
            if [ -z "$first" ]; then first=$h; got[$c $P]=$h
            else [ "$h" = "$first" ] && ok || bad "$c on $P ranks: $name ends at $h, node-shm-on at $first"; fi
        done
    done
done
if [ "${RECORD:-0}" = 1 ]; then for k in "${!got[@]}"; do echo "$k ${got[$k]}"; done | sort; fi

# The recorded hashes: where this machine computes the 1-rank run's recorded bits, every
# rank count must too (elsewhere another CPU's arithmetic or another dataset writer may
# round differently: that part is skipped, saying so).
if [ "$(awk '$1 == "xe" && $2 == 1 {print $3}' "$expected")" = "${got[xe 1]}" ]; then
    while read -r c P want; do
        case $c in \#*|"") continue ;; esac
        [ "${got[$c $P]}" = "$want" ] && ok || bad "$c on $P ranks: ${got[$c $P]} is not the recorded $want"
    done <"$expected"
else
    skip_part "the recorded hashes: this machine's 1-rank xe run ends at ${got[xe 1]}, not the recorded one (another CPU or dataset writer: RECORD=1 prints new ones)"
fi

# The old switch still works: GRUREC_SHARED_MODEL=0 means replicated (the flag wins over it).
train alias 2 GRUREC_SHARED_MODEL=0 -- ${cfg[xe]}
says alias replicated shared-memory
[ "$h" = "${got[xe 2]}" ] && ok || bad "GRUREC_SHARED_MODEL=0 ends at $h, not ${got[xe 2]}"
train alias-flag 2 GRUREC_SHARED_MODEL=0 -- ${cfg[xe]} --item-tables node
says alias-flag node shared-memory

# An impossible or unknown mode is refused (exit 2), naming the flag.
run refused 2 GRUREC_COMM_SHM=0 -- ${cfg[xe]} --item-tables node
[ $rc -eq 2 ] && grep -q "item-tables.*node needs CPU ranks that share" "$work/refused.err" && ok \
    || bad "--item-tables node without shared memory: exit $rc: $(head -2 "$work/refused.err")"
"$grurec" train --data "$work/ds" --out "$work/unknown" --item-tables striped >/dev/null 2>"$work/unknown.err"
rc=$?
[ $rc -eq 2 ] && grep -q "item-tables is replicated, node or sharded" "$work/unknown.err" && ok \
    || bad "--item-tables striped: exit $rc: $(head -2 "$work/unknown.err")"

# A run stopped mid-epoch and resumed ends at the uninterrupted bits, in either mode (the
# tables and their state go through the module's checkpoint tensors; node mode also
# gathers the ranks' dense optimizer ranges first).
for mode in node replicated; do
    rm -rf "$work/stop-$mode"
    run "stop-$mode" 3 -- ${cfg[xe]} --item-tables $mode --stop-at-step 250
    [ $rc -eq 75 ] && grep -q "checkpointed at step 250" "$work/stop-$mode.err" && ok \
        || bad "$mode: no stop at step 250 (exit $rc): $(tail -2 "$work/stop-$mode.err")"
    run "stop-$mode" 3 -- ${cfg[xe]} --item-tables $mode
    [ $rc -eq 0 ] && grep -q "resuming from" "$work/stop-$mode.err" && [ "$(hash_of "$work/stop-$mode")" = "${got[xe 3]}" ] \
        && ok || bad "$mode: stopped and resumed (exit $rc) ends at $(hash_of "$work/stop-$mode"), not ${got[xe 3]}"
done
finish
