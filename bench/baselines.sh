#!/usr/bin/env bash
# The ICLR 2016 baselines (POP, S-POP, item-KNN, BPR-MF) on the published Diginetica split,
# evaluated like the GRU (all 43,097 items, conservative ties): Recall / MRR at 1, 5, 10, 20, NDCG@20
# and the wall time of each (fit + evaluation). For orientation, the task statement quotes
# item-KNN at Recall@20 0.3610 / MRR@20 0.1106 on this split.
# usage: bench/baselines.sh [BUILD_DIR] [WORK_DIR] [THREADS]   (a few minutes on one core)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${2:-${TMPDIR:-/tmp}/grurec-baselines}
threads=${3:-1}
data=$here/../shared/data/diginetica
[ -f "$data/train.tsv.gz" ] && [ -f "$data/test.tsv.gz" ] ||
    { echo "baselines: $data is absent: nothing to measure" >&2; exit 0; }
mkdir -p "$work"
if ! "$build/grurec" inspect "$work/digi" >/dev/null 2>&1; then  # (absent, or of an older format)
    "$build/data-prep/grurec-prep" --format gru4rec --input "$data/train.tsv.gz" --test-input "$data/test.tsv.gz" \
        --keep-repeats --min-item-support 1 --time-format order --shards 1 --out "$work/digi" --force --quiet
fi
methods=(pop spop itemknn bprmf)
for m in "${methods[@]}"; do
    t0=$(date +%s.%N)
    "$build/grurec" baseline "$m" --data "$work/digi" --ties conservative --cutoffs 1,5,10,20 --threads "$threads" \
        --json >"$work/$m.json" 2>"$work/$m.log"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}' >"$work/$m.seconds"
done
printf '%-8s %9s %9s %9s %9s %9s %9s %9s %9s %9s %8s %12s\n' method R@1 MRR@1 R@5 MRR@5 R@10 MRR@10 R@20 MRR@20 NDCG@20 \
    seconds predictions
for m in "${methods[@]}"; do
    python3 - "$work/$m.json" "$m" "$(cat "$work/$m.seconds")" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); name = sys.argv[2]; secs = float(sys.argv[3])
cols = [j[f"{k}@{c}"] for c in (1, 5, 10, 20) for k in ("recall", "mrr")] + [j["ndcg@20"]]
print(f"{name:<8} " + " ".join(f"{v:9.4f}" for v in cols) + f" {secs:8.2f} {j['predictions']:12d}")
PY
done
echo "(conservative ties; threads per baseline: $threads; logs in $work)"
