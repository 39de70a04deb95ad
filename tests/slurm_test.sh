#!/usr/bin/env bash
# slurm/grurec.sbatch on a real single-node Slurm cluster started here (munged, slurmctld,
# slurmd, no systemd; tests/slurm/start-cluster.sh): a 2-task job that receives USR1 (as
# before its time limit) while training checkpoints (exit 75), requeues itself, resumes
# and finishes with the same parameters, bit for bit, as an uninterrupted 2-rank mpirun
# run with the same flags. Skips, visibly, when not root or when Slurm is not installed
# or does not start (launch/install-deps.sh --tests installs slurm-wlm and munge). It waits
# on the job's progress, not a fixed time: about a minute on 2 quiet cores, longer on busy ones.
# usage: slurm_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1" slurm-test
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || skip_all "needs root to start slurmctld, slurmd and munged"
export PATH=$PATH:/usr/sbin
for b in slurmctld slurmd munged sbatch scontrol srun; do
    command -v $b >/dev/null || skip_all "$b is not installed (launch/install-deps.sh --tests)"
done

cluster=$work/cluster jobid=
chmod 755 "$work"  # munged (user munge) must reach its socket and key under it
stop() {
    if [ -n "$jobid" ]; then  # do not leave ranks behind
        scancel "$jobid" 2>/dev/null
        for _ in $(seq 30); do
            scontrol show job "$jobid" -o 2>/dev/null | grep -Eq 'JobState=(RUNNING|COMPLETING)' || break
            sleep 0.5
        done
    fi
    "$here/tests/slurm/stop-cluster.sh" "$cluster"
    rm -rf "$work"
}
trap stop EXIT
export SLURM_CONF=$cluster/slurm.conf
msg=$("$here/tests/slurm/start-cluster.sh" "$cluster" 2 2>&1) || skip_all "the Slurm cluster did not start: ${msg//$'\n'/ }"

# Slurm runs a copy of the batch script from its spool: it finds grurec by $GRUREC.
export GRUREC_OVERSUBSCRIBE=1 GRUREC=$(readlink -f "$grurec")
params() { "$grurec" inspect "$1" --hash | tail -1; }
"$synth" --events 30000 --items 300 --days 10 --seed 3 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || exit 1
# A few seconds of training on 2 quiet cores (minutes on loaded ones): the test sends the
# signal itself, so the training need not outlast a time limit.
F=(--layers 128 --batch-size 32 --n-sample 256 --epochs 40 --log-every 0 --eval-every 0 --momentum 0.3)

start=$SECONDS
"$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" --out "$work/full" "${F[@]}" >"$work/full.log" 2>&1 ||
    bad "uninterrupted 2-rank run: $(tail -2 "$work/full.log")"
echo "slurm_test: uninterrupted run took $((SECONDS - start)) s"

# The signal Slurm sends before the time limit (--signal=B:USR1@N in the script) comes from
# slurmctld to the batch script; `scancel --batch --signal=USR1` sends it the same way, but
# when the test wants it: once the first epoch's checkpoint is written (the ranks are
# training), instead of 10-40 s into a 1-minute attempt, which a loaded machine may spend
# starting up and a fast one may outlast.
start=$SECONDS
jobid=$(cd "$work" && sbatch --parsable --ntasks 2 --time 30 --output "$work/job.out" \
    "$here/slurm/grurec.sbatch" "$work/ds" "$work/run" "${F[@]}" 2>"$work/sbatch.err")
[ -n "$jobid" ] || { bad "sbatch refused the job: $(cat "$work/sbatch.err")"; finish; exit; }
# Wait on progress, not a fixed time: the job's state and restarts, the run's newest
# checkpoint and the size of its metrics.jsonl. It fails after `stall` s without any
# change (a requeue takes ~20 s, an epoch on a loaded machine a few s) or `limit` s in all.
stall=300 limit=1500
state= restarts= seen= moved=$SECONDS signalled=0 why=
while :; do
    job=$(scontrol show job "$jobid" -o 2>/dev/null)
    state=$(grep -o 'JobState=[A-Z_]*' <<<"$job" | cut -d= -f2)
    restarts=$(grep -o 'Restarts=[0-9]*' <<<"$job" | cut -d= -f2)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
    newest=$(ls "$work/run" 2>/dev/null | grep '^ckpt-' | tail -1)
    if [ $signalled = 0 ] && [ "$state" = RUNNING ] && [ -n "$newest" ]; then
        scancel --batch --signal=USR1 "$jobid" && signalled=1
    fi
    now="$state $restarts $newest $(wc -c <"$work/run/metrics.jsonl" 2>/dev/null)"
    [ "$now" = "$seen" ] || { seen=$now moved=$SECONDS; }
    [ $((SECONDS - moved)) -lt $stall ] || { why="no progress for $stall s"; break; }
    [ $((SECONDS - start)) -lt $limit ] || { why="still going after $limit s"; break; }
    sleep 0.5
done
echo "slurm_test: job $jobid ended $state after $((SECONDS - start)) s, ${restarts:-?} restart(s)${why:+ ($why: $seen)}"
check '[ "$state" = COMPLETED ]' "the job completes (state ${state:-unknown}; output: $(tail -5 "$work/job.out" 2>/dev/null))"
check '[ "${restarts:-0}" -eq 1 ]' "the job was requeued once (Restarts=${restarts:-?})"
check 'grep -q "time limit near" "$work/job.out"' "the batch script got USR1 and passed it on"
check 'grep -q "checkpointed (exit 75): requeueing job $jobid" "$work/job.out"' "grurec checkpointed (75) and the script requeued"
check 'grep -q "attempt 1 " "$work/job.out"' "a second attempt ran (SLURM_RESTART_COUNT=1)"
check 'grep -q "resuming from" "$work/job.out"' "the requeued attempt resumed from the checkpoint"
check '[ -f "$work/run/model.h5" ] && [ "$(params "$work/full/model.h5")" = "$(params "$work/run/model.h5")" ]' \
    "the requeued run's parameters equal the uninterrupted run's"
[ "$fails" -eq 0 ] || { echo "--- job output:"; cat "$work/job.out"; }
finish
