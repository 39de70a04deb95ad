#!/usr/bin/env bash
# Training speed with one rank per core and with two ranks per core, on two cores, for one
# build or two compared side by side (a build before a change and after it): the waits for
# the other ranks must not burn the cores that the ranks they wait for need (two per core),
# and must not cost speed when every rank has a core of its own (one per core).
# Small synthetic data (grurec-synth, grurec-prep); the top1 configuration of scale_bench.sh.
# ROUNDS rounds (default 5), each running every build in turn (in reverse order every
# other round), one rank per core then two per core; printed: events/s and CPU time per step, the median over the rounds and the
# spread (min-max), the load average before and after (the machine may be shared), and
# with two builds the ratio of the medians and of each round's pair (after / before).
# usage: bench/crowded_bench.sh BUILD_DIR [BEFORE_BUILD_DIR] [ROUNDS] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
after=$(cd "$1" && pwd)
before=${2:+$(cd "$2" && pwd)}
rounds=${3:-5}
work=${4:-${TMPDIR:-/tmp}/grurec-crowded-bench}
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 GRUREC_DEVICE=cpu
source "$here/bench/cores.sh"
[ "${cores[0]}" != "${cores[1]}" ] || { echo "crowded_bench: needs two CPUs" >&2; exit 1; }
if ! "$after/grurec" inspect "$work/ds" >/dev/null 2>&1; then  # (absent, or of an older format)
    "$after/data-prep/grurec-synth" --events 400000 --items 5000 --days 20 --seed 7 --out "$work/clicks.tsv" 2>/dev/null
    "$after/data-prep/grurec-prep" --input "$work/clicks.tsv" --test-days 1 --shards 4 --out "$work/ds" --force --quiet
fi
flags=(--threads 1 --epochs 1 --max-steps 1500 --eval-every 0 --log-every 0 --loss top1 --final-act tanh --layers 100
    --embedding onehot --batch-size 50 --dropout-hidden 0.5 --learning-rate 0.01 --n-sample 0)

# run BUILD P: "events/s cpu-ms/step" of one training on the two cores (the CPU time of
# every rank and of mpirun, per step: what the waits burn shows here). Two ranks: one bound
# to each core (the launcher's default); four: unbound on the two cores, taking turns.
run() {
    local build=$1 P=$2 out="$work/run"
    rm -rf "$out"  # (a finished run there would be resumed, not rerun)
    local over=; [ "$P" -gt 2 ] && over=1
    local TIMEFORMAT=%U+%S  # (bash's time counts the waited-for children: the ranks)
    { time GRUREC_OVERSUBSCRIBE=$over taskset -c "${cores[0]},${cores[1]}" "$here/launch/grurec-mpirun" -np "$P" \
        "$build/grurec" train --data "$work/ds" --out "$out" "${flags[@]}" >/dev/null 2>"$out.err" \
        || { cat "$out.err" >&2; exit 1; }; } 2>"$out.cpu"
    local line; line=$(grep -m1 '"type": "epoch"' "$out/metrics.jsonl")
    awk -v e="$(sed -E 's/.*"events_per_s": ([0-9.e+-]+).*/\1/' <<<"$line")" -v n="$(sed -E 's/.*"steps": ([0-9]+).*/\1/' <<<"$line")" \
        -v cpu="$(cat "$out.cpu")" 'BEGIN {split(cpu, t, "+"); printf "%s:%.3f", e, 1e3 * (t[1] + t[2]) / n}'
}

builds=("$after"); names=(after)
[ -n "$before" ] && builds=("$before" "$after") && names=(before after)
declare -A eps cpu
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; cores ${cores[0]},${cores[1]}; $rounds rounds"
for ((r = 1; r <= rounds; r++)); do
    for P in 2 4; do
        order=("${!builds[@]}")
        [ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${order[@]}" | tac))  # (ABBA: the load drifts)
        for b in "${order[@]}"; do
            got=$(run "${builds[$b]}" $P)
            eps[$P,$b]+="${got%:*} " cpu[$P,$b]+="${got#*:} "
        done
    done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
stats() { tr ' ' '\n' | grep . | sort -g | awk -v f="$1" '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf f "  (" f "-" f ")", m, v[1], v[NR]}'; }
printf '%-22s %-8s %-30s %s\n' "case" build "events/s: median (min-max)" "CPU ms per step: median (min-max)"
for P in 2 4; do
    label="$P ranks on 2 cores"
    for b in "${!builds[@]}"; do
        printf '%-22s %-8s %-30s %s\n' "$label" "${names[$b]}" "$(stats %.0f <<<"${eps[$P,$b]}")" "$(stats %.2f <<<"${cpu[$P,$b]}")"
    done
    if [ -n "$before" ]; then
        ratios=$(paste -d' ' <(tr ' ' '\n' <<<"${eps[$P,1]}" | grep .) <(tr ' ' '\n' <<<"${eps[$P,0]}" | grep .) \
            | awk '{printf "%.2f ", $1 / $2}')
        printf '%-22s %-8s %s; per round: %s\n' "$label" "after/before" \
            "$(awk -v a="$(stats %.0f <<<"${eps[$P,1]}" | awk '{print $1}')" -v b="$(stats %.0f <<<"${eps[$P,0]}" | awk '{print $1}')" \
            'BEGIN {printf "%.2f of the medians", a / b}')" "$ratios"
    fi
done
