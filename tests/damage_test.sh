#!/usr/bin/env bash
# Random damage to every file kind grurec reads (issue 18, finding 2), the fast subset of
# bench/damage_bench.sh: 10 random byte flips (GRUREC_DAMAGE_FLIPS) of meta.h5, a shard,
# model.h5 and a checkpoint, each read by grurec (under ASan + UBSan in the sanitizer
# build): every run ends in exit 0 with unchanged results, exit 2 naming the file, or, for
# a checkpoint, the fallback to the one before; never a crash, exit 1 or other results.
# usage: damage_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" damage-test
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/bench/damage_bench.sh" "${GRUREC_DAMAGE_FLIPS:-10}" "$build" "${GRUREC_DAMAGE_SEED:-1}" >"$work/out" 2>&1
rc=$?
cat "$work/out"
check '[ $rc -eq 0 ]' "every damaged file was refused by name, read unchanged, or skipped for the checkpoint before"
for kind in meta shard model checkpoint; do
    check 'grep -q "^$kind " "$work/out"' "$kind files were damaged and read"
done
finish
