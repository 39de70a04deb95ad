#!/usr/bin/env bash
# Accuracy on the published Diginetica split against the official GRU4Rec (issue: each
# Recall@20 / MRR@20 at least the official figure minus 0.005). Trains and evaluates the
# four configurations (conservative ties, all 43,097 items) and prints a table.
# usage: bench/accuracy.sh [BUILD_DIR] [WORK_DIR] [NAME…]   (about 30 min on one core)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${2:-${TMPDIR:-/tmp}/grurec-accuracy}
shift 2 2>/dev/null || shift $#
data=$here/../shared/data/diginetica
[ -f "$data/train.tsv.gz" ] || { echo "accuracy: $data is absent: nothing to measure" >&2; exit 0; }
mkdir -p "$work"
if ! "$build/grurec" inspect "$work/digi" >/dev/null 2>&1; then  # (absent, or of an older format)
    "$build/data-prep/grurec-prep" --format gru4rec --input "$data/train.tsv.gz" --test-input "$data/test.tsv.gz" \
        --keep-repeats --min-item-support 1 --time-format order --shards 1 --out "$work/digi" --force --quiet
fi
declare -A flags official
flags[top1_paper]="--loss top1 --final-act tanh --layers 100 --embedding onehot --batch-size 50 --dropout-hidden 0.5 --learning-rate 0.01 --momentum 0 --n-sample 0 --epochs 10"
official[top1_paper]="0.0934 0.0243"
flags[bpr_paper]="--loss bpr --final-act tanh --layers 100 --embedding onehot --batch-size 50 --dropout-hidden 0.2 --learning-rate 0.05 --momentum 0.2 --n-sample 0 --epochs 10"
official[bpr_paper]="0.2852 0.0816"
flags[xe100_rsc15best]="--loss cross-entropy --embedding shared --layers 100 --batch-size 32 --dropout-hidden 0.4 --learning-rate 0.2 --momentum 0.2 --n-sample 2048 --sample-alpha 0.5 --logq 1 --epochs 10"
official[xe100_rsc15best]="0.4988 0.1661"
flags[bprmax_digibest5]="--loss bpr-max --final-act elu-1 --embedding shared --layers 512 --batch-size 128 --dropout-embed 0.5 --dropout-hidden 0.3 --learning-rate 0.05 --momentum 0.15 --n-sample 2048 --sample-alpha 0.3 --bpreg 0.9 --epochs 5"
official[bprmax_digibest5]="0.5402 0.1818"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(top1_paper bpr_paper xe100_rsc15best bprmax_digibest5)
for n in "${names[@]}"; do
    [ -n "${flags[$n]:-}" ] || { echo "accuracy: unknown configuration $n" >&2; exit 2; }
    if [ ! -f "$work/$n.json" ]; then
        # shellcheck disable=SC2086
        "$build/grurec" train --data "$work/digi" --out "$work/run-$n" ${flags[$n]} --eval-every 0 --log-every 60 \
            >"$work/$n.log" 2>&1
        "$build/grurec" eval --data "$work/digi" --model "$work/run-$n" --ties conservative --json >"$work/$n.json"
    fi
done
printf '%-18s %11s %11s %11s %11s %8s\n' name "R@20 ours" "R@20 off." "MRR@20 ours" "MRR@20 off." verdict
for n in "${names[@]}"; do
    read -r r_off m_off <<<"${official[$n]}"
    python3 - "$work/$n.json" "$n" "$r_off" "$m_off" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); name = sys.argv[2]; r_off = float(sys.argv[3]); m_off = float(sys.argv[4])
r, mrr = m["recall@20"], m["mrr@20"]
ok = r >= r_off - 0.005 and mrr >= m_off - 0.005
print(f"{name:<18} {r:11.4f} {r_off:11.4f} {mrr:11.4f} {m_off:11.4f} {'ok' if ok else 'BELOW':>8}   ({m['predictions']} predictions)")
PY
done
