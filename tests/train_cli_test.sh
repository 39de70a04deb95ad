#!/usr/bin/env bash
# grurec train / eval end to end on a small synthetic dataset: files written, metrics
# fields, JSON keys, prediction count, determinism, configs, and error exits.
# usage: train_cli_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" train-cli

"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/clicks.tsv" 2>/dev/null
"$prep" --input "$work/clicks.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed"; exit 1; }
"$synth" --events 20000 --items 200 --days 10 --seed 4 --out "$work/other.tsv" 2>/dev/null
"$prep" --input "$work/other.tsv" --test-days 1 --shards 1 --out "$work/other" --quiet || exit 1
small="--layers 16 --batch-size 8 --n-sample 16 --epochs 2 --log-every 0"

# 1. train writes the model and the metrics
"$grurec" train --data "$work/ds" --out "$work/run1" $small >"$work/out1" 2>"$work/err1"
check '[ $? -eq 0 ]' "train exits 0"
check '[ -f "$work/run1/model.h5" ]' "model.h5 written"
check '[ $(grep -c "\"type\": \"epoch\"" "$work/run1/metrics.jsonl") -eq 2 ]' "one epoch object per epoch"
for key in epoch loss events_per_s seconds; do
    check 'grep "\"type\": \"epoch\"" "$work/run1/metrics.jsonl" | head -1 | grep -q "\"$key\":"' "epoch object has $key"
done
check 'grep -q "\"type\": \"eval\"" "$work/run1/metrics.jsonl"' "evaluation recorded at the end"
check 'grep -qE "^ +cutoff +Recall +MRR +NDCG$" "$work/out1"' "train prints the metrics (Recall, MRR, NDCG)"
check '"$grurec" eval --help | grep -q "NDCG@K"' "eval --help describes NDCG@K"
check 'grep "\"type\": \"eval\"" "$work/run1/metrics.jsonl" | tail -1 | grep -q "\"ndcg@20\":"' "metrics.jsonl evaluations have ndcg@20"

# 2. eval --json: keys and the number of predictions (test events - test sessions)
"$grurec" eval --data "$work/ds" --model "$work/run1" --json >"$work/eval.json"
check '[ $? -eq 0 ]' "eval exits 0"
for key in recall@1 mrr@1 recall@5 recall@10 recall@20 mrr@20 ndcg@1 ndcg@20 predictions; do
    check 'grep -q "\"$key\":" "$work/eval.json"' "eval --json has $key"
done
summary=$(h5dump -a summary "$work/ds/meta.h5" 2>/dev/null | tr -d '\n')
tev=$(sed -E 's/.*"test_events": ([0-9]+).*/\1/' <<<"$summary")
tses=$(sed -E 's/.*"test_sessions": ([0-9]+).*/\1/' <<<"$summary")
pred=$(sed -E 's/.*"predictions": ([0-9]+).*/\1/' "$work/eval.json")
check '[ "$pred" -eq $((tev - tses)) ]' "predictions ($pred) = test events - test sessions ($tev - $tses)"
r20=$(sed -E 's/.*"recall@20": ([0-9.]+).*/\1/' "$work/eval.json")
check 'awk -v r="$r20" "BEGIN {exit !(r > 0.2)}"' "the model learned something (recall@20 $r20 > 0.2 on learnable synthetic data)"
"$grurec" eval --data "$work/ds" --model "$work/run1/model.h5" --ties standard --cutoffs 20 --json >"$work/std.json"
rs=$(sed -E 's/.*"recall@20": ([0-9.]+).*/\1/' "$work/std.json")
check 'awk -v a="$r20" -v b="$rs" "BEGIN {exit !(a <= b)}"' "conservative ties never rank higher than standard ($r20 <= $rs)"

# 3. same seed, same bits; another seed, other bits
"$grurec" train --data "$work/ds" --out "$work/run2" $small --eval-every 0 >/dev/null 2>&1
"$grurec" train --data "$work/ds" --out "$work/run3" $small --eval-every 0 --seed 7 >/dev/null 2>&1
params() { "$grurec" inspect "$1" --hash 2>/dev/null | tail -1 | grep . || echo "no model: $1"; }  # (exact: h5dump prints floats to 6 digits only)
d1=$(params "$work/run1/model.h5")
d2=$(params "$work/run2/model.h5")
d3=$(params "$work/run3/model.h5")
check '[ "$d1" = "$d2" ]' "same seed gives bitwise identical parameters"
check '[ "$d1" != "$d3" ]' "another seed gives other parameters"
check '! grep -q "\"type\": \"eval\"" "$work/run2/metrics.jsonl"' "--eval-every 0 turns evaluation off"
# Our weight-gradient kernel (src/backend/sgemm.c, C of 2^18 values and up: 300 units with a
# shared embedding) gives OpenBLAS's bits, on which the published accuracy figures rest.
big="--layers 300 --embedding shared --batch-size 32 --n-sample 64 --epochs 1 --max-steps 40 --eval-every 0 --log-every 0"
"$grurec" train --data "$work/ds" --out "$work/own" $big >/dev/null 2>&1
GRUREC_GEMM=openblas "$grurec" train --data "$work/ds" --out "$work/oblas" $big >/dev/null 2>&1
d_own=$(params "$work/own/model.h5")
check '[ "$d_own" = "$(params "$work/oblas/model.h5")" ] && [ "${d_own#no model}" = "$d_own" ]' \
    "the own weight-gradient kernel and OpenBLAS give the same parameters"

# 4. --config file, flags win
printf 'layers = 12\nbatch_size = 8\n# comment\nn-sample = 8\nepochs = 1\n' >"$work/cfg"
"$grurec" train --data "$work/ds" --out "$work/run4" --config "$work/cfg" --layers 10 --eval-every 0 --log-every 0 >/dev/null 2>&1
check 'grep -q "\"layers\": \"10\"" "$work/run4/metrics.jsonl" && grep -q "\"batch-size\": \"8\"" "$work/run4/metrics.jsonl"' "config file read, flags override it"

# 4b. --name=value as well as --name value; floats print as given; config-file lines count as flags
"$grurec" train --data="$work/ds" --out="$work/eq" --layers=16 --batch-size=8 --n-sample=16 --epochs=1 --log-every=0 \
    --learning-rate=0.1 --momentum 0.1 --dropout-hidden=0.3 --eval-every=0 >/dev/null 2>"$work/eeq"
check '[ $? -eq 0 ] && [ -f "$work/eq/model.h5" ]' "train --epochs=1 (the = spelling) trains: $(head -c 200 "$work/eeq")"
check 'grep -q "\"epochs\": \"1\"" "$work/eq/metrics.jsonl"' "--epochs=1 is the setting used"
check 'grep -q "\"learning-rate\": \"0.1\", \"momentum\": \"0.1\"" "$work/eq/metrics.jsonl"' "metrics.jsonl's config shows 0.1, not 0.100000001"
"$grurec" inspect "$work/eq" >"$work/ieq"
check 'grep -q "\"learning-rate\": \"0.1\"" "$work/ieq" && grep -q "\"dropout-hidden\": \"0.3\"" "$work/ieq" && ! grep -q "0000000" "$work/ieq"' \
    "inspect shows the settings without float noise"
"$grurec" report "$work/eq" 2>/dev/null
check 'grep -q ">0.1<" "$work/eq/report.html" && ! grep -q "0.100000001" "$work/eq/report.html"' "the report shows learning-rate 0.1"
printf 'final-act = tanh\neval-every = 0\n' >"$work/cfg2"
"$grurec" train --data "$work/ds" --out "$work/cfg2run" $small --epochs 1 --config="$work/cfg2" >/dev/null 2>&1
check 'grep -q "\"final-act\": \"tanh\"" "$work/cfg2run/metrics.jsonl" && ! grep -q "\"type\": \"eval\"" "$work/cfg2run/metrics.jsonl"' \
    "final-act and eval-every from a config file are used (not replaced by the defaults)"

# 5. errors: exit 2 with one clear line
expect_fail() {  # code pattern description cmd…
    local code=$1 pattern=$2 what=$3; shift 3
    "$@" >"$work/o" 2>"$work/e"
    local rc=$?
    if [ $rc -ne "$code" ] || ! grep -q -- "$pattern" "$work/e"; then bad "$what (exit $rc: $(head -c 300 "$work/e"))"; else ok; fi
}
# (a model of another dataset is evaluated by matching items by id: tests/warm_start_test.sh;
# one without ids to match by is refused)
cp "$work/run1/model.h5" "$work/no-ids.h5" && "$build/tests/h5setattr" "$work/no-ids.h5" --unlink items
expect_fail 2 "another dataset.*no item ids" "a model of another dataset without item ids is refused" "$grurec" eval \
    --data "$work/other" --model "$work/no-ids.h5"
expect_fail 2 "unknown loss" "unknown loss" "$grurec" train --data "$work/ds" --out "$work/x" --loss nope
expect_fail 2 "unknown option" "unknown flag" "$grurec" train --data "$work/ds" --out "$work/x" --bogus 1
expect_fail 2 "unknown option --fast" "an unknown flag without a value is unknown" "$grurec" train --data "$work/ds" --out "$work/x" --fast
expect_fail 2 "unknown option --fast" "grurec --fast (no command)" "$grurec" --fast
for cmd in eval baseline recommend inspect report; do
    expect_fail 2 "unknown option --fast (see grurec $cmd --help)" "$cmd: an unknown flag is unknown" "$grurec" $cmd --fast
done
expect_fail 2 "\-\-epochs takes a whole number from 0 to 1000000, not '5x'" "--epochs 5x" "$grurec" train --data "$work/ds" --out "$work/x" --epochs 5x
expect_fail 2 "\-\-epochs takes a whole number" "--epochs=5x" "$grurec" train --data "$work/ds" --out "$work/x" --epochs=5x
expect_fail 2 "\-\-epochs takes a whole number" "--epochs= (empty)" "$grurec" train --data "$work/ds" --out "$work/x" --epochs=
expect_fail 2 "\-\-comm-timeout takes a number above 0" "--comm-timeout 5s" "$grurec" train --data "$work/ds" --out "$work/x" --comm-timeout 5s
expect_fail 2 "\-\-keep takes a whole number" "--keep overflow" "$grurec" train --data "$work/ds" --out "$work/x" --keep 99999999999999999999
expect_fail 2 "\-\-tf32 takes no value" "a flag given a value" "$grurec" train --data "$work/ds" --out "$work/x" --tf32=1
expect_fail 2 "\-\-json takes no value" "eval --json=1" "$grurec" eval --data "$work/ds" --model "$work/run1" --json=1
expect_fail 2 "\-\-batch takes a whole number" "eval --batch 5x" "$grurec" eval --data "$work/ds" --model "$work/run1" --batch 5x
expect_fail 2 ":1: unknown final activation 'nope'" "a config file line's value is checked like the flag's" "$grurec" train --data "$work/ds" --out "$work/x" --config <(printf 'final-act = nope\n')
check '[ ! -e "$work/x" ]' "nothing is written after a usage error"
expect_fail 2 "meta.h5" "missing dataset named" "$grurec" train --data "$work/none" --out "$work/x"
expect_fail 2 "unknown setting" "unknown config key with its line" "$grurec" train --data "$work/ds" --out "$work/x" --config <(printf 'nope = 1\n')
# Control characters from a file are escaped inside the error line (a CRLF config edited badly).
expect_fail 2 "unknown loss 'bpr\\\\rmax'" "a stray carriage return is shown as \\r" "$grurec" train --data "$work/ds" --out "$work/x" --config <(printf 'loss = bpr\rmax\n')
cr=$(printf '\r')
check '! grep -q "$cr" "$work/e"' "no raw carriage return in the error line"
expect_fail 2 "not an HDF5 file" "a model file that is not HDF5" "$grurec" eval --data "$work/ds" --model "$work/cfg"
# An output that cannot be a run directory is the user's to fix: exit 2, one line naming it.
expect_fail 2 "$work/cfg: cannot use as run directory: Not a directory" "train --out a plain file" "$grurec" train --data "$work/ds" --out "$work/cfg"
check '[ "$(wc -l <"$work/e")" -eq 1 ]' "train --out a plain file: one line"
expect_fail 2 "$work/no/such: cannot create run directory: No such file or directory" "train --out in a missing directory" "$grurec" train --data "$work/ds" --out "$work/no/such"
# A run that cannot fit in memory is refused before allocating, with the figures (exit 2).
expect_fail 2 "train: this run needs [0-9.]* GiB of memory per rank, [0-9.]* GiB is available" "--batch-size 1000000 is refused with the figure" "$grurec" train --data "$work/ds" --out "$work/huge" --batch-size 1000000
check '[ "$(wc -l <"$work/e")" -eq 1 ] && [ ! -e "$work/huge/metrics.jsonl" ]' "the memory refusal is one line and writes nothing"
# An error that every rank detects is printed once (by rank 0); every rank exits 2.
if with_mpi; then
    for args in "--loss nope" "--batch-size 1000000"; do
        GRUREC_OVERSUBSCRIBE=1 timeout 120 "$(dirname "$0")/../launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" \
            --out "$work/two" $args >/dev/null 2>"$work/e"
        rc=$?
        n=$(grep -c '^grurec: ' "$work/e")
        check '[ $rc -eq 2 ] && [ "$n" -eq 1 ]' "2 ranks, train $args: exit $rc, $n 'grurec:' lines (want 2 and 1): $(head -c 300 "$work/e")"
    done
else
    echo "SKIP: 2-rank error lines (grurec built without MPI)"
fi
# A learning rate of 1e30 blows the scores up: the run must stop naming the step.
expect_fail 1 "loss became" "non-finite loss stops training" "$grurec" train --data "$work/ds" --out "$work/nan" $small --learning-rate 1e30 --loss bpr-max
check '[ ! -f "$work/nan/model.h5" ]' "no model is written after a non-finite loss"
GRUREC_GEMM=mkl expect_fail 1 "GRUREC_GEMM=mkl" "an unknown GRUREC_GEMM is refused" "$grurec" train --data "$work/ds" --out "$work/gemm" $small
check '[ ! -e "$work/gemm" ]' "nothing is written when GRUREC_GEMM is refused"

finish
