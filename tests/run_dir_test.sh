#!/usr/bin/env bash
# A run directory belongs to one dataset and one model configuration: a rerun of
# `train --out RUN` with another dataset (another item count, or the same count but other
# data) or other model settings exits 2 naming both datasets, before anything in RUN is
# written or deleted (every checkpoint keeps its bytes); flags that may change on resume
# are accepted; the --keep rotation leaves a later checkpoint the run did not supersede.
# usage: run_dir_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" run-dir-test

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/a.tsv" 2>/dev/null
"$synth" --events 30000 --items 200 --days 10 --seed 3 --out "$work/b.tsv" 2>/dev/null
"$prep" --input "$work/a.tsv" --test-days 1 --out "$work/ds" --quiet || exit 1
"$prep" --input "$work/b.tsv" --test-days 1 --shards 2 --out "$work/fewer" --quiet || exit 1
"$prep" --input "$work/a.tsv" --test-days 2 --out "$work/same_n" --quiet || exit 1  # other splits, same items
items() { "$grurec" inspect "$1" | sed -n 's/.* \([0-9]*\) items,.*/\1/p'; }
fp() { "$grurec" inspect "$1" | sed -n 's/.*fingerprint \([0-9a-f]*\).*/\1/p'; }
check '[ "$(items "$work/ds")" != "$(items "$work/fewer")" ]' "the first other dataset has another item count"
check '[ "$(items "$work/ds")" = "$(items "$work/same_n")" ] && [ "$(fp "$work/ds")" != "$(fp "$work/same_n")" ]' \
    "the second has the same item count ($(items "$work/same_n")) but another fingerprint"

F=(--layers 16 --batch-size 8 --n-sample 16 --epochs 3 --log-every 0 --eval-every 0)
"$grurec" train --data "$work/ds" --out "$work/run" "${F[@]}" --checkpoint-every 300 --stop-at-step 900 >/dev/null 2>&1
check '[ $? -eq 75 ] && [ "$(ls "$work/run"/ckpt-*.h5 | wc -l)" -eq 3 ]' "a run with 3 checkpoints"
snapshot() { (cd "$work/run" && stat -c "%n %Y" . && ls -l --time-style=+%s && sha256sum ./*); }
snapshot >"$work/before"
valid() { for c in "$work/run"/ckpt-*.h5; do "$grurec" inspect "$c" >/dev/null 2>&1 || return 1; done; }
check valid "the original checkpoints verify"

refused() {  # NAME DATA [FLAGS...]: exit 2, one line naming both datasets, RUN untouched
    local name=$1 data=$2
    shift 2
    "$grurec" train --data "$data" --out "$work/run" "${F[@]}" "$@" >/dev/null 2>"$work/e_$name"
    local rc=$?
    check '[ $rc -eq 2 ]' "$name: refused with exit 2 (got $rc: $(tail -1 "$work/e_$name"))"
    check '! grep -q damaged "$work/e_$name"' "$name: no checkpoint is called damaged"
    check 'snapshot | cmp -s - "$work/before"' "$name: every file of the run keeps its bytes, none added or removed"
}
refused fewer_items "$work/fewer" --checkpoint-every 300
check 'grep -q "run was trained on dataset $(fp "$work/ds") (.*/ds); this is $(fp "$work/fewer") (.*/fewer): use another --out" "$work/e_fewer_items"' \
    "the refusal names both fingerprints and directories ($(cat "$work/e_fewer_items"))"
check '[ "$(wc -l <"$work/e_fewer_items")" -eq 1 ]' "the refusal is one line"
refused same_items "$work/same_n" --checkpoint-every 300
check 'grep -q "this is $(fp "$work/same_n")" "$work/e_same_items"' "same item count, other data: named"
refused other_layers "$work/ds" --layers 8
check 'grep -q "other model settings" "$work/e_other_layers"' "other model settings: said so"
refused other_lr "$work/ds" --learning-rate 0.1
if with_mpi; then  # every rank stops, rank 0 says why once
    GRUREC_OVERSUBSCRIBE=1 "$(dirname "$0")/../launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/fewer" \
        --out "$work/run" "${F[@]}" >/dev/null 2>"$work/e_ranks"
    rc=$?
    check '[ $rc -eq 2 ] && [ "$(grep -c "was trained on dataset" "$work/e_ranks")" -eq 1 ]' \
        "2 ranks: refused with exit 2, said once (got $rc)"
    check 'snapshot | cmp -s - "$work/before"' "2 ranks: every file of the run keeps its bytes"
else
    echo "note: 2 ranks not run (grurec built without MPI)"
fi
check valid "the original checkpoints still verify"

# What may change on resume: epochs, cadence, keep, logging, evaluation.
"$grurec" train --data "$work/ds" --out "$work/run" "${F[@]}" --epochs 2 --keep 5 --checkpoint-every 450 \
    --eval-every 1 --log-every 1 >/dev/null 2>"$work/e_resume"
check '[ $? -eq 0 ] && grep -q "resuming from .*ckpt-000000000900.h5" "$work/e_resume"' \
    "another --epochs, --keep, cadence and logging resume the run"
# A finished run (model.h5 and checkpoints) is refused another dataset as well.
"$grurec" train --data "$work/fewer" --out "$work/run" "${F[@]}" >/dev/null 2>&1
check '[ $? -eq 2 ] && [ -f "$work/run/model.h5" ]' "a finished run is refused another dataset"

# The rotation never deletes a checkpoint the run did not supersede: a damaged later one
# stays until the run passes it; of the earlier ones the newest --keep - 1 stay.
"$grurec" train --data "$work/ds" --out "$work/rot" "${F[@]}" --checkpoint-every 300 --stop-at-step 900 >/dev/null 2>&1
truncate -s 1000 "$work/rot/ckpt-000000000900.h5"
"$grurec" train --data "$work/ds" --out "$work/rot" "${F[@]}" --checkpoint-every 250 --stop-at-step 750 --keep 2 \
    >/dev/null 2>"$work/e_rot"
check 'grep -q "ckpt-000000000900.h5 is damaged" "$work/e_rot" && grep -q "resuming from .*000600.h5" "$work/e_rot"' \
    "the damaged newest is skipped, the run resumes at 600"
check '[ "$(cd "$work/rot" && ls ckpt-*.h5 | tr "\n" " ")" = "ckpt-000000000600.h5 ckpt-000000000750.h5 ckpt-000000000900.h5 " ]' \
    "--keep 2 at step 750 deletes 300 and keeps 600, 750 and the later 900 ($(ls "$work/rot" | tr "\n" " "))"
finish
