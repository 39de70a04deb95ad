#!/usr/bin/env bash
# Start a private single-node Slurm cluster (munged, slurmctld, slurmd) without systemd,
# everything under DIR: its own munge key and socket, slurm.conf, state, spool, logs and
# pid files. Needs root and Debian's slurm-wlm and munge. Use it with
#   export SLURM_CONF=DIR/slurm.conf
# and stop it with tests/slurm/stop-cluster.sh DIR. Exits non-zero, saying why, when the
# cluster does not come up (the daemons it started are stopped again).
# usage: start-cluster.sh DIR [CPUS]
set -uo pipefail
dir=${1:?usage: start-cluster.sh DIR [CPUS]}
cpus=${2:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "start-cluster: $*" >&2; "$here/stop-cluster.sh" "$dir" >/dev/null 2>&1; exit 1; }
[ "$(id -u)" = 0 ] || { echo "start-cluster: needs root" >&2; exit 1; }
for b in munged slurmctld slurmd sbatch scontrol srun sinfo; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "start-cluster: $b is not installed" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin
[ -c /dev/null ] || { echo "start-cluster: /dev/null is not a character device (munged needs it)" >&2; exit 1; }
id munge >/dev/null 2>&1 || { echo "start-cluster: no user munge" >&2; exit 1; }

mkdir -p "$dir"/{munge,munge-run,state,spool,log} || exit 1
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
# munged is strict: key, log and seed in a directory only munge may enter, the socket in
# one that munge owns and everyone may enter.
chown munge:munge "$dir/munge" "$dir/munge-run" && chmod 700 "$dir/munge" && chmod 755 "$dir/munge-run"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none
chown munge:munge "$dir/munge/munge.key" && chmod 400 "$dir/munge/munge.key"
sock=$dir/munge-run/munge.socket
runuser -u munge -- munged --socket="$sock" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge-run/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed" || die "munged did not start: $(tail -3 "$dir/munge/munged.log" 2>/dev/null)"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
munge -S "$sock" -n </dev/null | unmunge -S "$sock" >/dev/null 2>&1 || die "munge does not work: $(tail -3 "$dir/munge/munged.log")"
cp "$dir/munge-run/munged.pid" "$dir/munged.pid"

# Two free ports from 16817 on (another cluster of this script may hold the first pair on
# a shared machine): nothing accepts a connection on either.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=16817
while listening $port || listening $((port + 1)); do
    port=$((port + 2))
    [ $port -lt 16917 ] || die "no free pair of ports in 16817-16916"
done

cat >"$dir/slurm.conf" <<CONF
ClusterName=grurectest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (120 s by default)
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
KillWait=5
MinJobAge=600
NodeName=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF" -i || die "slurmctld did not start: $(tail -3 "$dir/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" -N localhost || die "slurmd did not start: $(tail -3 "$dir/log/slurmd.log" 2>/dev/null)"
# The node is ready when it is idle (pid files, not `pgrep`: daemons may linger as zombies).
for _ in $(seq 60); do
    state=$(sinfo -h -N -n localhost -o %t 2>/dev/null)
    [ "$state" = idle ] && { echo "start-cluster: up, SLURM_CONF=$SLURM_CONF"; exit 0; }
    sleep 0.5
done
die "the node is not idle after 30 s (state '${state:-?}'): $(tail -3 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>/dev/null)"
