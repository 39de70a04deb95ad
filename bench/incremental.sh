#!/usr/bin/env bash
# Daily retraining on a sliding window: warm start against training from scratch.
# A drifting synthetic log (grurec-synth: items released every day, popularity halving
# every few days) of DAYS days. For each of the last N_DAYS days d, the dataset is the
# window of W days before d for training and day d itself as test (grurec-prep --since
# --until --test-days 1). Per day: (a) from scratch, SCRATCH_EPOCHS epochs; (b) warm start
# from the previous day's warm model (the first from the scratch model of the day before
# the first), WARM_EPOCHS epochs. Both are evaluated on day d (Recall@20, MRR@20, the
# conservative ties). Training seconds are the sum of train's epoch times (metrics.jsonl;
# data loading and evaluation excluded), runs one after the other, pinned to one core. Prints a table and the means, and whether the target
# holds: mean Recall@20 of warm >= scratch - 0.005 at <= 1/4 of the mean training time.
# usage: bench/incremental.sh [BUILD_DIR] [WORK_DIR]
#   env: DAYS (16) W (7) N_DAYS (6) EVENTS_PER_DAY (100000) ITEMS (20000) NEW_PER_DAY (300)
#        HALF_LIFE (4) SCRATCH_EPOCHS (8) WARM_EPOCHS (2) LAYERS (64) BATCH (64) N_SAMPLE (512)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${2:-${TMPDIR:-/tmp}/grurec-incremental}
DAYS=${DAYS:-16} W=${W:-7} N_DAYS=${N_DAYS:-6} EVENTS_PER_DAY=${EVENTS_PER_DAY:-100000} ITEMS=${ITEMS:-20000}
NEW_PER_DAY=${NEW_PER_DAY:-300} HALF_LIFE=${HALF_LIFE:-4} SCRATCH_EPOCHS=${SCRATCH_EPOCHS:-8} WARM_EPOCHS=${WARM_EPOCHS:-2}
LAYERS=${LAYERS:-64} BATCH=${BATCH:-64} N_SAMPLE=${N_SAMPLE:-512}
T0=1600000000 D=86400
rm -rf "$work" && mkdir -p "$work"
export GRUREC_DEVICE=cpu
synth=(--events $((DAYS * EVENTS_PER_DAY)) --items "$ITEMS" --days "$DAYS" --new-items-per-day "$NEW_PER_DAY"
       --half-life "$HALF_LIFE" --seed 11)
echo "log: grurec-synth ${synth[*]}"
"$build/data-prep/grurec-synth" "${synth[@]}" --out "$work/log.tsv" 2>/dev/null
F=(--layers "$LAYERS" --batch-size "$BATCH" --n-sample "$N_SAMPLE" --log-every 0 --threads 1)
echo "model: ${F[*]}; scratch $SCRATCH_EPOCHS epochs, warm start $WARM_EPOCHS epochs; window $W days + 1 test day"
echo
pin=(taskset -c 0)
command -v taskset >/dev/null || pin=()

prep() {  # DAY: window [DAY - W, DAY + 1) in days, test = DAY
    "$build/data-prep/grurec-prep" --input "$work/log.tsv" --since $((T0 + ($1 - W) * D)) --until $((T0 + ($1 + 1) * D)) \
        --test-days 1 --shards 1 --out "$work/d$1" --quiet
}
train() {  # DAY RUN EPOCHS [ARGS]: prints "seconds recall mrr"
    local day=$1 run=$2 epochs=$3
    shift 3
    "${pin[@]}" "$build/grurec" train --data "$work/d$day" --out "$work/$run" "${F[@]}" --epochs "$epochs" "$@" \
        >"$work/$run.out" 2>"$work/$run.err" || { echo "train $run failed: $(tail -3 "$work/$run.err")" >&2; exit 1; }
    local secs recall mrr
    secs=$(grep '"type": "epoch"' "$work/$run/metrics.jsonl" | sed 's/.*"seconds": \([0-9.]*\).*/\1/' |
           awk '{ s += $1 } END { printf "%.2f", s }')
    recall=$(grep '"type": "eval"' "$work/$run/metrics.jsonl" | tail -1 | sed 's/.*"recall@20": \([0-9.]*\).*/\1/')
    mrr=$(grep '"type": "eval"' "$work/$run/metrics.jsonl" | tail -1 | sed 's/.*"mrr@20": \([0-9.]*\).*/\1/')
    echo "$secs $recall $mrr"
}

first=$((DAYS - N_DAYS))
prep $((first - 1))
read -r _ _ _ < <(train $((first - 1)) "warm$((first - 1))" "$SCRATCH_EPOCHS")  # the chain's start
printf '%-5s %9s %10s %9s   %9s %10s %9s   %s\n' day scratch_s R@20 MRR@20 warm_s R@20 MRR@20 "warm start line"
sum=$(mktemp)
for ((d = first; d < DAYS; d++)); do
    prep $d
    read -r ss sr sm < <(train $d "scratch$d" "$SCRATCH_EPOCHS")
    read -r ws wr wm < <(train $d "warm$d" "$WARM_EPOCHS" --warm-start "$work/warm$((d - 1))")
    line=$(sed -n 's/.*warm start from [^:]*: //p' "$work/warm$d.err")
    printf '%-5s %9s %10s %9s   %9s %10s %9s   %s\n' "$d" "$ss" "$sr" "$sm" "$ws" "$wr" "$wm" "$line"
    echo "$ss $sr $sm $ws $wr $wm" >>"$sum"
done
awk -v scratch="$SCRATCH_EPOCHS" -v warm="$WARM_EPOCHS" '
    { for (i = 1; i <= 6; i++) s[i] += $i; n++ }
    END {
        for (i = 1; i <= 6; i++) m[i] = s[i] / n
        printf "%-5s %9.2f %10.4f %9.4f   %9.2f %10.4f %9.4f\n", "mean", m[1], m[2], m[3], m[4], m[5], m[6]
        printf "\nwarm start: Recall@20 %+.4f against scratch, %.2f of its training time (%d vs %d epochs)\n",
               m[5] - m[2], m[4] / m[1], warm, scratch
        ok = m[5] >= m[2] - 0.005 && m[4] <= m[1] / 4
        printf "target (Recall@20 >= scratch - 0.005 at <= 1/4 of the time): %s\n", ok ? "met" : "NOT met"
    }' "$sum"
rm -f "$sum"
