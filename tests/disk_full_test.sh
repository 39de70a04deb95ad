#!/usr/bin/env bash
# A full disk, on a small tmpfs made here: grurec-prep's output, a checkpoint (1 and 2
# ranks) and model.h5 each end with exit 1 and their message, never a crash, and leave no
# temporary file; the checkpoints written before stay valid and the run resumes once there
# is room. Needs root (mount); skips, visibly, where mounting is not permitted.
# usage: disk_full_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" disk-full-test
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
mnt=$work/mnt
mkdir -p "$mnt"
trap 'umount "$mnt" 2>/dev/null; rm -rf "$work"' EXIT
disk() {  # a fresh, empty tmpfs of $1 bytes at $mnt
    umount "$mnt" 2>/dev/null
    mount -t tmpfs -o size="$1" grurec-disk-full "$mnt" 2>"$work/mount.err"
}
if [ "$(id -u)" != 0 ] || ! disk 1m; then
    skip_all "disk_full_test: cannot mount a small tmpfs here ($( [ "$(id -u)" != 0 ] && echo 'not root' || cat "$work/mount.err"))"
fi
# An ending on a full disk: exit 1 (not a signal), the line wanted, nothing temporary left.
ended_well() {  # NAME RC ERRFILE PATTERN
    local name=$1 rc=$2 err=$3 pattern=$4
    check '[ "$rc" -eq 1 ]' "$name: exit 1 (got $rc: $(grep -v '^\[' "$err" | tail -2 | tr '\n' ' '))"
    check '! grep -qiE "segmentation|signal|sanitizer" "$err"' "$name: no crash"
    check 'grep -qE "$pattern" "$err"' "$name: says '$pattern'"
    check '[ -z "$(find "$mnt" -name "*.tmp*")" ]' "$name: no temporary file left ($(find "$mnt" -name '*.tmp*'))"
}

"$synth" --events 60000 --items 3000 --days 10 --seed 5 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || exit 1

# 1. grurec-prep's output at a tenth, half and nine tenths of the room it needs.
need=$(du -sb "$work/ds" | cut -f1)
for pct in 10 50 90; do
    disk $((need * pct / 100))
    "$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$mnt/ds" --quiet 2>"$work/e_prep$pct"
    ended_well "prep at $pct% of $need bytes" $? "$work/e_prep$pct" "disk full|No space left"
    check '[ -z "$(ls -A "$mnt")" ]' "prep at $pct%: no output and no temporary dataset left ($(ls -A "$mnt"))"
done

# The room a checkpoint and a model take (Wy alone is over HDF5's 1 MB chunk cache: its
# write goes to the disk at once, the small tensors at the flush).
F=(--layers 100 --batch-size 32 --n-sample 64 --epochs 1 --log-every 0 --eval-every 0)
"$grurec" train --data "$work/ds" --out "$work/ref" "${F[@]}" >/dev/null 2>&1 || { echo "reference run failed"; exit 1; }
ckpt=$(stat -c %s "$work"/ref/ckpt-*.h5) model=$(stat -c %s "$work/ref/model.h5")
steps=$("$grurec" inspect "$work"/ref/ckpt-*.h5 | sed -n 's/.*step \([0-9]*\),.*/\1/p')
every=$((steps / 3))

# 2. A checkpoint: the first one (no room for it), then a later one (room for one and a half).
for P in 1 2; do
    if [ $P = 2 ] && ! with_mpi; then echo "note: 2 ranks not run (grurec built without MPI)"; continue; fi
    launch() { if [ $P = 1 ]; then "$grurec" "$@"; else "$here/launch/grurec-mpirun" -np 2 "$grurec" "$@"; fi; }
    for room in $((ckpt / 2)) $((ckpt * 3 / 2)); do
        disk $room
        launch train --data "$work/ds" --out "$mnt/run" "${F[@]}" --checkpoint-every $every >/dev/null 2>"$work/e_ck"
        ended_well "$P rank(s), checkpoint in $room bytes" $? "$work/e_ck" \
            "writing checkpoint $mnt/run/ckpt-[0-9]+\.h5 failed \(No space left on device\); the previous checkpoint is kept"
        check '[ "$(grep -c "writing checkpoint" "$work/e_ck")" -eq 1 ]' "$P rank(s): said once"
        kept=$(ls "$mnt/run"/ckpt-*.h5 2>/dev/null | wc -l)
        for c in "$mnt/run"/ckpt-*.h5; do
            [ -e "$c" ] || continue
            check '"$grurec" inspect "$c" >/dev/null 2>&1' "$P rank(s): the checkpoint before the failure verifies"
        done
        if [ $room -gt $ckpt ]; then
            check '[ $kept -ge 1 ]' "$P rank(s): room for one: the first checkpoint was written and kept"
            mount -o remount,size=$((ckpt * 3 + model * 2)) "$mnt"
            launch train --data "$work/ds" --out "$mnt/run" "${F[@]}" --checkpoint-every $every >/dev/null 2>"$work/e_re"
            check '[ $? -eq 0 ] && grep -q "resuming from" "$work/e_re" && [ -f "$mnt/run/model.h5" ]' \
                "$P rank(s): with room again the same command resumes and finishes"
        fi
    done
done

# 3. model.h5: room for the checkpoint (--keep 1) but not for the model beside it.
disk $((ckpt + model / 2 + 65536))
"$grurec" train --data "$work/ds" --out "$mnt/run" "${F[@]}" --keep 1 >/dev/null 2>"$work/e_model"
ended_well "model.h5" $? "$work/e_model" "writing model $mnt/run/model.h5 failed \(No space left on device\)"
check '[ ! -e "$mnt/run/model.h5" ] && "$grurec" inspect "$mnt/run"/ckpt-*.h5 >/dev/null 2>&1' \
    "model.h5: no model file, the final checkpoint verifies"

# 4. model.h5 streamed from sharded tables on 2 ranks (rank 0 writes it in rounds): the
#    same ending, whatever round the disk fills in.
if with_mpi; then
    mpi2() { "$here/launch/grurec-mpirun" -np 2 "$grurec" "$@"; }
    mpi2 train --data "$work/ds" --out "$work/ref_sh" "${F[@]}" --item-tables sharded --keep 1 >/dev/null 2>&1 ||
        { echo "sharded reference run failed"; exit 1; }
    parts=$(du -cb "$work"/ref_sh/ckpt-* | tail -1 | cut -f1)
    disk $((parts + model / 2 + 65536))
    mpi2 train --data "$work/ds" --out "$mnt/run" "${F[@]}" --item-tables sharded --keep 1 >/dev/null 2>"$work/e_msh"
    ended_well "model.h5 (sharded, 2 ranks)" $? "$work/e_msh" \
        "writing model $mnt/run/model.h5 failed \(No space left on device\)"
    check '[ ! -e "$mnt/run/model.h5" ]' "model.h5 (sharded, 2 ranks): no model file"
else
    echo "note: the sharded model.h5 case not run (grurec built without MPI)"
fi
finish
