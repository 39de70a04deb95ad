#!/usr/bin/env bash
# Training speed on one process and one thread against the official GRU4Rec (PyTorch,
# 1 thread, same machine class): events/s (next-item targets per second, data loading
# and evaluation excluded), peak RSS, and the achieved GFLOP/s in matrix products
# (2·m·n·k each) beside a measured single-thread sgemm peak and, for the product-bound
# configurations, beside the GFLOP/s of their step's products run alone (the ceiling).
# usage: bench/train_bench.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${2:-${TMPDIR:-/tmp}/grurec-train-bench}
mkdir -p "$work"
data=$here/../shared/data/diginetica
if [ -f "$data/train.tsv.gz" ]; then
    src="Diginetica (published split)"
    "$build/grurec" inspect "$work/digi" >/dev/null 2>&1 || "$build/data-prep/grurec-prep" --input "$data/train.tsv.gz" \
        --test-input "$data/test.tsv.gz" --keep-repeats --min-item-support 1 --time-format order --shards 1 \
        --out "$work/digi" --force --quiet
else  # same size class: 43k items, 1M events
    src="synthetic (../shared/data absent)"
    "$build/grurec" inspect "$work/digi" >/dev/null 2>&1 || { "$build/data-prep/grurec-synth" --events 1000000 --items 43097 --out "$work/synth.tsv";
        "$build/data-prep/grurec-prep" --input "$work/synth.tsv" --test-days 2 --min-item-support 1 --shards 1 \
        --out "$work/digi" --force --quiet; }
fi
# The two vCPUs of this machine class run at different speeds, which change from minute
# to minute (pinned sgemm readings of 90 and 147 GFLOP/s side by side). So each
# configuration runs once on each core, pinned, between two sgemm readings on that core.
# "% core": a run's GFLOP/s over the better of its own core's two readings, the higher of
# the two runs. "% peak": the faster run's GFLOP/s over the highest reading of the whole
# benchmark, the stricter figure (the target's).
source "$here/bench/cores.sh"
peak_gflops=0 peak=
measure_peak() {  # CORE VAR: VAR = the reading on CORE (GFLOP/s); the highest is kept
    local line g
    line=$(taskset -c "$1" "$build/bench/grurec-sgemm-peak" 2048)  # the best of five products
    g=$(awk '{print $(NF-1)}' <<<"$line")
    if awk -v a="$g" -v b="$peak_gflops" 'BEGIN {exit !(a > b)}'; then peak_gflops=$g; peak=$line; fi
    printf -v "$2" '%s' "$g"
}
echo "data: $src"
results=()
# The ceiling of a product-bound configuration: its step's matrix products alone, the
# same calls (OpenBLAS and our kernel, src/backend/sgemm.c) with nothing between them
# (bench/step_products.c), on the run's core. U, the step's mean number of distinct
# output columns, follows from the run's FLOPs: a one-layer step with an H-wide input
# counts 32·M·H² + 6·M·H·U.
ceil_gflops=0
measure_ceiling() {  # CORE M H GFLOPS SECONDS STEPS (the run's)
    local u g
    u=$(awk -v g="$4" -v t="$5" -v s="$6" -v m="$2" -v h="$3" \
        'BEGIN {printf "%.0f", (g * t * 1e9 / s - 32 * m * h * h) / (6 * m * h)}')
    g=$(taskset -c "$1" "$build/bench/grurec-step-products" "$2" "$3" "$u" | awk '{print $(NF-1)}')
    if awk -v a="$g" -v b="$ceil_gflops" 'BEGIN {exit !(a > b)}'; then ceil_gflops=$g; fi
}
field() { sed -E "s/.*\"$1\": ([0-9.e+-]+).*/\\1/" <<<"$2"; }  # NAME JSON_LINE: the number
flag_value() {  # FLAG ARGS…: the value that follows FLAG
    local f=$1; shift
    while [ $# -gt 1 ]; do [ "$1" = "$f" ] && { echo "$2"; return; }; shift; done
}
run() {  # name steps official target flags…
    local name=$1 steps=$2 off=$3 target=$4; shift 4
    local line eps=0 gf=0 rss e g all= core p1 p2 own=0 r
    ceil_gflops=0
    for core in "${cores[@]}"; do
        measure_peak "$core" p1
        rm -rf "$work/run-$name"  # (a finished run there would be resumed, not rerun)
        /usr/bin/time -v taskset -c "$core" "$build/grurec" train --data "$work/digi" --out "$work/run-$name" --threads 1 \
            --epochs 1 --max-steps "$steps" --eval-every 0 --log-every 0 "$@" >/dev/null 2>"$work/$name.err" \
            || { cat "$work/$name.err" >&2; exit 1; }
        line=$(grep -m1 '"type": "epoch"' "$work/run-$name/metrics.jsonl")
        e=$(field events_per_s "$line")
        g=$(field gflops "$line")
        if [[ $target == *%* ]]; then measure_ceiling "$core" "$(flag_value --batch-size "$@")" \
            "$(flag_value --layers "$@")" "$g" "$(field seconds "$line")" "$(field steps "$line")"; fi
        measure_peak "$core" p2
        if awk -v a="$e" -v b="$eps" 'BEGIN {exit !(a > b)}'; then eps=$e; gf=$g; fi
        r=$(awk -v g="$g" -v a="$p1" -v b="$p2" 'BEGIN {print 100 * g / (a > b ? a : b)}')
        if awk -v a="$r" -v b="$own" 'BEGIN {exit !(a > b)}'; then own=$r; fi
        all="$all${all:+,}$g"
    done
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2/1024}' "$work/$name.err")
    results+=("$name $eps $off $target $gf $own $ceil_gflops $all $rss")
}
run top1_paper 20000 39183 "3x" --loss top1 --final-act tanh --layers 100 --embedding onehot --batch-size 50 \
    --dropout-hidden 0.5 --learning-rate 0.01 --momentum 0 --n-sample 0
run xe100_rsc15best 6000 5488 "3x" --loss cross-entropy --embedding shared --layers 100 --batch-size 32 \
    --dropout-hidden 0.4 --learning-rate 0.2 --momentum 0.2 --n-sample 2048 --sample-alpha 0.5 --logq 1
run bprmax_digibest5 400 2915 "1.25x,60%" --loss bpr-max --final-act elu-1 --embedding shared --layers 512 \
    --batch-size 128 --dropout-embed 0.5 --dropout-hidden 0.3 --learning-rate 0.05 --momentum 0.15 --n-sample 2048 \
    --sample-alpha 0.3 --bpreg 0.9
run xe1000 300 745 "1.25x,60%" --loss cross-entropy --embedding shared --layers 1000 --batch-size 50 \
    --n-sample 2048 --sample-alpha 0.5 --learning-rate 0.05
echo "$peak (the highest of 16 readings, two on the run's core around every run)"
printf '%-22s %10s %10s %7s %9s %9s %7s %7s %8s %-9s %s\n' name "events/s" official ratio target GFLOP/s "% peak" "% core" \
    ceiling "peak RSS" "GFLOP/s of the run on each core"
for r in "${results[@]}"; do
    read -r n e o t g own ceil all rss <<<"$r"
    awk -v n="$n" -v e="$e" -v o="$o" -v t="$t" -v g="$g" -v p="$peak_gflops" -v own="$own" -v c="$ceil" -v r="$rss" \
        -v all="$all" 'BEGIN {cl = c > 0 ? sprintf("%7.0f%%", 100 * c / p) : "       -";
        printf "%-22s %10.0f %10.0f %6.2fx %9s %9.1f %6.0f%% %6.0f%% %s %-9s %s\n", n, e, o, e/o, t, g, 100*g/p, own, cl, r, all}'
done
echo "ceiling: the step's matrix products alone (bench/step_products.c: the trainer's calls, OpenBLAS and its own"
echo "kernel, nothing between them), the better of the two cores, over the same peak: the most its products allow"
