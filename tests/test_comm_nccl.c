// The NCCL part of the communication layer (src/comm/comm_nccl.c) on P ranks, one GPU each:
// run under mpirun (tests/cuda_tests.cmake), or alone (a world of 1, one GPU).
//   test_comm_nccl basic     sums of device buffers: exact (small integers), bitwise equal on
//                            every rank (random floats, checksums compared over MPI), the
//                            group variant, byte counts; prints "N passed, M failed" (rank 0)
//   test_comm_nccl hang [T]  rank 1 sleeps 30 s before an all-reduce, the others wait with
//                            timeout T (2 s): they must end the job with "NCCL all-reduce of
//                            1 floats did not complete within T s (hang test)"
//   test_comm_nccl hang-event [T]  the same through comm_nccl_allreduce_sum_f32_start and
//                            comm_nccl_wait_event (the training step's way): the deadline
//                            holds without a stream drain, for an all-reduce started behind
//                            the event the host waited for first
//   test_comm_nccl init [T]  comm_nccl_init (timeout T, default 300 s) on the current device
//                            and the default stream, one all-reduce, comm_nccl_free, without
//                            looking at the GPUs first: where there is none it must stop with
//                            a clear message (exit 1), not crash or hang (run by hand)
// With fewer usable GPUs than ranks (no driver: cudaGetDeviceCount error 35; or count < P),
// basic and hang print "SKIP: ..." (rank 0) and exit 0.
// Every rank uses the GPU of its local rank (comm_local_rank).
#include "util/check.h"
#include "comm/comm.h"
#include "comm/comm_nccl.h"
#include "device_info.h"

#include <cuda_runtime.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "util/clock.h"
#include "comm_test_util.h"

#define CUDA_OK(call)                                                                        \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        CHECK(e_ == cudaSuccess, "%s: %s (CUDA error %d)", #call, cudaGetErrorString(e_), (int)e_); \
    } while (0)

// Small integers: every partial sum is exact in float, whatever NCCL's order.
static float gen_int(int q, size_t i) { return (float)((q + 1) * (int)(i % 1021)) - 500.0f; }
static float sum_int(int P, size_t i) { return (float)((double)P * (P + 1) / 2 * (double)(i % 1021) - 500.0 * P); }

static float *to_device(const float *host, size_t n) {
    float *d = NULL;
    CUDA_OK(cudaMalloc((void **)&d, (n ? n : 1) * sizeof *d));
    if (n) CUDA_OK(cudaMemcpy(d, host, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

static void to_host(float *host, const float *dev, size_t n) {
    if (n) CUDA_OK(cudaMemcpy(host, dev, n * sizeof *host, cudaMemcpyDeviceToHost));
}

// Exact sums of small integers, N elements.
static void test_exact(comm *c, comm_nccl *n, size_t count) {
    const int P = comm_size(c), me = comm_rank(c);
    float *h = xmalloc((count ? count : 1) * sizeof *h);
    for (size_t i = 0; i < count; i++) h[i] = gen_int(me, i);
    float *d = to_device(h, count);
    comm_nccl_allreduce_sum_f32(n, d, count, "exact test");
    to_host(h, d, count);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < count; i++)
        if (h[i] != sum_int(P, i) && bad++ == 0) first = i;
    EXPECT(bad == 0, "exact sum of %zu floats: %zu wrong, first [%zu] = %g, want %g", count, bad, first,
           bad ? (double)h[first] : 0.0, bad ? (double)sum_int(P, first) : 0.0);
    CUDA_OK(cudaFree(d));
    free(h);
}

// Random floats: the same bits on every rank, close to the rank-order sum. Returns the hash
// of the result (for the repeat check).
static uint64_t test_bitwise(comm *c, comm_nccl *n, size_t count, uint64_t salt) {
    const int P = comm_size(c), me = comm_rank(c);
    float *h = xmalloc((count ? count : 1) * sizeof *h);
    for (size_t i = 0; i < count; i++) h[i] = gen_f32(me, i, salt);
    float *d = to_device(h, count);
    comm_nccl_allreduce_sum_f32(n, d, count, "bitwise test");
    to_host(h, d, count);
    EXPECT(same_everywhere(c, h, count * sizeof *h), "sum of %zu random floats differs between ranks", count);
    size_t far = 0;
    for (size_t i = 0; i < count; i++) {
        double ref = 0, mag = 0;
        for (int q = 0; q < P; q++) {
            ref += gen_f32(q, i, salt);
            mag += fabs((double)gen_f32(q, i, salt));
        }
        far += !(fabs((double)h[i] - ref) <= 2.0 * P * FLT_EPSILON * mag);
    }
    EXPECT(far == 0, "sum of %zu random floats: %zu results far from the exact sum", count, far);
    uint64_t hash = fnv(h, count * sizeof *h);
    CUDA_OK(cudaFree(d));
    free(h);
    return hash;
}

static void test_group(comm *c, comm_nccl *n) {
    const int P = comm_size(c), me = comm_rank(c);
    enum { K = 4 };
    const size_t counts[K] = {5, 0, 100003, 1};
    float *h[K], *d[K];
    for (int b = 0; b < K; b++) {
        h[b] = xmalloc((counts[b] ? counts[b] : 1) * sizeof *h[b]);
        for (size_t i = 0; i < counts[b]; i++) h[b][i] = b == 2 ? gen_f32(me, i, 77) : gen_int(me, i + (size_t)b);
        d[b] = counts[b] ? to_device(h[b], counts[b]) : NULL;  // an empty buffer may be NULL
    }
    uint64_t before = comm_nccl_bytes_sent(n);
    comm_nccl_allreduce_sum_f32_group(n, d, counts, K, "group test");
    uint64_t sent = comm_nccl_bytes_sent(n) - before;
    for (int b = 0; b < K; b++) to_host(h[b], d[b], counts[b]);
    for (int b = 0; b < K; b++) {
        if (b == 2) {
            EXPECT(same_everywhere(c, h[b], counts[b] * sizeof *h[b]), "group: buffer %d differs between ranks", b);
            continue;
        }
        size_t bad = 0;
        for (size_t i = 0; i < counts[b]; i++) bad += h[b][i] != sum_int(P, i + (size_t)b);
        EXPECT(bad == 0, "group: buffer %d of %zu floats, %zu wrong", b, counts[b], bad);
    }
    uint64_t want = 0;
    for (int b = 0; b < K && P > 1; b++) {
        size_t mine = counts[b] / (size_t)P + ((size_t)me < counts[b] % (size_t)P);
        want += 4 * (uint64_t)(counts[b] - mine) + 4 * (uint64_t)(P - 1) * mine;
    }
    EXPECT(sent == want, "group: %llu bytes counted, expected %llu", (unsigned long long)sent,
           (unsigned long long)want);
    comm_nccl_allreduce_sum_f32_group(n, d, counts, 0, "empty group");  // nothing: returns
    g_passed++;
    for (int b = 0; b < K; b++) {
        if (d[b]) CUDA_OK(cudaFree(d[b]));
        free(h[b]);
    }
}

static comm_nccl *setup(comm *c, cudaStream_t *stream) {
    CUDA_OK(cudaSetDevice(comm_local_rank(c)));
    CUDA_OK(cudaStreamCreate(stream));
    return comm_nccl_init(c, *stream);
}

static void test_basic(comm *c) {
    const int P = comm_size(c), me = comm_rank(c);
    cudaStream_t stream;
    comm_nccl *n = setup(c, &stream);
    EXPECT(comm_nccl_bytes_sent(n) == 0, "bytes sent before any all-reduce: %llu",
           (unsigned long long)comm_nccl_bytes_sent(n));

    const size_t sizes[] = {0, 1, 3, 1000, 10007, (size_t)1 << 22};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) test_exact(c, n, sizes[k]);
    for (size_t k = 1; k < sizeof sizes / sizeof *sizes; k++) test_bitwise(c, n, sizes[k], k);
    // Run to run: the same input twice (information: NCCL does not promise it across runs).
    uint64_t h1 = test_bitwise(c, n, 100003, 99), h2 = test_bitwise(c, n, 100003, 99);
    if (me == 0) printf("info: the same all-reduce twice gives %s bits\n", h1 == h2 ? "the same" : "DIFFERENT");
    test_group(c, n);

    {  // bytes counted like comm_bytes_sent
        const size_t count = 1000;
        float *d = NULL;
        CUDA_OK(cudaMalloc((void **)&d, count * sizeof *d));
        CUDA_OK(cudaMemset(d, 0, count * sizeof *d));
        uint64_t before = comm_nccl_bytes_sent(n);
        comm_nccl_allreduce_sum_f32(n, d, count, "bytes test");
        uint64_t sent = comm_nccl_bytes_sent(n) - before;
        size_t mine = count / (size_t)P + ((size_t)me < count % (size_t)P);
        uint64_t want = P > 1 ? 4 * (uint64_t)(count - mine) + 4 * (uint64_t)(P - 1) * mine : 0;
        EXPECT(sent == want, "all-reduce of %zu floats counted %llu bytes, expected %llu", count,
               (unsigned long long)sent, (unsigned long long)want);
        CUDA_OK(cudaFree(d));
    }

    {  // timings (information only)
        const size_t big = (size_t)4 << 20;
        float *d = NULL;
        CUDA_OK(cudaMalloc((void **)&d, big * sizeof *d));
        CUDA_OK(cudaMemset(d, 0, big * sizeof *d));
        const int reps = 200;
        comm_barrier(c);
        double t0 = now_s();
        for (int i = 0; i < reps; i++) comm_nccl_allreduce_sum_f32(n, d, 1, "timing");
        double small = (now_s() - t0) / reps;
        comm_barrier(c);
        t0 = now_s();
        comm_nccl_allreduce_sum_f32(n, d, big, "timing");
        double large = now_s() - t0;
        if (me == 0)
            printf("info: %d ranks: NCCL all-reduce of 1 float %.1f us, of 4M floats (16 MiB) %.2f ms\n", P,
                   small * 1e6, large * 1e3);
        CUDA_OK(cudaFree(d));
    }
    comm_nccl_free(n);
    g_passed++;
    CUDA_OK(cudaStreamDestroy(stream));
}

// 1 on every rank iff every rank has a GPU of its own; else 0 with WHY (rank 0's reason).
static int enough_gpus(comm *c, char *why, int why_size) {
    const int P = comm_size(c);
    int count = cuda_usable_devices(why, why_size);
    if (count > 0 && count < P)
        snprintf(why, (size_t)why_size, "%d usable GPU%s for %d ranks", count, count == 1 ? "" : "s", P);
    int64_t ok[1] = {count >= P};
    comm_allreduce_min_i64(c, ok, 1);
    if (!ok[0] && count >= P) snprintf(why, (size_t)why_size, "another rank has fewer usable GPUs than ranks");
    return (int)ok[0];
}

int main(int argc, char **argv) {
    comm *c = comm_init(&argc, &argv, 300);
    const int me = comm_rank(c), P = comm_size(c);
    g_rank = me;
    const char *mode = argc > 1 ? argv[1] : "basic";
    char why[256] = "";

    if (strcmp(mode, "init") == 0) {
        if (argc > 2) comm_set_timeout(c, atof(argv[2]));
        // No cudaSetDevice, no stream of its own: the current device, the default stream.
        comm_nccl *n = comm_nccl_init(c, NULL);
        float *d = NULL;
        CUDA_OK(cudaMalloc((void **)&d, sizeof *d));
        CUDA_OK(cudaMemset(d, 0, sizeof *d));
        comm_nccl_allreduce_sum_f32(n, d, 1, "init test");
        CUDA_OK(cudaFree(d));
        comm_nccl_free(n);
        if (me == 0) printf("init: ok on %d ranks\n", P);
        comm_finalize(c);
        return 0;
    }
    if (strcmp(mode, "basic") != 0 && strcmp(mode, "hang") != 0 && strcmp(mode, "hang-event") != 0) {
        fprintf(stderr, "usage: test_comm_nccl basic | hang [T] | hang-event [T] | init [T]\n");
        return 2;
    }
    if (!enough_gpus(c, why, sizeof why) || (mode[0] == 'h' && P < 2)) {
        if (me == 0) {
            if (mode[0] == 'h' && P < 2) snprintf(why, sizeof why, "it needs 2 ranks or more");
            printf("SKIP: test_comm_nccl %s on %d rank%s: %s\n", mode, P, P == 1 ? "" : "s", why);
        }
        fflush(stdout);
        comm_finalize(c);
        return 0;
    }

    if (mode[0] == 'h') {
        const double T = argc > 2 ? atof(argv[2]) : 2;
        cudaStream_t stream;
        comm_nccl *n = setup(c, &stream);
        float *d = NULL;
        CUDA_OK(cudaMalloc((void **)&d, sizeof *d));
        CUDA_OK(cudaMemset(d, 0, sizeof *d));
        comm_nccl_allreduce_sum_f32(n, d, 1, "warm-up");  // connections made before the clock runs
        comm_barrier(c);
        comm_set_timeout(c, T);
        if (strcmp(mode, "hang-event") == 0) {
            // As a step's host waits: a first all-reduce every rank starts, an event behind
            // it, then the one rank 1 comes late to; the wait for the first event returns,
            // and the second all-reduce keeps its own deadline and label for the next wait.
            cudaEvent_t ev[2];
            for (int k = 0; k < 2; k++) CUDA_OK(cudaEventCreateWithFlags(&ev[k], cudaEventDisableTiming));
            comm_nccl_allreduce_sum_f32_start(n, d, 1, "the step before");
            CUDA_OK(cudaEventRecord(ev[0], stream));
            if (me == 1) {  // (done with the first before it sleeps: the emulation runs a
                comm_nccl_wait_event(n, ev[0]);  // stream's work only when its host waits)
                sleep(30);
            }
            comm_nccl_allreduce_sum_f32_start(n, d, 1, "hang test");
            CUDA_OK(cudaEventRecord(ev[1], stream));
            comm_nccl_wait_event(n, ev[0]);
            comm_nccl_wait_event(n, ev[1]);
        } else {
            if (me == 1) sleep(30);
            comm_nccl_allreduce_sum_f32(n, d, 1, "hang test");
        }
        fprintf(stderr, "UNEXPECTED: rank %d: the all-reduce returned\n", me);
        return 3;
    }

    test_basic(c);
    return report_and_finish(c);
}
