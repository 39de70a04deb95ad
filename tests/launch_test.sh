#!/usr/bin/env bash
# launch/grurec-mpirun's output: the normal stop (exit 75, checkpointed on request or on a
# signal) prints grurec's own line and no Open MPI banner, while real failures stay
# visible: a wrong --data (grurec's error), a rank killed by a signal, a rank that exits
# non-zero without a word, a program that does not exist (Open MPI's own reports, which
# the wrapper's filter lets through). About 10 s on 2 cores.
# usage: launch_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" launch-test
here=$(cd "$(dirname "$0")/.." && pwd)
export GRUREC_OVERSUBSCRIBE=1
launch() { "$here/launch/grurec-mpirun" -np 2 "$@" >"$work/out" 2>&1; rc=$?; }
banner() { grep -Eq 'Primary job|mpirun detected|mpirun noticed|^-{20}' "$work/out"; }
show() { sed 's/^/    | /' "$work/out" | head -8; }

"$synth" --events 20000 --items 200 --days 5 --seed 1 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || exit 1
F=(--layers 16 --batch-size 8 --n-sample 16 --log-every 0 --eval-every 0)

# 1. the quickstart's interruption: exit 75, grurec's line, no banner
launch "$grurec" train --data "$work/ds" --out "$work/run" "${F[@]}" --epochs 2 --stop-at-step 5
check '[ $rc -eq 75 ] && grep -q "checkpointed at step 5" "$work/out" && ! banner' \
    "stop at step 5: exit 75, grurec's line, no mpirun banner (exit $rc)$(echo; show)"
# ... and USR1 to the wrapper (as a batch script forwards Slurm's) reaches the ranks
"$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" --out "$work/sig" "${F[@]}" --epochs 500 \
    >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do ls "$work/sig"/ckpt-*.h5 >/dev/null 2>&1 && break; sleep 0.2; done  # training has started
kill -USR1 $pid
wait $pid
rc=$?
check '[ $rc -eq 75 ] && grep -q "checkpointed at step" "$work/out" && ! banner' \
    "USR1 to the wrapper: exit 75, no mpirun banner (exit $rc)$(echo; show)"

# 2. real failures keep their message and a non-zero status
launch "$grurec" train --data "$work/no-such-dataset" --out "$work/bad" "${F[@]}"
check '[ $rc -eq 2 ] && grep -q "no-such-dataset/meta.h5: cannot read" "$work/out"' \
    "a wrong --data: exit 2 and grurec's error (exit $rc)$(echo; show)"
launch sh -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && kill -SEGV $$; sleep 1'
check '[ $rc -ne 0 ] && grep -Eq "process rank 1 .*exited on signal 11|grurec-mpirun: .*signal 11 \(SEGV\)" "$work/out"' \
    "a rank killed by SIGSEGV is named (exit $rc)$(echo; show)"
launch sh -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && exit 3; sleep 1'
# (Open MPI names the rank and its code, or at times says only "Primary job terminated
# normally, but 1 process returned a non-zero exit code": then the wrapper's line)
check '[ $rc -eq 3 ] && grep -Eq "Exit code: +3$|grurec-mpirun: mpirun exit status 3: a rank exited with status 3" "$work/out"' \
    "a rank's silent exit 3 is named (exit $rc)$(echo; show)"
launch "$work/no-such-program"
check '[ $rc -ne 0 ] && grep -q "unable to launch the specified application" "$work/out"' \
    "a missing program: non-zero and a line (exit $rc)$(echo; show)"
finish
