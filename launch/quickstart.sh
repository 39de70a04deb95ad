#!/usr/bin/env bash
# The main job end to end on a fresh Debian 12 machine: install dependencies, build,
# make the built-in synthetic click log, prepare it, train and evaluate GRU4Rec.
# usage: launch/quickstart.sh [WORK_DIR]   (default ./quickstart)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$repo/quickstart}
"$repo/launch/install-deps.sh"
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$repo/build" -j"$(nproc)"
bin=$repo/build
mkdir -p "$work"

echo "== 1/3 synthetic click log: 1M events, 5000 items, 30 days"
"$bin/data-prep/grurec-synth" --events 1000000 --items 5000 --days 30 --seed 42 --out "$work/clicks.tsv.gz"

echo "== 2/3 prepare: last 2 days = test, 4 train shards"
"$bin/data-prep/grurec-prep" --input "$work/clicks.tsv.gz" --test-days 2 --shards 4 --out "$work/dataset" --force

echo "== 3/3 train GRU4Rec on 2 MPI ranks (cross-entropy, 100 units, 3 epochs), interrupted and resumed"
export GRUREC_OVERSUBSCRIBE=${GRUREC_OVERSUBSCRIBE:-$([ "$(nproc)" -lt 2 ] && echo 1 || echo 0)}
train=("$repo/launch/grurec-mpirun" -np 2 "$bin/grurec" train --data "$work/dataset" --out "$work/run"
       --loss cross-entropy --embedding shared --layers 100 --batch-size 32 --n-sample 512
       --learning-rate 0.1 --momentum 0.1 --epochs 3 --log-every 10)
rm -rf "$work/run"
# --stop-at-step does what a SIGUSR1 (e.g. Slurm's warning before a time limit) does: every
# rank stops at a step boundary, a checkpoint is written, and the exit status is 75.
set +e
"${train[@]}" --stop-at-step 10000
rc=$?
set -e
[ $rc -eq 75 ] || { echo "quickstart: expected exit 75 (checkpointed), got $rc" >&2; exit 1; }
echo "== interrupted (exit 75); the same command resumes from the checkpoint, bit for bit"
"${train[@]}"
"$bin/grurec" inspect "$work/run" --hash
echo "== done: model $work/run/model.h5, metrics $work/run/metrics.jsonl, report $work/run/report.html"
