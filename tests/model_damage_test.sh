#!/usr/bin/env bash
# Damaged models are never used: one flipped byte inside a tensor's values of model.h5 or
# of a checkpoint, then eval, recommend and inspect (--hash) exit 2 naming the file (its
# seal, io/h5seal.h, fails before HDF5 reads a byte); training skips such a checkpoint as
# damaged and resumes from the one before. A model without a seal (as grurec wrote before
# it sealed its files; made here with h5unjam) is still guarded by its tensors' checksums:
# the readers then name the tensor. The bytes are found in the file by the values h5dump
# reads, so each flip lands inside the named tensor. (bench/damage_bench.sh flips random
# bytes of every file kind.)
# usage: model_damage_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" model-damage-test

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --out "$work/ds" --quiet || exit 1
F=(--layers 32 --batch-size 8 --n-sample 16 --epochs 2 --log-every 0 --eval-every 0 --momentum 0.3)
"$grurec" train --data "$work/ds" --out "$work/run" "${F[@]}" --checkpoint-every 300 --keep 10 >/dev/null 2>&1 ||
    { echo "training failed"; exit 1; }

# Flips one bit of byte K of tensor NAME's values in FILE (located by its first 32 bytes).
flip() {  # FILE NAME K
    local file=$1 name=$2 k=$3
    h5dump -d "$name" -s 0 -c 8 -b LE -o "$work/head.bin" "$file" >/dev/null || return 1
    local pat pos
    pat=$(od -An -v -tx1 "$work/head.bin" | tr -d ' \n')
    pos=$(od -An -v -tx1 "$file" | tr -d ' \n' |
          awk -v p="$pat" '{ i = index($0, p); while (i > 0 && i % 2 == 0) { j = index(substr($0, i + 1), p); i = j ? i + j : 0 } print i }')
    [ "$pos" -gt 0 ] || return 1
    local off=$(((pos - 1) / 2 + k)) byte
    byte=$(od -An -tu1 -j $off -N1 "$file" | tr -d ' ')
    printf "\\x$(printf %02x $((byte ^ 0x10)))" | dd of="$file" bs=1 seek=$off conv=notrunc 2>/dev/null
}

sealed_damage="damaged: its bytes do not match the checksum they were written with"
refused() {  # WHAT FILE WHY COMMAND...: exit 2, one line "FILE: WHY"
    local what=$1 file=$2 why=$3
    shift 3
    "$@" >/dev/null 2>"$work/err"
    local rc=$?
    check '[ $rc -eq 2 ] && grep -q "$file: $why" "$work/err"' \
        "$what: exit 2 naming the file: '$why' (got $rc: $(tail -1 "$work/err"))"
}
readers() {  # FILE WHY: every reader refuses FILE
    refused "inspect --hash $(basename "$1")" "$1" "$2" "$grurec" inspect "$1" --hash
    refused "eval $(basename "$1")" "$1" "$2" "$grurec" eval --data "$work/ds" --model "$1"
    refused "recommend $(basename "$1")" "$1" "$2" "$grurec" recommend --data "$work/ds" --model "$1" --session x
}

hash0=$("$grurec" inspect "$work/run/model.h5" --hash | tail -1)
check '"$grurec" inspect "$work/run/model.h5" | grep -q "checksums: all 5 tensors verify"' "an undamaged model verifies"
for t in params/Wy params/dense params/by; do
    cp "$work/run/model.h5" "$work/m.h5"
    flip "$work/m.h5" /$t 13 || bad "$t's values found in model.h5"
    check '! cmp -s "$work/m.h5" "$work/run/model.h5"' "model.h5: a byte of $t flipped"
    readers "$work/m.h5" "$sealed_damage"
done
check '[ "$("$grurec" inspect "$work/run/model.h5" --hash | tail -1)" = "$hash0" ]' "the original model still reads the same"

# The same model without its seal (h5unjam removes the user block): it reads as before,
# and a flipped value is caught by its tensor's checksum.
h5unjam -i "$work/run/model.h5" -o "$work/plain.h5" >/dev/null
check '[ "$("$grurec" inspect "$work/plain.h5" --hash | tail -1)" = "$hash0" ]' "an unsealed model still reads"
for t in params/Wy params/by; do
    cp "$work/plain.h5" "$work/m.h5"
    flip "$work/m.h5" /$t 13 || bad "$t's values found in the unsealed model"
    readers "$work/m.h5" "damaged: $t fails its checksum"
done

# A checkpoint's parameters and optimizer state.
ck=$(ls "$work/run"/ckpt-*.h5 | sort | tail -1)
cp "$ck" "$work/ck.h5"
flip "$work/ck.h5" /params/Wy 6 || bad "Wy's values found in the checkpoint"
readers "$work/ck.h5" "$sealed_damage"
cp "$ck" "$work/ck2.h5"
flip "$work/ck2.h5" /optim/acc_Wy 9 || bad "acc_Wy's values found in the checkpoint"
refused "inspect: optimizer state" "$work/ck2.h5" "$sealed_damage" "$grurec" inspect "$work/ck2.h5"
cp "$ck" "$work/ck3.h5"
flip "$work/ck3.h5" /state/lanes 0 || bad "the lanes found in the checkpoint"
refused "inspect: lanes" "$work/ck3.h5" "$sealed_damage" "$grurec" inspect "$work/ck3.h5"
h5unjam -i "$ck" -o "$work/ck4.h5" >/dev/null
flip "$work/ck4.h5" /optim/acc_Wy 9 || bad "acc_Wy's values found in the unsealed checkpoint"
refused "inspect: an unsealed checkpoint's optimizer state" "$work/ck4.h5" "damaged: optim/acc_Wy fails its checksum" \
    "$grurec" inspect "$work/ck4.h5"

# Training skips a checkpoint whose values are damaged, naming it, and resumes before it.
cp -r "$work/run" "$work/resume"
rm "$work/resume/model.h5"
newest=$(ls "$work/resume"/ckpt-*.h5 | sort | tail -1)
flip "$newest" /params/Wy 21
"$grurec" train --data "$work/ds" --out "$work/resume" "${F[@]}" --checkpoint-every 300 --keep 10 >/dev/null 2>"$work/e_res"
check '[ $? -eq 0 ] && grep -q "$(basename "$newest") is damaged (its bytes do not match the checksum they were written with): skipped" "$work/e_res"' \
    "a damaged checkpoint is skipped, naming it ($(head -1 "$work/e_res"))"
check 'grep -q "resuming from" "$work/e_res"' "and the run resumes from the one before"
check '[ "$("$grurec" inspect "$work/resume/model.h5" --hash | tail -1)" = "$hash0" ]' \
    "resumed past the damage to the same parameters"
finish
