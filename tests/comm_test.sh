#!/usr/bin/env bash
# The communication layer (src/comm) on several MPI ranks: every collective bitwise on 1
# (no mpirun), 2, 3 and 4 ranks, the config check, and the deadlines (a hanging rank, a
# killed rank, one killed while it sleeps in a wait, ranks in different collectives): exit
# status, elapsed time and the messages.
# All-reduces go through shared memory here (every rank on this machine); the cases marked
# "msg" run the message path (GRUREC_COMM_SHM=0). Also the launch/grurec-mpirun wrapper.
# About 45 s on 2 cores.
# usage: comm_test.sh BUILD_DIR
set -uo pipefail
export GRUREC_DEVICE=cpu  # the CPU backend (these tests compare CPU bits)
build=$1
bin=$build/tests/test_comm
repo=$(cd "$(dirname "$0")/.." && pwd)
wrapper=$repo/launch/grurec-mpirun
work=$(mktemp -d "${TMPDIR:-/tmp}/comm-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # containers run as root
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
[ -x "$bin" ] || { echo "no $bin: build first"; echo "0 passed, 1 failed"; exit 1; }
command -v mpirun >/dev/null || { echo "mpirun not found"; echo "0 passed, 1 failed"; exit 1; }

# run NAME CMD...: runs CMD under `timeout 60`; sets rc, secs and log (the output file).
run() {
    local name=$1
    shift
    log=$work/$name.log
    local t0=$EPOCHREALTIME
    timeout 60 "$@" >"$log" 2>&1
    rc=$?
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    echo "  $name: exit $rc in $secs s"
}
faster() { awk -v s="$secs" -v lim="$1" 'BEGIN { exit !(s < lim) }'; }
show() { sed 's/^/    | /' "$log" | grep -v '^    | *$' | head -20; }
mpi4=(mpirun --oversubscribe)

# 1. every collective (the all-to-alls too), bitwise: alone (a singleton world), on 2 and 4 ranks, and on 3
#    ranks through the wrapper
run basic1 "$bin" basic 1
check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log"' "basic, 1 rank (no mpirun): exit $rc$(show)"
run basic2 "${mpi4[@]}" -np 2 "$bin" basic 2
check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log" && grep -q "shared memory" "$log"' "basic, 2 ranks: exit $rc$(echo; show)"
grep -h '^info:' "$log" | sed 's/^/  /'
run basic4 "${mpi4[@]}" -np 4 "$bin" basic 4
check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log" && grep -q "shared memory" "$log"' "basic, 4 ranks: exit $rc$(echo; show)"
grep -h '^info:' "$log" | sed 's/^/  /'
for P in 2 4; do
    run basic${P}msg env GRUREC_COMM_SHM=0 "${mpi4[@]}" -np $P "$bin" basic $P
    check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log" && grep -q "messages" "$log"' "basic, $P ranks, messages: exit $rc$(echo; show)"
    grep -h '^info:' "$log" | sed 's/^/  /'
done
run basic3 env GRUREC_OVERSUBSCRIBE=1 "$wrapper" -np 3 "$bin" basic 3
check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log"' "basic, 3 ranks through launch/grurec-mpirun: exit $rc$(echo; show)"

# ... and where rank 0 cannot make the shared segment, everyone falls back to messages
run shmfail "${mpi4[@]}" -np 3 "$bin" shmfail
check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log"' "shared segment failure: exit $rc$(echo; show)"
check 'grep -q "^grurec: rank 0: no shared-memory all-reduce (.*): using messages$" "$log"' \
    "shared segment failure: one line says why$(echo; show)"
# ... also where the segment fails to grow inside an all-to-all (it finishes over messages)
for P in 2 3; do
    run shmfaila2a$P "${mpi4[@]}" -np $P "$bin" shmfail a2a
    check '[ $rc -eq 0 ] && grep -q " 0 failed" "$log" && grep -q "^grurec: rank 0: no shared-memory" "$log"' \
        "shared segment failure in an all-to-all, $P ranks: exit $rc$(echo; show)"
done

# ... and comm_alltoallv_learn sent more than the room rank 1 gave it: one line, exit 1
for mode in shm msg; do
    shm=1; [ $mode = msg ] && shm=0
    run learncap$mode env GRUREC_COMM_SHM=$shm "${mpi4[@]}" -np 3 "$bin" learncap
    check '[ $rc -eq 1 ] && faster 10' "learn past its room ($mode): exit $rc after $secs s (want 1)$(echo; show)"
    check '[ "$(grep -c "^grurec: .*comm_alltoallv_learn: 300 bytes sent to rank 1, room for 299$" "$log")" = 1 ] &&
        ! grep -q "UNEXPECTED\|did not answer" "$log"' "learn past its room ($mode): one line names rank 1$(echo; show)"
done

# 2. different values in comm_check_same_u64 (ranks 1 and 3): exit 2, the first one named
run mismatch "${mpi4[@]}" -np 4 "$bin" mismatch
check '[ $rc -eq 2 ]' "mismatch: exit $rc, expected 2$(echo; show)"
check 'grep -q "^grurec: rank 1: config hash differs from rank 0 (0x0000000000001231 vs 0x000000000000feed)$" "$log"' \
    "mismatch: the message names rank 1 and both values$(echo; show)"
check '! grep -q "UNEXPECTED\|the agreed value" "$log"' "mismatch: equal values pass, different ones do not$(echo; show)"

# 3. rank 1 sleeps 30 s before a collective, the others wait 2 s: they stop, naming rank 1
run hang4 "${mpi4[@]}" -np 4 "$bin" hang 2
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 10' "hang, 4 ranks: exit $rc after $secs s (want non-zero within 10 s)$(echo; show)"
check 'grep -q "^grurec: rank 1 did not answer within 2 s" "$log"' "hang, 4 ranks: rank 1 named$(echo; show)"
check '! grep -q "UNEXPECTED\|rank [023] did not answer" "$log"' "hang, 4 ranks: only rank 1 blamed$(echo; show)"
for mode in shm msg; do
    shm=1; [ $mode = msg ] && shm=0
    run hang2$mode env GRUREC_COMM_SHM=$shm "${mpi4[@]}" -np 2 "$bin" hang 1
    check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 8' "hang, 2 ranks, 1 s ($mode): exit $rc after $secs s$(echo; show)"
    check 'grep -q "^grurec: rank 1 did not answer within 1 s (seen from rank 0 in comm_allreduce_sum_f32)" "$log"' \
        "hang, 2 ranks ($mode): rank 1 named by rank 0$(echo; show)"
    # ... in the all-to-alls made of several exchanges: one deadline, named as called
    for call in 1:comm_alltoallv_learn 2:comm_alltoallv_take; do
        run hanga2a${call%%:*}$mode env GRUREC_COMM_SHM=$shm "${mpi4[@]}" -np 3 "$bin" hanga2a 1 ${call%%:*}
        check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 8' "hang in ${call#*:} ($mode): exit $rc after $secs s$(echo; show)"
        check 'grep -q "^grurec: rank 1 did not answer within 1 s (seen from rank 0 in ${call#*:})" "$log" &&
            ! grep -q "UNEXPECTED\|rank [02] did not answer" "$log"' "hang in ${call#*:} ($mode): rank 1 named$(echo; show)"
    done

    # 4. rank 1 SIGKILLs itself before a collective (timeout 3 s): the job ends within 2 x 3 s
    run kill$mode env GRUREC_COMM_SHM=$shm "${mpi4[@]}" -np 4 "$bin" kill 3
    check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 6' "kill ($mode): exit $rc after $secs s (want non-zero within 6 s)$(echo; show)"
    check '! grep -q UNEXPECTED "$log"' "kill ($mode): no collective returned$(echo; show)"
done

# ... and rank 1 SIGKILLed while it (and ranks 2, 3) sleep in the wait for rank 0 (shared
#     memory: the bounded futex sleep): the job ends, naming rank 1 (mpirun or the blame round)
run killwait "${mpi4[@]}" -np 4 "$bin" killwait 3
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 6' "killwait: exit $rc after $secs s (want non-zero within 6 s)$(echo; show)"
check 'grep -q "rank 1 .*signal 9\|rank 1 did not answer" "$log" && ! grep -q UNEXPECTED "$log"' "killwait: rank 1 named, no collective returned$(echo; show)"

# 5. rank 0 in another collective than the others: with messages everyone answers and
#    nothing completes; through shared memory every rank sees it at once and says so
run mixedmsg env GRUREC_COMM_SHM=0 "${mpi4[@]}" -np 3 "$bin" mixed 2
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 10' "mixed (msg): exit $rc after $secs s$(echo; show)"
check 'grep -q "did not complete within 2 s although every rank answered" "$log"' "mixed (msg): the message$(echo; show)"
check '! grep -q "UNEXPECTED\|did not answer" "$log"' "mixed (msg): nobody blamed$(echo; show)"
run mixedshm "${mpi4[@]}" -np 3 "$bin" mixed 30
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 10' "mixed (shm): exit $rc after $secs s (want well before the 30 s deadline)$(echo; show)"
check 'grep -q "rank 1 called another collective (or size) than rank 0" "$log"' "mixed (shm): the message$(echo; show)"
check '! grep -q "UNEXPECTED\|did not answer" "$log"' "mixed (shm): nobody blamed$(echo; show)"
# ... the others in an all-to-all
run mixeda2amsg env GRUREC_COMM_SHM=0 "${mpi4[@]}" -np 3 "$bin" mixed 2 a2a
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 10 && grep -q "did not complete within 2 s although every rank answered" "$log" &&
    ! grep -q "UNEXPECTED\|did not answer" "$log"' "mixed with an all-to-all (msg): exit $rc after $secs s$(echo; show)"
run mixeda2ashm "${mpi4[@]}" -np 3 "$bin" mixed 30 a2a
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && faster 10 && grep -q "called another collective" "$log" &&
    ! grep -q "UNEXPECTED\|did not answer" "$log"' "mixed with an all-to-all (shm): exit $rc after $secs s$(echo; show)"

# 6. the wrapper's command lines (dry run)
dry() { env GRUREC_MPIRUN_DRY_RUN=1 "$@" "$wrapper" -np 2 prog --flag; }
line=$(dry env)
check '[[ $line == *"--map-by core --bind-to core"* && $line == *"-np 2 prog --flag" ]]' "wrapper default: $line"
if [ "$(id -u)" = 0 ]; then
    check '[[ $line == *--allow-run-as-root* ]]' "wrapper as root: $line"
fi
line=$(dry env GRUREC_OVERSUBSCRIBE=1 GRUREC_SOMETHING=x)
check '[[ $line == *"--oversubscribe --bind-to none"* && $line != *"bind-to core"* && $line == *"-x GRUREC_SOMETHING"* ]]' \
    "wrapper oversubscribed: $line"
line=$(GRUREC_MPIRUN_DRY_RUN=1 "$wrapper" --bind-to socket -np 2 prog)
check '[[ $line != *"--bind-to core"* && $line != *"--map-by core"* && $line == *"--bind-to socket -np 2 prog" ]]' \
    "wrapper keeps the user's binding: $line"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
