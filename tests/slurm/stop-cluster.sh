#!/usr/bin/env bash
# Stop the cluster tests/slurm/start-cluster.sh started in DIR, by its pid files (slurmd,
# slurmctld, then munged); waits up to 10 s for each, then kills it.
# usage: stop-cluster.sh DIR
dir=${1:?usage: stop-cluster.sh DIR}
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
for f in slurmd slurmctld munged; do
    pid=$(cat "$dir/$f.pid" 2>/dev/null) || continue
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
    rm -f "$dir/$f.pid"
done
exit 0
