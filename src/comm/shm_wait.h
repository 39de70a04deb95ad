// Waiting for the other processes of this machine to change words in memory they share:
// poll for a while (with a core each, the change comes within microseconds), then sleep
// in the kernel on a futex in the shared memory until a writer rings the bell or a time
// limit passes, so that a waiting process gives its core to the ones it waits for (more
// ranks than cores, or other work on the machine). Every sleep is bounded: the caller
// comes back to check its deadline, whatever the others do (or if they die).
#ifndef GRUREC_SHM_WAIT_H
#define GRUREC_SHM_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

// Lives in the shared memory (zeroed is ready); one per group of words waited for.
typedef struct {
    _Atomic uint32_t rung;      // rings so far (wraps: only compared for equality)
    _Atomic uint32_t sleepers;  // processes in, or about to enter, the kernel's wait
} shm_bell;

// After publishing a change (release stores): rings, waking every sleeper (a system call
// only when some process sleeps).
void shm_bell_ring(shm_bell *b);

// Waits until READY(ARG) is non-zero (returns 1) or the monotonic clock (now_s) passes
// UNTIL (returns 0): polls, yielding the core, until SPIN_UNTIL, then sleeps on B between
// checks. READY reads the shared words with acquire loads.
int shm_wait_until(shm_bell *b, int (*ready)(void *arg), void *arg, double spin_until, double until);

#endif
