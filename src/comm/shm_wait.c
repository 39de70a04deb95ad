#include "comm/shm_wait.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

// The kernel sees the counter as a plain 32-bit word.
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "a futex word is 32 bits");

// Not FUTEX_PRIVATE_FLAG: the word is in memory that other processes map (the kernel keys
// the wait on the page, not on this process's address).
static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout) {
    return syscall(SYS_futex, (uint32_t *)(void *)word, op, val, timeout, NULL, 0);
}

void shm_bell_ring(shm_bell *b) {
    // (seq_cst: the ring is ordered before the read of sleepers, against the sleeper's
    // increment of sleepers before the kernel reads the ring; one of the two sees the other)
    atomic_fetch_add_explicit(&b->rung, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&b->sleepers, memory_order_seq_cst) > 0) futex(&b->rung, FUTEX_WAKE, INT_MAX, NULL);
}

// Sleeps until B rings after SEEN was read, or SECONDS pass (or a signal comes): the
// kernel returns at once when the bell has rung since.
static void bell_sleep(shm_bell *b, uint32_t seen, double seconds) {
    const long ns = (long)(seconds * 1e9) + 1;
    const struct timespec t = {ns / 1000000000L, ns % 1000000000L};
    atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
    futex(&b->rung, FUTEX_WAIT, seen, &t);  // (EAGAIN, ETIMEDOUT, EINTR: the caller checks again)
    atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}

int shm_wait_until(shm_bell *b, int (*ready)(void *arg), void *arg, double spin_until, double until) {
    for (;;) {
        // The ring is read before the words: a change after this read rings after it, so
        // the kernel does not let us sleep through it (the waker stores, then rings).
        const uint32_t seen = atomic_load_explicit(&b->rung, memory_order_acquire);
        if (ready(arg)) return 1;
        const double t = now_s();
        if (t >= until) return 0;
        if (t < spin_until) sched_yield();
        else bell_sleep(b, seen, until - t);
    }
}
