#!/usr/bin/env bash
# grurec recommend end to end on a small synthetic dataset: output formats, ordering,
# --exclude-seen, unknown ids, session files in both formats, batching against single
# sessions, the selection against a full sort, the scoring path against the
# evaluator's, and a model of another dataset.
# usage: recommend_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" recommend-test

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/clicks.tsv" 2>/dev/null
"$prep" --input "$work/clicks.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
"$synth" --events 20000 --items 200 --days 10 --seed 4 --out "$work/other.tsv" 2>/dev/null
"$prep" --input "$work/other.tsv" --test-days 1 --shards 1 --out "$work/other" --quiet || exit 1
"$grurec" train --data "$work/ds" --out "$work/run" --layers 16 --batch-size 8 --n-sample 16 --epochs 2 --log-every 0 \
    >/dev/null 2>"$work/train.err" || { echo "train failed: $(tail -3 "$work/train.err")"; exit 1; }

# The dataset's item ids (index = dense id): the string table /item_ids_bytes, each id
# ended by a NUL, then NULs up to a whole 32-bit word (docs/formats.md).
h5dump -d /item_ids_bytes -b LE -o "$work/ids.bin" "$work/ds/meta.h5" >/dev/null
n=$(h5dump -a n_items "$work/ds/meta.h5" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
tr '\0' '\n' <"$work/ids.bin" | head -n "$n" >"$work/ids"
n_items=$(wc -l <"$work/ids")
check '[ "$n_items" -gt 100 ]' "item ids read from meta.h5 ($n_items)"
id() { sed -n "$(($1 + 1))p" "$work/ids"; }
A=$(id 3) B=$(id 17) C=$(id 42) D=$(id 99) E=$(id 7)
rec() { "$grurec" recommend --model "$work/run" --data "$work/ds" "$@"; }

# 1. one session: k lines RANK<TAB>ITEM<TAB>SCORE, known ids, scores non-increasing
rec --session "$A,$B,$C" -k 10 >"$work/s1" 2>"$work/s1.err"
check '[ $? -eq 0 ]' "recommend --session exits 0"
check '[ $(wc -l <"$work/s1") -eq 10 ]' "-k 10 gives 10 lines"
check 'awk -F"\t" "NF != 3 || \$1 != NR {exit 1}" "$work/s1"' "lines are RANK<TAB>ITEM<TAB>SCORE with ranks 1..k"
check '! cut -f2 "$work/s1" | grep -qvxF -f "$work/ids"' "recommended items are original ids of the dataset"
check 'awk -F"\t" "NR > 1 && \$3 > prev {exit 1} {prev = \$3}" "$work/s1"' "scores are non-increasing"
check '[ ! -s "$work/s1.err" ]' "nothing on stderr for known ids"

# 2. the selection against a full sort: all items, then the top 10 of them
rec --session "$A,$B,$C" -k "$n_items" >"$work/all"
check '[ $(wc -l <"$work/all") -eq "$n_items" ]' "-k N_ITEMS lists every item"
check 'cmp -s <(head -10 "$work/all") "$work/s1"' "top 10 by partial selection = first 10 of the full ranking"
argmax=$(awk -F"\t" 'NR == 1 || $3 > m {m = $3; it = $2} END {print it}' "$work/all")
check '[ "$argmax" = "$(head -1 "$work/s1" | cut -f2)" ]' "top-1 ($(head -1 "$work/s1" | cut -f2)) = argmax over all scores ($argmax)"
check 'grep -qxF -e "$A" -e "$B" -e "$C" <(cut -f2 "$work/all")' "without --exclude-seen the session's items are ranked too"

# 3. --exclude-seen removes the session's items (and only them)
rec --session "$A,$B,$C" -k "$n_items" --exclude-seen >"$work/ex"
check '[ $(wc -l <"$work/ex") -eq $((n_items - 3)) ]' "--exclude-seen leaves N-3 items"
check '! cut -f2 "$work/ex" | grep -qxF -e "$A" -e "$B" -e "$C"' "--exclude-seen removes the seen items"
check 'cmp -s <(cut -f2,3 "$work/ex") <(cut -f2,3 "$work/all" | grep -v -e "^$A	" -e "^$B	" -e "^$C	")' \
    "--exclude-seen keeps the order of the other items"
rec --session "$A,$B,$C" -k 10 --exclude-seen >"$work/ex10"
check '[ $(wc -l <"$work/ex10") -eq 10 ]' "--exclude-seen still gives k items"

# 4. the scoring path equals the evaluator's (score all items at every step), bit for bit
rec --session "$A,$B,$C,$D,$E,$A" -k 25 >"$work/fast"
rec --session "$A,$B,$C,$D,$E,$A" -k 25 --full-scoring >"$work/full"
check 'cmp -s "$work/fast" "$work/full"' "forward-only steps give the same output as scoring every step"
for emb in onehot 8; do  # the other input modes, and two layers
    "$grurec" train --data "$work/ds" --out "$work/run-$emb" --layers 16,12 --embedding $emb --batch-size 8 --n-sample 16 \
        --epochs 1 --eval-every 0 --log-every 0 >/dev/null 2>&1
    "$grurec" recommend --model "$work/run-$emb" --data "$work/ds" --session "$A,$B,$C,$D,$E,$A" -k 25 >"$work/fast-$emb"
    "$grurec" recommend --model "$work/run-$emb" --data "$work/ds" --session "$A,$B,$C,$D,$E,$A" -k 25 --full-scoring >"$work/full-$emb"
    check '[ -s "$work/fast-$emb" ] && cmp -s "$work/fast-$emb" "$work/full-$emb"' "same with --embedding $emb and layers 16,12"
done

# 5. --json
rec --session "$A,$B,$C" -k 10 --json >"$work/j1"
check '[ $(wc -l <"$work/j1") -eq 1 ]' "--json: one object per session"
check 'grep -q "^{\"session\": \"1\", \"items\": \[\"" "$work/j1" && grep -q "\"scores\": \[" "$work/j1"' "--json has session, items, scores"
if command -v python3 >/dev/null; then
    check 'python3 -c "
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert set(o) == {\"session\", \"items\", \"scores\"}, o.keys()
assert len(o[\"items\"]) == 10 and len(o[\"scores\"]) == 10
assert o[\"items\"] == [l.split(\"\t\")[1] for l in open(sys.argv[2])]
" "$work/j1" "$work/s1"' "--json is valid JSON with the plain output's items"
fi

# 6. unknown ids: reported and skipped
rec --session "$A,no-such-item,$B" -k 10 >"$work/u" 2>"$work/u.err"
check '[ $? -eq 0 ]' "unknown id: exit 0"
check 'grep -qx "grurec: unknown item .no-such-item. skipped" "$work/u.err"' "unknown id reported on stderr"
rec --session "$A,$B" -k 10 >"$work/ab"
check 'cmp -s "$work/u" "$work/ab"' "unknown id skipped: same as the session without it"
rec --session "nope1,nope2" >"$work/none" 2>"$work/none.err"
check '[ $? -eq 0 ] && [ ! -s "$work/none" ] && grep -q "no known item" "$work/none.err"' "a session of unknown ids gets no recommendation, and says so"

# 7. a file of sessions, one per line (with and without a session id)
printf '%s,%s,%s\ns2\t%s,%s\nnope\n\n%s\n' "$A" "$B" "$C" "$D" "$E" "$B" >"$work/lines"
rec --input "$work/lines" -k 10 >"$work/l.out" 2>"$work/l.err"
check '[ $? -eq 0 ]' "--input lines: exit 0"
check '[ $(wc -l <"$work/l.out") -eq 30 ]' "--input lines: 10 lines for each of the 3 sessions with known items"
check 'awk -F"\t" "NF != 4 {exit 1}" "$work/l.out"' "--input plain output is SESSION<TAB>RANK<TAB>ITEM<TAB>SCORE"
check '[ "$(cut -f1 "$work/l.out" | uniq | tr "\n" " ")" = "1 s2 5 " ]' "session ids: the given one, else the line number; input order kept"
check 'cmp -s <(grep "^1	" "$work/l.out" | cut -f2,3) <(cut -f1,2 "$work/s1")' "a session in a batch gets the items it gets alone"
check 'grep -q "session .3. has no known item" "$work/l.err"' "--input: session without known items reported"
check 'grep -q "sessions/s" "$work/l.err"' "--input prints the throughput"
rec --input "$work/lines" -k 5 --json >"$work/l.json" 2>/dev/null
check '[ $(wc -l <"$work/l.json") -eq 4 ] && grep -q "\"session\": \"3\", \"items\": \[\], \"scores\": \[\]" "$work/l.json"' \
    "--input --json: one object per session, empty lists without known items"

# 8. the gru4rec TSV (events of a session out of time order are put in order)
printf 'SessionId\tItemId\tTime\nx1\t%s\t30\nx1\t%s\t10\nx1\t%s\t20\nx2\t%s\t5\nx2\t%s\t6\n' "$C" "$A" "$B" "$D" "$E" >"$work/g.tsv"
rec --input "$work/g.tsv" -k 10 >"$work/g.out" 2>/dev/null
check '[ $? -eq 0 ] && [ "$(cut -f1 "$work/g.out" | uniq | tr "\n" " ")" = "x1 x2 " ]' "gru4rec TSV: two sessions in order"
check 'cmp -s <(grep "^x1	" "$work/g.out" | cut -f2-) <(grep "^1	" "$work/l.out" | cut -f2-)' "gru4rec TSV: events sorted by time, same as the line format"
check 'cmp -s <(grep "^x2	" "$work/g.out" | cut -f2-) <(grep "^s2	" "$work/l.out" | cut -f2-)' "gru4rec TSV: second session same as the line format"
printf 'SessionId\tItemId\tTime\nx1\n' >"$work/g-bad.tsv"
rec --input "$work/g-bad.tsv" >/dev/null 2>"$work/gb.err"
check '[ $? -eq 2 ] && grep -q "g-bad.tsv:2:" "$work/gb.err"' "a TSV line with missing columns is an input error naming FILE:LINE"

# 9. batches: real sessions of mixed lengths in batches of 7 = one session at a time
head -3001 "$work/clicks.tsv" >"$work/many.tsv"
rec --input "$work/many.tsv" -k 5 --batch 7 >"$work/b7" 2>"$work/b7.err"
rec --input "$work/many.tsv" -k 5 --batch 1 >"$work/b1" 2>/dev/null
nsess=$(cut -f1 "$work/b7" | uniq | wc -l)
check '[ "$nsess" -gt 100 ]' "many sessions recommended ($nsess)"
check 'cmp -s <(cut -f1-3 "$work/b7") <(cut -f1-3 "$work/b1")' "batches of 7 sessions give the items of one-at-a-time"
check 'paste "$work/b7" "$work/b1" | awk -F"\t" "{d = \$4 - \$8; if (d < 0) d = -d; if (d > 1e-4 * (1 + (\$4 < 0 ? -\$4 : \$4))) exit 1}"' \
    "batched scores equal single-session scores (within 1e-4)"
echo "  $(grep sessions/s "$work/b7.err")"

# 10. errors
rec --session "$A" --input "$work/lines" >/dev/null 2>&1
check '[ $? -eq 2 ]' "--session and --input together: usage error"
# A model stands on its own: model.h5 copied alone to an empty folder recommends the same
# items without --data; a model without ids (an older grurec's) needs --data and says so.
mkdir "$work/serve" && cp "$work/run/model.h5" "$work/serve/"
"$grurec" recommend --model "$work/serve/model.h5" --session "$A,$B,$C" -k 10 >"$work/lone" 2>"$work/lone.err"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$work/lone" "$work/s1"' "a lone model.h5 recommends without --data, as with it$(cat "$work/lone.err")"
cp "$work/run/model.h5" "$work/old.h5" && "$build/tests/h5setattr" "$work/old.h5" --unlink items
"$grurec" recommend --model "$work/old.h5" --session "$A" >/dev/null 2>"$work/old.err"
rc=$?
check '[ $rc -eq 2 ] && grep -q "old.h5: this model holds no item ids.*give --data" "$work/old.err"' \
    "a model without ids and no --data: exit 2 and what to do ($(cat "$work/old.err"))"
"$grurec" recommend --model "$work/old.h5" --data "$work/ds" --session "$A,$B,$C" -k 10 >"$work/old" 2>/dev/null
check '[ $? -eq 0 ] && cmp -s "$work/old" "$work/s1"' "a model without ids recommends with --data"
rec --session "$A" -k 0 >/dev/null 2>&1
check '[ $? -eq 2 ]' "-k 0: usage error"
"$grurec" recommend --model "$work/run" --data "$work/other" --session "$A" >/dev/null 2>"$work/mm.err"
check '[ $? -eq 2 ] && grep -q "another dataset" "$work/mm.err"' "a model of another dataset exits 2"
if [ -w /dev/full ]; then  # a full disk is not a complete list: exit 1 with the reason
    rec --input "$work/lines" >/dev/full 2>"$work/full.err"
    check '[ $? -eq 1 ] && grep -q "standard output failed: No space left on device" "$work/full.err"' "writing to a full disk exits 1"
fi

# 11. --verbose reports the latency (measured, with its target, by bench/recommend_bench.sh)
rec --session "$A,$B,$C,$D,$E,$A,$B,$C,$D,$E" --verbose >/dev/null 2>"$work/lat"
check 'grep -q "latency" "$work/lat"' "--verbose reports the latency of a session"

finish
