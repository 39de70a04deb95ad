// The NCCL part of the communication layer (comm_nccl.h). The communicator is non-blocking
// (config.blocking = 0): every NCCL call returns at once, possibly with ncclInProgress, and
// this file polls ncclCommGetAsyncError (and then cudaStreamQuery) against a deadline, so
// that a dead or hanging peer ends the job (ncclCommAbort, then comm_abort) instead of
// hanging it. Every NCCL and CUDA call goes through NCCL_CALL / CUDA_CALL, which end the job
// with comm_abort (MPI_Abort: the other ranks do not wait for their deadlines).
#include "comm/comm_nccl.h"

#include "util/check.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util/clock.h"

#define SPIN_S 20e-3          // polling (yielding) after the start of a wait (s), as comm_mpi.c
#define MIN_SLEEP_NS 10000L   // then the back-off: 10 us ...
#define MAX_SLEEP_NS 200000L  // ... up to 200 us

#define MAX_STARTED 8  // all-reduces in flight (more: the oldest is waited for first)

typedef struct {
    cudaEvent_t ev;
    double deadline;
    size_t count;
    char what[96];
} started;

struct comm_nccl {
    comm *c;
    ncclComm_t nc;
    cudaStream_t stream;
    int device;
    uint64_t bytes_sent;
    // The started all-reduces not yet seen complete (comm_nccl_allreduce_sum_f32_start),
    // oldest first: each with an event recorded behind it, its deadline, size and label.
    // A step starts one and the host waits for events a step or two behind, so a few are
    // in flight at once; each keeps its own deadline (comm_nccl_wait_event).
    started run[MAX_STARTED];
    int run_first, run_n;
};

static const char *base_name(const char *file) {
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

// ---- the error path -----------------------------------------------------------------

// R is the result of CALL (an NCCL function) made for CTX; ncclInProgress counts as success
// where IN_PROGRESS_OK (the non-blocking calls). Otherwise: "file:LINE: CALL failed (CTX):
// <error string> (NCCL: <ncclGetLastError>)", and the job ends through comm_abort.
static void nccl_check(comm *c, ncclComm_t nc, ncclResult_t r, int in_progress_ok, const char *call,
                       const char *ctx, const char *file, int line) {
    if (r == ncclSuccess || (in_progress_ok && r == ncclInProgress)) return;
    const char *last = ncclGetLastError(nc);  // NULL-safe: the comm argument is unused
    const int has_last = last && *last;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s:%d: %s failed (%s): %s%s%s%s", base_name(file), line, call, ctx,
             ncclGetErrorString(r), has_last ? " (NCCL: " : "", has_last ? last : "", has_last ? ")" : "");
    comm_abort(c, 1, msg);
}

static void cuda_check(comm *c, cudaError_t e, const char *call, const char *ctx, const char *file, int line) {
    if (e == cudaSuccess) return;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s:%d: %s failed (%s): %s (%s, CUDA error %d)", base_name(file), line, call, ctx,
             cudaGetErrorString(e), cudaGetErrorName(e), (int)e);
    comm_abort(c, 1, msg);
}

// NCCL_CALL(C, NC, CTX, ncclFn, args...): the call must succeed. NCCL_START: the call may
// also return ncclInProgress (non-blocking communicator: wait_idle before the next call).
#define NCCL_CALL(c, nc, ctx, fn, ...) nccl_check((c), (nc), fn(__VA_ARGS__), 0, #fn, (ctx), __FILE__, __LINE__)
#define NCCL_START(c, nc, ctx, fn, ...) nccl_check((c), (nc), fn(__VA_ARGS__), 1, #fn, (ctx), __FILE__, __LINE__)
#define CUDA_CALL(c, ctx, fn, ...) cuda_check((c), fn(__VA_ARGS__), #fn, (ctx), __FILE__, __LINE__)

// ---- waiting with a deadline --------------------------------------------------------

static void subject_of(const started *r, char *subject, size_t n) {
    snprintf(subject, n, "NCCL all-reduce of %zu floats", r->count);
}

// Drops the oldest started all-reduces whose events have completed.
static void retire_done(comm_nccl *n) {
    while (n->run_n > 0) {
        started *r = &n->run[n->run_first];
        const cudaError_t e = cudaEventQuery(r->ev);
        if (e == cudaErrorNotReady) return;
        if (e != cudaSuccess) cuda_check(n->c, e, "cudaEventQuery", r->what, __FILE__, __LINE__);
        n->run_first = (n->run_first + 1) % MAX_STARTED;
        n->run_n--;
    }
}

// Polls until the communicator has left ncclInProgress and, if STREAM_TOO, the stream is idle
// (cudaStreamQuery), or EV has completed where EV is given (cudaEventQuery: the work after it
// may go on); NCCL's asynchronous errors are looked at on every poll meanwhile. Past
// DEADLINE: ncclCommAbort, then comm_abort with "SUBJECT did not complete within T s (CTX)".
// With RUNNING, the oldest started all-reduce not yet complete sets the deadline, subject
// and context instead, while there is one (comm_nccl_wait_event).
// Yields the core for SPIN_S, then sleeps 10 us, 20 us, ... up to 200 us between polls.
static void wait_idle_on(comm_nccl *n, int stream_too, cudaEvent_t ev, int running, double deadline,
                         const char *subject, const char *ctx) {
    comm *c = n->c;
    const double spin_until = now_s() + SPIN_S;
    long nap = 0;
    for (;;) {
        ncclResult_t state = ncclSuccess;
        NCCL_CALL(c, n->nc, ctx, ncclCommGetAsyncError, n->nc, &state);
        if (state != ncclInProgress) {
            nccl_check(c, n->nc, state, 0, "NCCL communicator (asynchronous error)", ctx, __FILE__, __LINE__);
            if (!stream_too) return;
            cudaError_t e = ev ? cudaEventQuery(ev) : cudaStreamQuery(n->stream);
            if (e == cudaSuccess) return;
            if (e != cudaErrorNotReady) cuda_check(c, e, ev ? "cudaEventQuery" : "cudaStreamQuery", ctx, __FILE__, __LINE__);
        }
        const double t = now_s();
        char run_subject[96];
        double limit = deadline;
        if (running) {
            retire_done(n);
            if (n->run_n > 0) {
                const started *r = &n->run[n->run_first];
                subject_of(r, run_subject, sizeof run_subject);
                limit = r->deadline, subject = run_subject, ctx = r->what;
            }
        }
        if (t > limit) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s did not complete within %g s (%s)", subject, comm_timeout(c), ctx);
            ncclCommAbort(n->nc);  // stops NCCL's kernels and threads; its own errors do not matter now
            comm_abort(c, 1, msg);
        }
        if (t < spin_until) {
            sched_yield();
            continue;
        }
        nap = nap ? (2 * nap < MAX_SLEEP_NS ? 2 * nap : MAX_SLEEP_NS) : MIN_SLEEP_NS;
        sleep_ns(nap);
    }
}

static void wait_idle(comm_nccl *n, int stream_too, cudaEvent_t ev, double deadline, const char *subject, const char *ctx) {
    wait_idle_on(n, stream_too, ev, 0, deadline, subject, ctx);
}

// ---- set-up -------------------------------------------------------------------------

// NCCL_VERSION_CODE: X*1000 + Y*100 + Z up to 2.8, X*10000 + Y*100 + Z from 2.9 on.
static void decode_version(int code, int *major, int *minor, int *patch) {
    const int per_major = code >= 10000 ? 10000 : 1000;
    *major = code / per_major;
    *minor = code % per_major / 100;
    *patch = code % 100;
}

comm_nccl *comm_nccl_init(comm *c, struct CUstream_st *stream) {
    static const char ctx[] = "comm_nccl_init";
    CHECK(c, "comm_nccl_init without a comm");
    const int P = comm_size(c), me = comm_rank(c);

    // The library loaded at run time against the headers we were built with.
    int code = 0, major, minor, patch;
    NCCL_CALL(c, NULL, ctx, ncclGetVersion, &code);
    decode_version(code, &major, &minor, &patch);
    if (major < NCCL_MAJOR) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "the NCCL library loaded at run time is version %d.%d.%d, older than the NCCL %d.%d.%d headers "
                 "grurec was built with: put NCCL %d.x (libnccl.so.%d) first on LD_LIBRARY_PATH, or rebuild",
                 major, minor, patch, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, NCCL_MAJOR, NCCL_MAJOR);
        comm_abort(c, 1, msg);
    }
    comm_check_same_u64(c, (uint64_t)code, "NCCL library version code");  // NCCL needs one version

    comm_nccl *n = xcalloc(1, sizeof *n);
    n->c = c;
    n->stream = (cudaStream_t)stream;
    CUDA_CALL(c, ctx, cudaGetDevice, &n->device);
    for (int k = 0; k < MAX_STARTED; k++)
        CUDA_CALL(c, ctx, cudaEventCreateWithFlags, &n->run[k].ev, cudaEventDisableTiming);

    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (me == 0) NCCL_CALL(c, NULL, ctx, ncclGetUniqueId, &id);
    comm_bcast(c, &id, sizeof id, 0);

    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    config.commName = "grurec";
    char subject[160];
    snprintf(subject, sizeof subject, "NCCL communicator set-up (%d ranks, this rank on CUDA device %d)", P,
             n->device);
    const double deadline = now_s() + comm_timeout(c);
    NCCL_START(c, n->nc, ctx, ncclCommInitRankConfig, &n->nc, P, id, me, &config);
    CHECK(n->nc, "ncclCommInitRankConfig returned no communicator");
    wait_idle(n, 0, NULL, deadline, subject, ctx);
    return n;
}

void comm_nccl_free(comm_nccl *n) {
    static const char ctx[] = "comm_nccl_free";
    if (!n) return;
    comm *c = n->c;
    if (n->nc) {
        // Finalize flushes what is still queued and waits for the peers (with the deadline);
        // Destroy then only frees local resources.
        const double deadline = now_s() + comm_timeout(c);
        NCCL_START(c, n->nc, ctx, ncclCommFinalize, n->nc);
        wait_idle(n, 0, NULL, deadline, "NCCL communicator finalize", ctx);
        NCCL_CALL(c, n->nc, ctx, ncclCommDestroy, n->nc);
    }
    for (int k = 0; k < MAX_STARTED; k++)
        if (n->run[k].ev) CUDA_CALL(c, ctx, cudaEventDestroy, n->run[k].ev);
    free(n);
}

uint64_t comm_nccl_bytes_sent(const comm_nccl *n) { return n->bytes_sent; }

// ---- all-reduce ---------------------------------------------------------------------

// As comm_mpi.c counts one all-reduce round of COUNT floats: the balanced split gives this
// rank a segment of M elements; it sends the other segments to their owners (count - M) and
// its summed segment to every other rank ((P - 1) M).
static uint64_t allreduce_bytes(const comm_nccl *n, size_t count) {
    const size_t P = (size_t)comm_size(n->c), me = (size_t)comm_rank(n->c);
    if (P <= 1) return 0;
    const size_t mine = count / P + (me < count % P);
    return (uint64_t)sizeof(float) * ((uint64_t)(count - mine) + (uint64_t)(P - 1) * (uint64_t)mine);
}

void comm_nccl_allreduce_sum_f32(comm_nccl *n, float *dev_buf, size_t count, const char *what) {
    comm_nccl_allreduce_sum_f32_start(n, dev_buf, count, what);
    // the stream idle, under the deadline of the all-reduce (and of any started before it)
    wait_idle_on(n, 1, NULL, 1, now_s() + comm_timeout(n->c), "the CUDA stream",
                 what ? what : "comm_nccl_allreduce_sum_f32");
    retire_done(n);
}

void comm_nccl_allreduce_sum_f32_group(comm_nccl *n, float *const *dev_bufs, const size_t *counts, int k,
                                       const char *what) {
    const char *ctx = what ? what : "comm_nccl_allreduce_sum_f32_group";
    CHECK(n && k >= 0 && (k == 0 || (dev_bufs && counts)), "%s: NCCL group all-reduce of %d buffers", ctx, k);
    comm *c = n->c;
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        CHECK(dev_bufs[i] || counts[i] == 0, "%s: buffer %d of %zu floats is NULL", ctx, i, counts[i]);
        total += counts[i];
    }
    const double deadline = now_s() + comm_timeout(c);
    if (total > 0) {
        // Inside a group the calls only queue; ncclGroupEnd launches them as one operation
        // and may return ncclInProgress (polled in wait_idle).
        nccl_check(c, n->nc, ncclGroupStart(), 0, "ncclGroupStart", ctx, __FILE__, __LINE__);
        for (int i = 0; i < k; i++) {
            if (counts[i] == 0) continue;
            NCCL_START(c, n->nc, ctx, ncclAllReduce, dev_bufs[i], dev_bufs[i], counts[i], ncclFloat32, ncclSum, n->nc,
                       n->stream);
            n->bytes_sent += allreduce_bytes(n, counts[i]);
        }
        nccl_check(c, n->nc, ncclGroupEnd(), 1, "ncclGroupEnd", ctx, __FILE__, __LINE__);
    }
    char subject[96];
    snprintf(subject, sizeof subject, "NCCL all-reduce of %zu floats", total);
    wait_idle(n, 1, NULL, deadline, subject, ctx);
}

void comm_nccl_allreduce_sum_f32_start(comm_nccl *n, float *dev_buf, size_t count, const char *what) {
    const char *ctx = what ? what : "comm_nccl_allreduce_sum_f32_start";
    CHECK(n && (dev_buf || count == 0), "%s: NCCL all-reduce of %zu floats from %p", ctx, count, (void *)dev_buf);
    comm *c = n->c;
    const double deadline = now_s() + comm_timeout(c);
    if (count == 0) return;
    if (n->run_n == MAX_STARTED) {  // (no caller lets so many run: the oldest's event, waited for;
        const started *r = &n->run[n->run_first];  // the waits retire them, not the start)
        wait_idle_on(n, 1, r->ev, 1, r->deadline, "", r->what);
        retire_done(n);
    }
    NCCL_START(c, n->nc, ctx, ncclAllReduce, dev_buf, dev_buf, count, ncclFloat32, ncclSum, n->nc, n->stream);
    n->bytes_sent += allreduce_bytes(n, count);
    char subject[96];
    snprintf(subject, sizeof subject, "NCCL all-reduce of %zu floats", count);
    wait_idle(n, 0, NULL, deadline, subject, ctx);  // NCCL has taken it: the stream is not waited for
    started *r = &n->run[(n->run_first + n->run_n++) % MAX_STARTED];
    CUDA_CALL(c, ctx, cudaEventRecord, r->ev, n->stream);
    r->deadline = deadline, r->count = count;
    snprintf(r->what, sizeof r->what, "%s", ctx);
}

void comm_nccl_wait_event(comm_nccl *n, struct CUevent_st *ev) {
    CHECK(n && ev, "comm_nccl_wait_event without a communicator or an event");
    wait_idle_on(n, 1, (cudaEvent_t)ev, 1, now_s() + comm_timeout(n->c), "the CUDA stream", "comm_nccl_wait_event");
    retire_done(n);
}
