// Shared by the MPI programs that test the comm layers (test_comm.c, test_comm_nccl.c):
// counted expectations that report the rank and line, and reproducible test values.
#ifndef GRUREC_COMM_TEST_UTIL_H
#define GRUREC_COMM_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "comm/comm.h"

static int g_rank;
static long g_passed, g_failed;

#define EXPECT(cond, ...)                                                                    \
    do {                                                                                     \
        if (cond) {                                                                          \
            g_passed++;                                                                      \
        } else {                                                                             \
            g_failed++;                                                                      \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", g_rank, __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
        }                                                                                    \
    } while (0)

static inline uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Rank Q's I-th contribution: random sign, mantissa and binary exponent (over [-10, 20]),
// so that the order of summation changes the rounding.
static inline float gen_f32(int q, size_t i, uint64_t salt) {
    uint64_t h = mix(salt * 1000003u + (uint64_t)q * 0x100000001ULL + i);
    uint32_t bits = (uint32_t)(h >> 63) << 31 | (uint32_t)(127 - 10 + (h >> 32) % 31) << 23 | (uint32_t)(h & 0x7fffff);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline uint64_t fnv(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

// True on every rank iff BYTES are the same on every rank (max == min of a hash, over MPI).
static inline int same_everywhere(comm *c, const void *p, size_t n) {
    int64_t h[1] = {(int64_t)fnv(p, n)}, lo[1] = {h[0]};
    comm_allreduce_max_i64(c, h, 1);
    comm_allreduce_min_i64(c, lo, 1);
    return h[0] == lo[0];
}

// The basic mode's end: every rank's counts summed, printed by rank 0; the exit status.
static inline int report_and_finish(comm *c) {
    int64_t pf[2] = {g_passed, g_failed};
    comm_allreduce_sum_i64(c, pf, 2);
    if (comm_rank(c) == 0) printf("%lld passed, %lld failed\n", (long long)pf[0], (long long)pf[1]);
    fflush(stdout);
    comm_finalize(c);
    return pf[1] ? 1 : 0;
}

#endif
