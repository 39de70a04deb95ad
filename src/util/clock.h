// Monotonic time and short sleeps, for progress lines, benchmarks and the deadline loops
// of the comm layers (header-only).
#ifndef GRUREC_CLOCK_H
#define GRUREC_CLOCK_H

#include <time.h>

// Seconds on the monotonic clock (never jumps with the wall clock).
static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline void sleep_ns(long ns) {
    struct timespec t = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&t, NULL);  // EINTR: the caller polls again sooner
}

#endif
