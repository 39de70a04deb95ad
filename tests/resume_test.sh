#!/usr/bin/env bash
# Checkpoints and exact resume: a run stopped mid-epoch (--stop-at-step, and SIGUSR1) and
# resumed with the same command ends with the same parameters, bit for bit, as an
# uninterrupted run, on 1 and 2 ranks; a damaged newest checkpoint is skipped with a
# warning naming it; other model settings are refused, another --epochs is accepted.
# usage: resume_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" resume-test
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
params() { "$grurec" inspect "$1" --hash | tail -1; }

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || exit 1
F=(--layers 16 --batch-size 8 --n-sample 16 --epochs 2 --log-every 0 --eval-every 0 --dropout-hidden 0.2 --momentum 0.3)

for P in 1 2; do
    launch() { if [ $P = 1 ]; then "$grurec" "$@"; else "$here/launch/grurec-mpirun" -np 2 "$grurec" "$@"; fi; }
    launch train --data "$work/ds" --out "$work/full$P" "${F[@]}" >/dev/null 2>&1 || bad "$P ranks: uninterrupted run"
    launch train --data "$work/ds" --out "$work/part$P" "${F[@]}" --stop-at-step 700 >/dev/null 2>"$work/e$P"
    rc=$?
    check '[ $rc -eq 75 ]' "$P ranks: a requested stop exits 75 (got $rc: $(tail -1 "$work/e$P"))"
    check 'ls "$work/part$P"/ckpt-*.h5 >/dev/null 2>&1' "$P ranks: a checkpoint was written"
    launch train --data "$work/ds" --out "$work/part$P" "${F[@]}" >/dev/null 2>"$work/r$P" || bad "$P ranks: resumed run failed"
    check 'grep -q "resuming from" "$work/r$P"' "$P ranks: the rerun says it resumes"
    check '[ "$(params "$work/full$P/model.h5")" = "$(params "$work/part$P/model.h5")" ]' \
        "$P ranks: resumed parameters equal the uninterrupted run's"
done

# SIGUSR1 at an arbitrary moment: checkpoint, exit 75, resume, same bits.
F2=(--layers 64 --batch-size 8 --n-sample 128 --epochs 40 --log-every 0 --eval-every 0)
"$grurec" train --data "$work/ds" --out "$work/sigfull" "${F2[@]}" >/dev/null 2>&1
"$grurec" train --data "$work/ds" --out "$work/sig" "${F2[@]}" >/dev/null 2>&1 &
pid=$!
sleep 1.5
kill -USR1 $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 0 ]; then echo "note: the run check '"$grurec" inspect "$work/ds" | grep -q "fingerprint"' "inspect describes a dataset"
check '"$grurec" inspect "$work/part1/$(ls "$work/part1" | grep ckpt | tail -1)" | grep -q "checkpoint: epoch"' "inspect describes a checkpoint"
check '[ "$("$grurec" inspect "$work/full1" --hash | tail -1)" = "$("$grurec" inspect "$work/full1/model.h5" --hash | tail -1)" ]' "a run directory means its final model"
finished before the signal arrived"; ok; else
    check '[ $rc -eq 75 ]' "SIGUSR1 makes the run checkpoint and exit 75 (got $rc)"
    "$grurec" train --data "$work/ds" --out "$work/sig" "${F2[@]}" >/dev/null 2>&1 || bad "resume after SIGUSR1"
fi
check '[ "$(params "$work/sigfull/model.h5")" = "$(params "$work/sig/model.h5")" ]' "after SIGUSR1 and resume, the same bits"

# A damaged newest checkpoint is skipped, naming it; the previous one is used.
"$grurec" train --data "$work/ds" --out "$work/dmg" "${F[@]}" --checkpoint-every 300 --stop-at-step 900 >/dev/null 2>&1
newest=$(ls "$work/dmg"/ckpt-*.h5 | sort | tail -1)
truncate -s $(( $(stat -c %s "$newest") / 2 )) "$newest"  # a write cut short
"$grurec" train --data "$work/ds" --out "$work/dmg" "${F[@]}" >/dev/null 2>"$work/edmg"
check 'grep -q "$(basename "$newest").*damaged" "$work/edmg"' "the damaged checkpoint is named ($(head -2 "$work/edmg"))"
check '[ "$(params "$work/full1/model.h5")" = "$(params "$work/dmg/model.h5")" ]' "resumed from the previous checkpoint, same bits"
"$grurec" train --data "$work/ds" --out "$work/dmg2" "${F[@]}" --checkpoint-every 300 --stop-at-step 900 >/dev/null 2>&1
truncate -s 1000 "$work/dmg2/ckpt-000000000900.h5"
"$grurec" inspect "$work/dmg2" >"$work/idmg" 2>&1
check 'grep -q "000900.h5 is damaged" "$work/idmg" && grep -q "ckpt-000000000600.h5" "$work/idmg"' \
    "a run directory read by inspect/eval/recommend means its newest checkpoint that opens"

# A failed checkpoint write stops training non-zero and leaves the previous one valid.
GRUREC_FAIL_CHECKPOINT_AT=600 "$grurec" train --data "$work/ds" --out "$work/fail" "${F[@]}" --checkpoint-every 300 \
    >/dev/null 2>"$work/efail"
rc=$?
check '[ $rc -eq 1 ] && grep -q "previous checkpoint is kept" "$work/efail"' "a failed checkpoint write stops with 1 (got $rc)"
check 'ls "$work/fail"/ckpt-000000000300.h5 >/dev/null 2>&1 && ! ls "$work/fail"/ckpt-000000000600.h5* >/dev/null 2>&1' \
    "the previous checkpoint stays, no partial one is left"
"$grurec" train --data "$work/ds" --out "$work/fail" "${F[@]}" >/dev/null 2>&1
check '[ "$(params "$work/full1/model.h5")" = "$(params "$work/fail/model.h5")" ]' "resumed after the failure, same bits"

# --checkpoint-minutes: a tiny interval checkpoints along the way (rank 0's clock decides).
"$grurec" train --data "$work/ds" --out "$work/mins" "${F[@]}" --checkpoint-minutes 0.0001 --keep 100 >/dev/null 2>&1
check '[ "$(ls "$work/mins"/ckpt-*.h5 | wc -l)" -gt 3 ]' "--checkpoint-minutes writes checkpoints during the epochs"

# Another number of ranks is refused, and accepted with --reshard.
"$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" --out "$work/rs" "${F[@]}" --stop-at-step 500 >/dev/null 2>&1
"$grurec" train --data "$work/ds" --out "$work/rs" "${F[@]}" >/dev/null 2>"$work/ers"
check '[ $? -eq 2 ] && grep -q "reshard" "$work/ers"' "another world size is refused, pointing at --reshard"
"$grurec" train --data "$work/ds" --out "$work/rs" "${F[@]}" --reshard >/dev/null 2>"$work/ers2"
check '[ $? -eq 0 ] && grep -q "resharding 2 ranks" "$work/ers2" && [ -f "$work/rs/model.h5" ]' "--reshard resumes on 1 rank"

# Other model settings are refused; another --epochs is accepted.
"$grurec" train --data "$work/ds" --out "$work/part1" --layers 12 --batch-size 8 --n-sample 16 --epochs 2 >/dev/null 2>"$work/emm"
check '[ $? -eq 2 ] && grep -q "other model settings" "$work/emm"' "resume with another --layers is refused"
"$grurec" train --data "$work/ds" --out "$work/part1" "${F[@]/--epochs/--epochs}" --epochs 3 >/dev/null 2>"$work/eep"
check '[ $? -eq 0 ] && grep -q "resuming" "$work/eep"' "resume with another --epochs is accepted"
check '"$grurec" inspect "$work/ds" | grep -q "fingerprint"' "inspect describes a dataset"
check '"$grurec" inspect "$work/part1/$(ls "$work/part1" | grep ckpt | tail -1)" | grep -q "checkpoint: epoch"' "inspect describes a checkpoint"
check '[ "$("$grurec" inspect "$work/full1" --hash | tail -1)" = "$("$grurec" inspect "$work/full1/model.h5" --hash | tail -1)" ]' "a run directory means its final model"
finish
