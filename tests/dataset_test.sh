#!/usr/bin/env bash
# A dataset's files belong together (issue 18, finding 6): a shard of another dataset, of
# another split or in another shard's place, and a meta.h5 of another dataset, are each
# refused with exit 2 naming the shard and both fingerprints (or places), before training
# on anything; a dataset of the older format (no seal) is refused with "re-run grurec-prep";
# the same data prepared again has the same fingerprint (models keep matching it).
# usage: dataset_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" dataset-test
command -v h5unjam >/dev/null || skip_all "dataset_test: h5unjam (hdf5-tools) is not installed"

"$synth" --events 12000 --items 150 --days 10 --seed 3 --out "$work/a.tsv" 2>/dev/null
"$synth" --events 12000 --items 150 --days 10 --seed 4 --out "$work/b.tsv" 2>/dev/null
"$prep" --input "$work/a.tsv" --test-days 1 --shards 2 --out "$work/a" --quiet || exit 1
"$prep" --input "$work/b.tsv" --test-days 1 --shards 2 --out "$work/b" --quiet || exit 1
"$prep" --input "$work/a.tsv" --test-days 1 --shards 2 --out "$work/a_again" --quiet || exit 1
fp() { "$grurec" inspect "$1" | sed -n 's/.*fingerprint \([0-9a-f]*\).*/\1/p'; }
fa=$(fp "$work/a") fb=$(fp "$work/b")
check '[ -n "$fa" ] && [ "$fa" != "$fb" ]' "two datasets, two fingerprints ($fa, $fb)"
check '[ "$(fp "$work/a_again")" = "$fa" ]' "the same data prepared again has the same fingerprint"
F=(--layers 8 --batch-size 16 --n-sample 8 --epochs 1 --log-every 0)

# Runs grurec train on dataset $work/d: exit 2 and the line WANT, nothing trained.
refused() {  # WHAT WANT
    local what=$1 want=$2
    rm -rf "$work/run"
    "$grurec" train --data "$work/d" --out "$work/run" "${F[@]}" >/dev/null 2>"$work/err"
    local rc=$?
    check '[ $rc -eq 2 ] && grep -qF "$want" "$work/err"' "$what: exit 2 with '$want' (got $rc: $(tail -1 "$work/err"))"
    check '[ ! -e "$work/run/model.h5" ]' "$what: nothing trained"
}
fresh() { rm -rf "$work/d"; cp -r "$work/a" "$work/d"; }

fresh
"$grurec" train --data "$work/d" --out "$work/run" "${F[@]}" >/dev/null 2>"$work/err"
check '[ $? -eq 0 ]' "the dataset as prepared trains ($(tail -1 "$work/err"))"

shard=train/shard-00000-of-00002.h5
fresh; cp "$work/b/$shard" "$work/d/$shard"
refused "a train shard of another dataset" "$work/d/$shard: a shard of dataset $fb, this dataset is $fa"
fresh; cp "$work/b/test/shard-00001-of-00002.h5" "$work/d/test/shard-00001-of-00002.h5"
refused "a test shard of another dataset" "$work/d/test/shard-00001-of-00002.h5: a shard of dataset $fb, this dataset is $fa"
fresh; cp "$work/b/meta.h5" "$work/d/meta.h5"
refused "meta.h5 of another dataset" "a shard of dataset $fa, this dataset is $fb"
fresh; cp "$work/a/test/shard-00000-of-00002.h5" "$work/d/$shard"
refused "a test shard among the train shards" "$work/d/$shard: a shard of the test split, found among the train shards"
fresh; cp "$work/a/train/shard-00001-of-00002.h5" "$work/d/$shard"
refused "shard 1 in shard 0's place" "$work/d/$shard: shard 1 of 2, but its name and meta.h5 say shard 0 of 2"
fresh; cp "$work/a_again/$shard" "$work/d/$shard"
"$grurec" train --data "$work/d" --out "$work/run2" "${F[@]}" >/dev/null 2>"$work/err"
check '[ $? -eq 0 ]' "a shard of the same data prepared again is the same dataset's ($(tail -1 "$work/err"))"

# The older format: no seal (h5unjam takes the user block away, as format 1 had none).
fresh; h5unjam -i "$work/a/meta.h5" -o "$work/d/meta.h5" >/dev/null
refused "an unsealed meta.h5" "$work/d/meta.h5: written by an earlier grurec-prep (dataset format 1) or not by grurec-prep: re-run grurec-prep"
fresh; h5unjam -i "$work/a/$shard" -o "$work/d/$shard" >/dev/null
refused "an unsealed shard" "$work/d/$shard: written by an earlier grurec-prep"
# ... and a file that is no dataset file at all.
fresh; cp "$work/a.tsv" "$work/d/meta.h5"
refused "a text file as meta.h5" "$work/d/meta.h5: not an HDF5 file"
finish
