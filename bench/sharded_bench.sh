#!/usr/bin/env bash
# Sharded item tables against replicated ones (issue 22; figures in docs/results.md):
#  speed   events/s and bytes moved per step at P = 2 on Diginetica, the xe100_rsc15best
#          flags (bench/train_bench.sh), STEPS steps, best of 3 interleaved rounds;
#  memory  peak RSS per rank at P = 1, 2, 4 on a synthetic catalogue (BIG: a prepared
#          dataset of >= 5 M items), a few steps, replicated against sharded;
#  ab      BASE=BUILD_DIR (e.g. main's): the speed part's runs for BASE and BUILD_DIR,
#          interleaved, 3 rounds (ROUNDS): every run's events/s, then min / median / max
#          and each build's sharded / replicated ratio of medians (a loaded machine: spread);
#  big     2 ranks, sharded, 100 units, momentum, STEPS_BIG steps, then the final test
#          evaluation over the sharded tables (predictions/s over the whole catalogue: give
#          BIG a test split of a few thousand sessions, e.g. --test-input of a small synth).
# usage: bench/sharded_bench.sh [BUILD_DIR] [WORK_DIR] [speed|memory|big]...
#   BIG=DATASET (memory, big): e.g. grurec-synth --items 11000000 --events 33000000 --zipf 0
#   --successors 1 --p-follow 0 --days 10 --seed 3, then grurec-prep --test-days 1
#   --min-item-support 1 --shards 4 (10.4 M items)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${2:-${TMPDIR:-/tmp}/grurec-sharded-bench}
shift $(($# < 2 ? $# : 2))
parts=("${@:-speed}")
mkdir -p "$work"
export GRUREC_OVERSUBSCRIBE=1
mpirun=("$here/launch/grurec-mpirun")
field() { sed -E "s/.*\"$1\": ([0-9.e+-]+).*/\\1/" <<<"$2"; }
xe=(--loss cross-entropy --embedding shared --layers 100 --batch-size 32 --dropout-hidden 0.4 --learning-rate 0.2
    --momentum 0.2 --n-sample 2048 --sample-alpha 0.5 --logq 1)

# The Diginetica dataset of the speed runs, prepared once in WORK.
prepare_digi() {
    local data=$here/../shared/data/diginetica
    "$build/grurec" inspect "$work/digi" >/dev/null 2>&1 || "$build/data-prep/grurec-prep" --input "$data/train.tsv.gz" \
        --test-input "$data/test.tsv.gz" --keep-repeats --min-item-support 1 --time-format order --shards 4 \
        --out "$work/digi" --force --quiet
}
# One speed run: BUILD_DIR MODE STEPS OUT; prints its epoch line.
speed_run() {
    rm -rf "$4"
    "${mpirun[@]}" -np 2 "$1/grurec" train --data "$work/digi" --out "$4" --threads 1 --epochs 1 \
        --max-steps "$3" --eval-every 0 --log-every 0 --item-tables "$2" "${xe[@]}" >/dev/null 2>"$4.err"
    grep -m1 '"type": "epoch"' "$4/metrics.jsonl"
}

for part in "${parts[@]}"; do case $part in
speed)
    prepare_digi
    steps=${STEPS:-1500}
    echo "P = 2, Diginetica, xe100_rsc15best flags, $steps steps; best of 3 interleaved rounds"
    printf '%-11s %10s %16s %16s %10s\n' mode "events/s" "sparse B/step" "dense B/step" "U/step"
    declare -A best=() keep=()
    for round in 1 2 3; do for mode in replicated sharded; do
        line=$(speed_run "$build" $mode "$steps" "$work/speed-$mode")
        e=$(field events_per_s "$line")
        if awk -v a="$e" -v b="${best[$mode]:-0}" 'BEGIN {exit !(a > b)}'; then best[$mode]=$e; keep[$mode]=$line; fi
    done; done
    for mode in replicated sharded; do
        l=${keep[$mode]}
        printf '%-11s %10.0f %16.0f %16.0f %10.1f\n' $mode "$(field events_per_s "$l")" "$(field bytes_sparse_per_step "$l")" \
            "$(field bytes_dense_per_step "$l")" "$(field union_rows_per_step "$l")"
    done
    awk -v a="${best[sharded]}" -v b="${best[replicated]}" 'BEGIN {printf "sharded / replicated: %.3f\n", a / b}'
    ;;
ab)
    : "${BASE:?ab needs BASE=BUILD_DIR (the build to compare with)}"
    base=$(cd "$BASE" && pwd)
    prepare_digi
    steps=${STEPS:-500}
    echo "P = 2, Diginetica, xe100_rsc15best flags, $steps steps; ${ROUNDS:-3} interleaved rounds; events/s"
    declare -A runs=()
    for round in $(seq "${ROUNDS:-3}"); do for b in base build; do for mode in replicated sharded; do
        dir=$build; [ $b = base ] && dir=$base
        e=$(field events_per_s "$(speed_run "$dir" $mode "$steps" "$work/ab-$b-$mode")")
        runs[$b-$mode]+="$e "
        printf 'round %d %-5s %-10s %8.0f\n' "$round" $b $mode "$e"
    done; done; done
    for b in base build; do for mode in replicated sharded; do
        printf '%-5s %-10s min %8.0f  median %8.0f  max %8.0f\n' $b $mode $(tr ' ' '\n' <<<"${runs[$b-$mode]}" | grep . |
            sort -g | awk '{v[NR] = $1} END {print v[1], v[int((NR + 1) / 2)], v[NR]}')
    done
        med() { tr ' ' '\n' <<<"${runs[$b-$1]}" | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
        awk -v a="$(med sharded)" -v r="$(med replicated)" -v b=$b 'BEGIN {printf "%s: sharded / replicated (medians) %.3f\n", b, a / r}'
    done
    ;;
memory)
    : "${BIG:?memory needs BIG=DATASET}"
    echo "peak RSS per rank (MB), $BIG, ${xe[*]}, 20 steps"
    printf '%-11s %3s %s\n' mode P "peak RSS per rank (MB)"
    # (replicated on 4 ranks would need 4 copies: skipped where they exceed this machine's memory)
    avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    for P in 1 2 4; do for mode in replicated sharded; do
        out=$work/mem-$mode-$P
        if [ $mode = replicated ] && [ -f "$work/mem-replicated-1.err" ]; then
            one=$(awk '/^rss_kb/ {print $2}' "$work/mem-replicated-1.err")
            if [ $((P * one)) -gt $((avail_kb * 8 / 10)) ]; then
                printf '%-11s %3d skipped: %d x %.0f MB exceeds 80%% of the %.0f MB available\n' $mode $P $P \
                    "$(awk -v k="$one" 'BEGIN {print k / 1024}')" "$(awk -v k="$avail_kb" 'BEGIN {print k / 1024}')"
                continue
            fi
        fi
        rm -rf "$out"
        "${mpirun[@]}" -np $P /usr/bin/time -f "rss_kb %M" "$build/grurec" train --data "$BIG" --out "$out" --threads 1 \
            --epochs 1 --max-steps 20 --eval-every 0 --log-every 0 --item-tables $mode "${xe[@]}" --n-sample 256 \
            >/dev/null 2>"$out.err" || { tail -3 "$out.err"; continue; }
        printf '%-11s %3d %s   (%s)\n' $mode $P "$(awk '/^rss_kb/ {printf "%.0f ", $2 / 1024}' "$out.err")" \
            "$(grep -o 'model state per rank: [0-9.]* MB' "$out.err")"
    done; done
    ;;
big)
    : "${BIG:?big needs BIG=DATASET}"
    out=$work/big
    rm -rf "$out"
    s=${STEPS_BIG:-500}
    echo "2 ranks, sharded, $BIG, 100 units, momentum, $s steps, checkpointed at the end"
    /usr/bin/time -f "wall %e s" "${mpirun[@]}" -np 2 /usr/bin/time -f "rss_kb %M" "$build/grurec" train --data "$BIG" \
        --out "$out" --threads 1 --epochs 1 --max-steps "$s" --log-every 0 --item-tables sharded --device cpu \
        "${xe[@]}" 2>"$out.err" >/dev/null
    grep -E "state per rank|checkpoint|wrote|rss_kb|wall" "$out.err"
    grep -m1 '"type": "epoch"' "$out/metrics.jsonl"
    ev=$(grep -m1 '"type": "eval"' "$out/metrics.jsonl")
    echo "$ev"
    awk -v n="$(field predictions "$ev")" -v t="$(field seconds "$ev")" \
        'BEGIN {printf "evaluation: %d predictions in %.1f s: %.1f predictions/s\n", n, t, n / t}'
    ;;
*) echo "sharded_bench: unknown part $part" >&2; exit 2 ;;
esac; done
