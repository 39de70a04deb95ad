#!/usr/bin/env bash
# grurec baseline end to end on a small synthetic dataset: every method runs, --json keys,
# the prediction count (test events - test sessions, as grurec eval), thread count and
# 2 MPI ranks change no figure, the usage errors exit 2.
# usage: baseline_cli_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" baseline-cli
here=$(cd "$(dirname "$0")/.." && pwd)

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/clicks.tsv" 2>/dev/null
"$prep" --input "$work/clicks.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
summary=$(h5dump -a summary "$work/ds/meta.h5" 2>/dev/null | tr -d '\n')
tev=$(sed -E 's/.*"test_events": ([0-9]+).*/\1/' <<<"$summary")
tses=$(sed -E 's/.*"test_sessions": ([0-9]+).*/\1/' <<<"$summary")
get() { sed -E "s/.*\"$1\": ([0-9.]+).*/\\1/" "$2"; }

# 1. pop --json: keys and the prediction count
"$grurec" baseline pop --data "$work/ds" --json >"$work/pop.json" 2>"$work/pop.err"
check '[ $? -eq 0 ]' "baseline pop exits 0"
for key in recall@1 mrr@1 recall@5 mrr@5 recall@10 mrr@10 recall@20 mrr@20 ndcg@1 ndcg@5 ndcg@10 ndcg@20 predictions; do
    check 'grep -q "\"$key\":" "$work/pop.json"' "pop --json has $key"
done
keys=$(grep -o '"[a-z]*@*[0-9]*":' "$work/pop.json" | tr -d '":' | tr '\n' ' ')
check '[ "$keys" = "recall@1 mrr@1 recall@5 mrr@5 recall@10 mrr@10 recall@20 mrr@20 ndcg@1 ndcg@5 ndcg@10 ndcg@20 predictions " ]' \
    "--json keys in order: the recall/mrr pairs as before, then ndcg, then predictions ($keys)"
n1=$(get ndcg@1 "$work/pop.json") r1=$(get recall@1 "$work/pop.json")
n20=$(get ndcg@20 "$work/pop.json") m20=$(get mrr@20 "$work/pop.json") r20=$(get recall@20 "$work/pop.json")
check '[ "$n1" = "$r1" ] && awk -v m="$m20" -v n="$n20" -v r="$r20" "BEGIN {exit !(m <= n && n <= r)}"' \
    "ndcg@1 = recall@1 ($n1), mrr@20 <= ndcg@20 <= recall@20 ($m20 <= $n20 <= $r20)"
check '[ $(wc -l <"$work/pop.json") -eq 1 ]' "--json prints one line on stdout"
pred=$(get predictions "$work/pop.json")
check '[ "$pred" -eq $((tev - tses)) ]' "predictions ($pred) = test events - test sessions ($tev - $tses)"

# 2. every method, same count; the session-aware ones beat popularity on learnable data
for m in spop itemknn bprmf; do
    "$grurec" baseline $m --data "$work/ds" --json >"$work/$m.json" 2>"$work/$m.err"
    check '[ $? -eq 0 ]' "baseline $m exits 0"
    check '[ "$(get predictions "$work/$m.json")" -eq "$pred" ]' "$m makes $pred predictions"
done
r_pop=$(get recall@20 "$work/pop.json") r_knn=$(get recall@20 "$work/itemknn.json")
check 'awk -v a="$r_knn" -v b="$r_pop" "BEGIN {exit !(a > b)}"' "item-KNN beats POP (recall@20 $r_knn > $r_pop)"

# 3. the human table, like grurec eval
"$grurec" baseline itemknn --data "$work/ds" --cutoffs 20 >"$work/table" 2>/dev/null
check 'grep -q "^test: $pred predictions" "$work/table" && grep -qE "^ +cutoff +Recall +MRR +NDCG$" "$work/table"' \
    "table output as grurec eval (cutoff, Recall, MRR, NDCG)"

# 4. threads, ranks and options
"$grurec" baseline itemknn --data "$work/ds" --json --threads 3 >"$work/knn3.json" 2>/dev/null
check 'cmp -s "$work/itemknn.json" "$work/knn3.json"' "--threads 3 gives the same figures"
if with_mpi; then
    GRUREC_OVERSUBSCRIBE=1 timeout 120 "$here/launch/grurec-mpirun" -np 2 "$grurec" baseline itemknn --data "$work/ds" \
        --json >"$work/knn-np2.json" 2>"$work/knn-np2.err"
    check '[ $? -eq 0 ] && [ "$(get predictions "$work/knn-np2.json")" -eq "$pred" ]' "2 ranks: exits 0, same count"
    for key in recall@20 mrr@20 recall@1 ndcg@20 ndcg@1; do
        check '[ "$(get $key "$work/knn-np2.json")" = "$(get $key "$work/itemknn.json")" ]' "2 ranks: same $key"
    done
else
    skip_part "2 ranks: grurec built without MPI"
fi
"$grurec" baseline bprmf --data "$work/ds" --json --factors 8 --epochs 2 --seed 5 >"$work/mf1.json" 2>/dev/null
"$grurec" baseline bprmf --data "$work/ds" --json --factors 8 --epochs 2 --seed 5 >"$work/mf2.json" 2>/dev/null
check 'cmp -s "$work/mf1.json" "$work/mf2.json"' "bprmf: same seed, same figures"
"$grurec" baseline pop --data "$work/ds" --ties standard --cutoffs 20 --json >"$work/std.json" 2>/dev/null
check 'awk -v a="$r_pop" -v b="$(get recall@20 "$work/std.json")" "BEGIN {exit !(a <= b)}"' \
    "conservative never ranks higher than standard"
"$grurec" baseline --help | grep -q "itemknn"
check '[ $? -eq 0 ]' "--help describes the methods"

# 5. errors: exit 2 with one clear line
expect() {  # expect CODE PATTERN WHAT -- ARGS…
    local code=$1 pattern=$2 what=$3
    shift 4
    "$grurec" baseline "$@" >/dev/null 2>"$work/e"
    local rc=$?
    if [ $rc -ne "$code" ] || ! grep -q -- "$pattern" "$work/e"; then bad "$what (exit $rc: $(head -c 300 "$work/e"))"; else ok; fi
}
expect 2 "needs a method" "no method" -- --data "$work/ds"
expect 2 "not 'knn'" "unknown method" -- knn --data "$work/ds"
expect 2 "needs --data" "no --data" -- pop
expect 2 "applies to itemknn only" "knn option given to pop" -- pop --data "$work/ds" --lambda 5
expect 2 "applies to bprmf only" "bprmf option given to itemknn" -- itemknn --data "$work/ds" --factors 5
expect 2 "alpha" "alpha outside 0..1" -- itemknn --data "$work/ds" --alpha 1.5
expect 2 "no valid split" "missing split" -- pop --data "$work/ds" --split valid
expect 2 "meta.h5" "not a dataset" -- pop --data "$work"

finish
