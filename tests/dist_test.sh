#!/usr/bin/env bash
# Multi-rank training and evaluation under mpirun (2 and 4 ranks, oversubscribed):
# shared item tables equal a replica per rank, and replicas stay bitwise equal; 2 ranks on identical shards equal 1 rank on that shard;
# sparse and whole-table exchange, shared memory and messages, 4 ranks on 2 cores give the same bits;
# distributed evaluation equals the single-process one; a settings mismatch and a killed
# rank stop every rank.
# usage: dist_test.sh BUILD_DIR
set -uo pipefail
export GRUREC_DEVICE=cpu  # the CPU backend (these tests compare CPU bits)
build=$1
here=$(cd "$(dirname "$0")/.." && pwd)
grurec=$build/grurec
export GRUREC_OVERSUBSCRIBE=1
run() { "$here/launch/grurec-mpirun" "$@"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# (the exact checksum of every parameter: h5dump prints floats to 6 digits only)
params() { "$grurec" inspect "$1" --hash 2>/dev/null | tail -1 | grep . || echo "no model: $1"; }

"$build/data-prep/grurec-synth" --events 40000 --items 300 --days 10 --seed 5 --out "$work/clicks.tsv" 2>/dev/null
"$build/data-prep/grurec-prep" --input "$work/clicks.tsv" --test-days 1 --shards 4 --out "$work/ds" --quiet || exit 1
small=(--layers 16 --batch-size 8 --n-sample 16 --epochs 1 --log-every 0 --comm-timeout 30)

# 1. on one machine the ranks share the item tables, each updating its part; a replica per rank
#    (GRUREC_SHARED_MODEL=0, replicas compared every step) and messages (GRUREC_COMM_SHM=0)
#    give the same bits; 2 and 4 ranks, with dropout and momentum
for P in 2 4; do
    for mode in "" replicas messages; do
        case $mode in replicas) env=(GRUREC_SHARED_MODEL=0) ;; messages) env=(GRUREC_COMM_SHM=0) ;; *) env=() ;; esac
        if env "${env[@]}" "$here/launch/grurec-mpirun" -np $P "$grurec" train --data "$work/ds" --out "$work/r$P$mode" \
            "${small[@]}" --dropout-hidden 0.2 --momentum 0.3 --check-every 1 --eval-every 0 >/dev/null 2>"$work/e$P$mode"; then ok
        else bad "$P ranks${mode:+ ($mode)}: training with --check-every 1 failed: $(tail -2 "$work/e$P$mode")"; fi
    done
    grep -q "tables kept there once" "$work/e$P" && ! grep -q "tables kept there once" "$work/e${P}replicas" \
        && ok || bad "$P ranks: the start-up line does not say whether the tables are shared"
    [ "$(params "$work/r$P/model.h5")" = "$(params "$work/r${P}replicas/model.h5")" ] \
        && [ "$(params "$work/r$P/model.h5")" = "$(params "$work/r${P}messages/model.h5")" ] \
        && ok || bad "$P ranks: the shared tables give other parameters than the replicas"
done
grep -q '"bytes_sparse_per_step"' "$work/r2/metrics.jsonl" && ok || bad "metrics.jsonl has the exchange statistics"
# ... and 4 ranks on 2 cores (taking turns: their waits sleep instead of polling) give those bits too
source "$here/bench/cores.sh"
two_cores=(taskset -c "${cores[0]},${cores[1]}")
if [ "${cores[0]}" = "${cores[1]}" ]; then
    echo "SKIP: 4 ranks on 2 cores (this process may use one CPU only)"
elif "${two_cores[@]}" "$here/launch/grurec-mpirun" -np 4 "$grurec" train --data "$work/ds" --out "$work/r4crowded" "${small[@]}" \
    --dropout-hidden 0.2 --momentum 0.3 --check-every 1 --eval-every 0 >/dev/null 2>"$work/e4crowded"; then
    [ "$(params "$work/r4/model.h5")" = "$(params "$work/r4crowded/model.h5")" ] && ok \
        || bad "4 ranks on 2 cores give other parameters than 4 ranks"
else bad "4 ranks on 2 cores: training failed: $(tail -2 "$work/e4crowded")"; fi

# 2. identical shards on 2 ranks == 1 rank on that shard (dropout 0, momentum 0)
cp -r "$work/ds" "$work/same2"
cp "$work/ds/train/shard-00000-of-00004.h5" "$work/same2/train/shard-00001-of-00004.h5"
for s in 2 3; do rm "$work/same2/train/shard-0000$s-of-00004.h5"; done
for s in 0 1; do mv "$work/same2/train/shard-0000$s-of-00004.h5" "$work/same2/train/shard-0000$s-of-00002.h5";
    "$build/tests/h5setattr" "$work/same2/train/shard-0000$s-of-00002.h5" n_shards 2;
    "$build/tests/h5setattr" "$work/same2/train/shard-0000$s-of-00002.h5" shard $s; done
"$build/tests/h5setattr" "$work/same2/meta.h5" train_n_shards 2
cp -r "$work/same2" "$work/one"
rm "$work/one/train/shard-00001-of-00002.h5"
mv "$work/one/train/shard-00000-of-00002.h5" "$work/one/train/shard-00000-of-00001.h5"
"$build/tests/h5setattr" "$work/one/train/shard-00000-of-00001.h5" n_shards 1
"$build/tests/h5setattr" "$work/one/meta.h5" train_n_shards 1
eq=(--layers 16 --batch-size 8 --n-sample 16 --epochs 2 --log-every 0 --eval-every 0 --dropout-hidden 0 --momentum 0)
"$grurec" train --data "$work/one" --out "$work/p1" "${eq[@]}" >/dev/null 2>&1 || bad "1-rank run on one shard"
run -np 2 "$grurec" train --data "$work/same2" --out "$work/p2" "${eq[@]}" >/dev/null 2>&1 || bad "2-rank run on identical shards"
[ "$(params "$work/p1/model.h5")" = "$(params "$work/p2/model.h5")" ] && ok || bad "2 ranks on identical shards differ from 1 rank"

# 3. --sparse-exchange off gives the same bits as on
run -np 2 "$grurec" train --data "$work/same2" --out "$work/p2off" "${eq[@]}" --sparse-exchange off >/dev/null 2>&1 \
    || bad "2-rank run with --sparse-exchange off"
[ "$(params "$work/p2/model.h5")" = "$(params "$work/p2off/model.h5")" ] && ok || bad "sparse exchange on/off differ"
# ... and so does the exchange by messages instead of shared memory (GRUREC_COMM_SHM=0)
GRUREC_COMM_SHM=0 run -np 2 "$grurec" train --data "$work/same2" --out "$work/p2msg" "${eq[@]}" >/dev/null 2>&1 \
    || bad "2-rank run with GRUREC_COMM_SHM=0"
[ "$(params "$work/p2/model.h5")" = "$(params "$work/p2msg/model.h5")" ] && ok || bad "shared memory and messages differ"
on=$(grep -m1 '"type": "epoch"' "$work/p2/metrics.jsonl" | sed -E 's/.*"bytes_sparse_per_step": ([0-9.]+).*/\1/')
off=$(grep -m1 '"type": "epoch"' "$work/p2off/metrics.jsonl" | sed -E 's/.*"bytes_sparse_per_step": ([0-9.]+).*/\1/')
awk -v a="$on" -v b="$off" 'BEGIN {exit !(a < b)}' && ok || bad "sparse bytes ($on) below whole-table bytes ($off)"

# 4. distributed evaluation equals single-process evaluation
"$grurec" eval --data "$work/ds" --model "$work/r2" --json >"$work/ev1" 2>/dev/null
run -np 2 "$grurec" eval --data "$work/ds" --model "$work/r2" --json >"$work/ev2" 2>/dev/null
cmp -s "$work/ev1" "$work/ev2" && ok || bad "2-rank evaluation differs: $(cat "$work/ev1") vs $(cat "$work/ev2")"
run -np 4 "$grurec" eval --data "$work/ds" --model "$work/r2" --json >"$work/ev4" 2>/dev/null
cmp -s "$work/ev1" "$work/ev4" && ok || bad "4-rank evaluation differs"

# 5. a settings mismatch between ranks stops every rank with a line naming the rank
run -np 1 "$grurec" train --data "$work/ds" --out "$work/mm" "${small[@]}" --layers 16 : \
    -np 1 "$grurec" train --data "$work/ds" --out "$work/mm" "${small[@]}" --layers 12 >/dev/null 2>"$work/emm"
rc=$?
[ $rc -ne 0 ] && grep -q "rank 1" "$work/emm" && ok || bad "mismatch not reported (exit $rc): $(head -3 "$work/emm")"

# 6. fewer shards than ranks is refused with advice
run -np 2 "$grurec" train --data "$work/one" --out "$work/few" "${small[@]}" >/dev/null 2>"$work/efew"
[ $? -ne 0 ] && grep -q "shards" "$work/efew" && ok || bad "fewer shards than ranks not refused: $(head -2 "$work/efew")"

# 7. a rank killed with SIGKILL mid-run: the others exit non-zero in under 2 x --comm-timeout,
#    rank 1 named (by Open MPI or grurec's deadline; when Open MPI says only "Primary job
#    terminated normally", as it does at times, the launcher's line names the signal);
#    2 ranks, and 4 on 2 cores (the others mostly asleep in their waits)
for P in 2 4; do
    on=(); [ $P = 4 ] && on=("${two_cores[@]}")
    t0=$(date +%s)
    timeout 120 "${on[@]}" "$here/launch/grurec-mpirun" -np $P sh -c 'if [ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then (sleep 3; kill -9 $$) & fi;
        exec "$0" "$@"' "$grurec" train --data "$work/ds" --out "$work/kill$P" --layers 64 --batch-size 8 --n-sample 256 \
        --epochs 50 --log-every 0 --eval-every 0 --comm-timeout 10 >/dev/null 2>"$work/ekill$P"
    rc=$?; t=$(( $(date +%s) - t0 ))
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $t -lt 23 ] && grep -q "rank 1 .*signal 9\|rank 1 did not answer\|grurec-mpirun: .*signal 9 (KILL)" "$work/ekill$P" && ok \
        || bad "killed rank of $P: exit $rc after $t s: $(tail -2 "$work/ekill$P")"
done

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
