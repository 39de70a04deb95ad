#!/usr/bin/env bash
# slurm/grurec.sbatch on a real single-node Slurm cluster started here (munged, slurmctld,
# slurmd, no systemd; tests/slurm/start-cluster.sh): a 2-task job whose time limit comes
# before the training ends receives USR1, checkpoints (exit 75), requeues itself, resumes
# and finishes with the same parameters, bit for bit, as an uninterrupted 2-rank mpirun
# run with the same flags. Skips, visibly, when not root or when Slurm is not installed
# or does not start (CI installs slurm-wlm and munge in .ci/run). Takes about 3 minutes.
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
# 60-120 s of training on 2 ranks on 2 cores: well past the 40 s by which the signal has
# come (80 epochs took 30 s in a fast minute once the all-reduce went through shared
# memory, and the job then completed before Slurm signalled it).
F=(--layers 128 --batch-size 8 --n-sample 256 --epochs 160 --log-every 0 --eval-every 0 --momentum 0.3)

start=$SECONDS
"$here/launch/grurec-mpirun" -np 2 "$grurec" train --data "$work/ds" --out "$work/full" "${F[@]}" >"$work/full.log" 2>&1 ||
    bad "uninterrupted 2-rank run: $(tail -2 "$work/full.log")"
echo "slurm_test: uninterrupted run took $((SECONDS - start)) s"

# Time limit 1 min, USR1 50 s before it: Slurm checks limits every ~30 s, so the signal
# comes 10-40 s into each attempt; a requeued job waits cred_expire (10 s here) to restart.
start=$SECONDS
jobid=$(cd "$work" && sbatch --parsable --ntasks 2 --time 1 --signal B:USR1@50 --output "$work/job.out" \
    "$here/slurm/grurec.sbatch" "$work/ds" "$work/run" "${F[@]}" 2>"$work/sbatch.err")
[ -n "$jobid" ] || { bad "sbatch refused the job: $(cat "$work/sbatch.err")"; finish; exit; }
state=
for _ in $(seq 300); do
    state=$(scontrol show job "$jobid" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
    sleep 1
done
restarts=$(scontrol show job "$jobid" -o 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
echo "slurm_test: job $jobid ended $state after $((SECONDS - start)) s, ${restarts:-?} restart(s)"
check '[ "$state" = COMPLETED ]' "the job completes (state ${state:-unknown}; output: $(tail -5 "$work/job.out" 2>/dev/null))"
check '[ "${restarts:-0}" -ge 1 ]' "the job was requeued at least once (Restarts=${restarts:-?})"
check 'grep -q "time limit near" "$work/job.out"' "the batch script got USR1 before the time limit"
check 'grep -q "checkpointed (exit 75): requeueing job $jobid" "$work/job.out"' "grurec checkpointed (75) and the script requeued"
check 'grep -q "attempt 1 " "$work/job.out"' "a second attempt ran (SLURM_RESTART_COUNT=1)"
check 'grep -q "resuming from" "$work/job.out"' "the requeued attempt resumed from the checkpoint"
check '[ -f "$work/run/model.h5" ] && [ "$(params "$work/full/model.h5")" = "$(params "$work/run/model.h5")" ]' \
    "the requeued run's parameters equal the uninterrupted run's"
[ "$fails" -eq 0 ] || { echo "--- job output:"; cat "$work/job.out"; }
finish
