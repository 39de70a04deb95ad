#!/usr/bin/env bash
# Daily retraining end to end (issue 21): two overlapping windows of one drifting log
# (grurec-prep --since/--until), a 1-rank model of day 1, then a warm start of day 2 at 2
# ranks from it (its line and metrics.jsonl record, a rerun resumes instead); the same with
# sharded item tables, and from a sharded run's checkpoint, bitwise as whole tables; a shape
# change refused before anything is written, and `eval` of a model on another dataset
# counting the targets it cannot predict as misses (hand-made logs, counts by hand).
# About 30 s on 2 cores. (Rows and optimizer state by id: tests/test_warm_start.c.)
# usage: warm_start_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" warm-start-test
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
F=(--layers 16 --batch-size 8 --n-sample 16 --log-every 0 --checkpoint-every 0)
D=86400 T0=1600000000

"$synth" --events 40000 --items 1200 --days 12 --new-items-per-day 25 --half-life 5 --seed 9 --out "$work/log.tsv" 2>/dev/null
"$prep" --input "$work/log.tsv" --until $((T0 + 10 * D)) --test-days 1 --shards 2 --out "$work/d1" --quiet || exit 1
"$prep" --input "$work/log.tsv" --since $((T0 + D)) --until $((T0 + 11 * D)) --test-days 1 --shards 2 --out "$work/d2" \
    --quiet || exit 1
"$grurec" train --data "$work/d1" --out "$work/r1" "${F[@]}" --epochs 2 >/dev/null 2>"$work/r1.err" \
    || { echo "day 1 training failed: $(tail -3 "$work/r1.err")"; exit 1; }

# 1. warm start of day 2 from day 1's run, at 2 ranks when MPI is there
np=1
with_mpi && np=2
warm() { "$here/launch/grurec-mpirun" -np $np "$grurec" train --data "$work/d2" --out "$work/r2" "${F[@]}" --epochs 1 \
    --warm-start "$work/r1" "$@"; }
[ $np = 2 ] || skip_part "warm start at 2 ranks: this grurec is built without MPI (ran at 1 rank)"
warm >"$work/w.out" 2>&1
rc=$?
line=$(grep "warm start from" "$work/w.out")
check '[ $rc -eq 0 ] && [[ "$line" =~ "r1/ckpt-".*": "([0-9]+)" items kept, "([0-9]+)" new, "([0-9]+)" dropped" ]]' \
    "warm start at $np ranks: exit 0 and one line of counts (exit $rc: $(tail -2 "$work/w.out"))"
kept=${BASH_REMATCH[1]:-0} new=${BASH_REMATCH[2]:-0} dropped=${BASH_REMATCH[3]:-0}
n2=$("$grurec" inspect "$work/r2/model.h5" | sed -n "s/.*, \([0-9]*\) items/\1/p" | head -1)
n1=$("$grurec" inspect "$work/r1/model.h5" | sed -n "s/.*, \([0-9]*\) items/\1/p" | head -1)
check '[ $((kept + new)) -eq "$n2" ] && [ $((kept + dropped)) -eq "$n1" ] && [ "$kept" -gt 0 ] && [ "$new" -gt 0 ] && [ "$dropped" -gt 0 ]' \
    "kept + new = day 2's $n2 items, kept + dropped = day 1's $n1 ($kept, $new, $dropped)"
check 'head -1 "$work/r2/metrics.jsonl" | grep -q "\"warm_start\": {\"from\": \"[^\"]*r1/ckpt-[0-9]*.h5\", \"kept\": $kept, \"new\": $new, \"dropped\": $dropped, \"optimizer_state\": true}"' \
    "metrics.jsonl records the warm start"
warm >"$work/w2.out" 2>&1
check 'grep -q "resuming from" "$work/w2.out" && ! grep -q "warm start from" "$work/w2.out"' \
    "a rerun of the warm start resumes its own run"

# 1b. sharded item tables: each rank fills its own rows (from a whole checkpoint, or from a
# sharded run's manifest and parts), and the run ends at the bits of whole tables
# ws NAME FROM MODE: a warm start of day 2 at 2 ranks into $work/NAME
ws() {
    "$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/d2" --out "$work/$1" "${F[@]}" --epochs 1 \
        --warm-start "$work/$2" --item-tables "$3" >"$work/$1.out" 2>&1
    rc=$?
}
if [ $np = 2 ]; then
    ws r2s r1 sharded
    check '[ $rc -eq 0 ] && grep -q "warm start from .*r1/ckpt-.*: $kept items kept, $new new, $dropped dropped" "$work/r2s.out"' \
        "warm start with --item-tables sharded: exit 0 and its line (exit $rc: $(tail -2 "$work/r2s.out"))"
    check '[ "$(hash_of "$work/r2s")" = "$(hash_of "$work/r2")" ] && [ "$(hash_of "$work/r2")" != none ]' \
        "sharded warm start ends at the bits of whole tables ($(hash_of "$work/r2s") vs $(hash_of "$work/r2"))"
    for mode in replicated sharded; do  # day 1 at 2 ranks: a whole checkpoint, and parts
        "$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/d1" --out "$work/r1$mode" "${F[@]}" --epochs 2 \
            --item-tables $mode >/dev/null 2>"$work/r1$mode.err" || { echo "day 1 ($mode) failed: $(tail -3 "$work/r1$mode.err")"; exit 1; }
    done
    check 'ls "$work"/r1sharded/ckpt-*.h5.part-1-of-2 >/dev/null 2>&1' "a sharded day 1 checkpoints in parts"
    ws wwr r1replicated replicated  # whole -> whole: the reference
    ref=$(hash_of "$work/wwr")
    ws wps r1sharded sharded        # parts -> sharded
    check '[ $rc -eq 0 ] && [ "$(hash_of "$work/wps")" = "$ref" ] && [ "$ref" != none ]' \
        "from a sharded checkpoint's parts to sharded tables: the bits of whole ones (exit $rc, $(hash_of "$work/wps") vs $ref)"
    ws wpr r1sharded replicated     # parts -> whole
    check '[ $rc -eq 0 ] && [ "$(hash_of "$work/wpr")" = "$ref" ]' \
        "from a sharded checkpoint's parts to whole tables: the same bits (exit $rc, $(hash_of "$work/wpr") vs $ref)"
    ws wms r1replicated/model.h5 sharded  # a model file (no optimizer state) -> sharded
    ws wmr r1replicated/model.h5 replicated
    check '[ "$(hash_of "$work/wms")" = "$(hash_of "$work/wmr")" ] && [ "$(hash_of "$work/wmr")" != none ] &&
        [ "$(hash_of "$work/wmr")" != "$ref" ]' "from model.h5 to sharded tables: the bits of whole ones"
fi

# 2. a shape change is refused, naming the setting, before RUN exists
"$grurec" train --data "$work/d2" --out "$work/r3" --layers 24 --batch-size 8 --n-sample 16 --epochs 1 \
    --warm-start "$work/r1" >/dev/null 2>"$work/r3.err"
rc=$?
check '[ $rc -eq 2 ] && grep -q "has --layers 16, this run 24" "$work/r3.err" && [ ! -e "$work/r3" ]' \
    "--layers 24 from a 16-unit model: exit 2 naming --layers, nothing written ($(cat "$work/r3.err"))"

# 3. eval of a model on another dataset. Model: items a b c d. Other dataset's test
# sessions: [a x b c] (target x unknown: a miss; b and c predicted from [a], [a b]) and
# [x a b] (a has no known item before it: a miss; b predicted). 5 targets, 2 misses, 3
# predictions, 2 events of the unknown item x.
printf 'SessionId\tItemId\tTime\n' >"$work/m.tsv"
for s in 1 2 3 4 5 6; do printf '%s\ta\t%d\n%s\tb\t%d\n%s\tc\t%d\n%s\td\t%d\n' $s $s $s $((s + 1)) $s $((s + 2)) $s $((s + 3)); done >>"$work/m.tsv"
printf '9\ta\t200000\n9\tb\t200001\n' >>"$work/m.tsv"
{ printf 'SessionId\tItemId\tTime\n'; cat <<'LOG'
1	a	1
1	x	2
1	b	3
1	c	4
2	x	5
2	a	6
2	b	7
3	a	200000
3	x	200001
3	b	200002
3	c	200003
4	x	200004
4	a	200005
4	b	200006
LOG
} >"$work/o.tsv"
"$prep" --input "$work/m.tsv" --test-days 1 --min-item-support 1 --shards 1 --out "$work/dm" --quiet || exit 1
"$prep" --input "$work/o.tsv" --test-days 1 --min-item-support 1 --shards 1 --out "$work/do" --quiet || exit 1
"$grurec" train --data "$work/dm" --out "$work/rm" --layers 8 --batch-size 2 --n-sample 0 --epochs 1 --log-every 0 \
    >/dev/null 2>&1 || exit 1
"$grurec" eval --model "$work/rm" --data "$work/do" --json >"$work/e.json" 2>"$work/e.err"
rc=$?
check '[ $rc -eq 0 ] && grep -q "\"predictions\": 5, \"misses\": 2, \"unknown_events\": 2}" "$work/e.json"' \
    "eval on another dataset: 5 predictions, 2 of them misses, 2 unknown events ($(cat "$work/e.json" "$work/e.err"))"
check 'grep -q "items matched by original id, 3 of the dataset.s 4 known to it; 2 events of unknown items skipped, 2 targets" "$work/e.err"' \
    "... and one line saying so"
recall=$(sed 's/.*"recall@20": \([0-9.]*\).*/\1/' "$work/e.json")
check 'awk -v r="$recall" "BEGIN { exit !(r <= 3 / 5 + 1e-6) }"' "Recall@20 $recall counts the misses (at most 3 of 5)"
"$build/tests/h5setattr" "$work/rm/model.h5" --unlink items
"$grurec" eval --model "$work/rm/model.h5" --data "$work/do" >/dev/null 2>"$work/e2.err"
rc=$?
check '[ $rc -eq 2 ] && grep -q "holds no item ids to match them by" "$work/e2.err"' \
    "a model without ids on another dataset: exit 2 ($(cat "$work/e2.err"))"
finish
