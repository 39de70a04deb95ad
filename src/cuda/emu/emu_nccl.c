// NCCL over MPI for the CUDA emulation. A communicator spans MPI_COMM_WORLD (rank and size
// must be MPI's; one rank needs no MPI). Set-up is non-blocking as grurec asks for
// (config.blocking = 0): ncclCommInitRankConfig returns ncclInProgress and
// ncclCommGetAsyncError moves it on (a duplicated MPI communicator, then a check that every
// rank passed the same ncclUniqueId). An all-reduce is queued on its stream; when the
// stream runs it, it gathers every rank's values (MPI_Iallgather) and sums them in rank
// order, so every rank gets the same bits. A rank that waits on a missing peer makes the
// stream "not ready" (cudaStreamQuery) until the peer comes: grurec's deadlines run as on
// a GPU. Floats and sums only: all grurec asks of NCCL.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef GRUREC_EMU_MPI
#include <mpi.h>
#endif

#include "emu.h"
#include "nccl.h"

struct ncclComm {
    int nranks, rank, ready, aborted;
    ncclUniqueId id;
#ifdef GRUREC_EMU_MPI
    MPI_Comm mc;
    MPI_Request req;
    int stage;            // 0: duplicating MPI_COMM_WORLD, 1: comparing the ids
    uint64_t ids[2], maxes[2];
#endif
};

typedef struct {
    const float *send;
    float *recv;
    size_t count;
} part;

static char g_last_error[512];
static int g_group_depth;
static part *g_group;  // the all-reduces of the open group
static int g_n_group, g_cap_group;
static ncclComm_t g_group_comm;
static cudaStream_t g_group_stream;

static ncclResult_t fail(ncclResult_t r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return r;
}

// GRUREC_EMU_NCCL_VERSION stands for another library at run time (comm_nccl.c's checks).
ncclResult_t ncclGetVersion(int *version) {
    if (!version) return fail(ncclInvalidArgument, "ncclGetVersion: version is NULL");
    const char *v = getenv("GRUREC_EMU_NCCL_VERSION");
    *version = v && *v ? atoi(v) : NCCL_VERSION_CODE;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static unsigned counter;
    if (!id) return fail(ncclInvalidArgument, "ncclGetUniqueId: id is NULL");
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "grurec-emu %ld %lld %u", (long)getpid(), (long long)time(NULL),
             counter++);
    return ncclSuccess;
}

static uint64_t id_hash(const ncclUniqueId *id) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) h = (h ^ (unsigned char)id->internal[i]) * 0x100000001b3ULL;
    return h;
}

// Moves the set-up on: ncclInProgress until it is done.
static ncclResult_t progress_init(ncclComm_t c, int wait) {
#ifdef GRUREC_EMU_MPI
    while (!c->ready && c->nranks > 1) {
        int done = 0;
        if (wait) MPI_Wait(&c->req, MPI_STATUS_IGNORE), done = 1;
        else MPI_Test(&c->req, &done, MPI_STATUS_IGNORE);
        if (!done) return ncclInProgress;
        if (c->stage == 0) {  // every rank must have the same id: max(h) and max(~h) = ~min(h)
            c->ids[0] = id_hash(&c->id);
            c->ids[1] = ~c->ids[0];
            MPI_Iallreduce(c->ids, c->maxes, 2, MPI_UINT64_T, MPI_MAX, c->mc, &c->req);
            c->stage = 1;
        } else {
            if (c->maxes[0] != ~c->maxes[1])
                return fail(ncclInvalidUsage, "the ranks passed different ncclUniqueIds to ncclCommInitRank");
            c->ready = 1;
        }
    }
#else
    (void)wait;
#endif
    c->ready = 1;
    return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t *config) {
    if (!comm) return fail(ncclInvalidArgument, "ncclCommInitRank: comm is NULL");
    *comm = NULL;
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return fail(ncclInvalidArgument, "ncclCommInitRank: rank %d of %d ranks", rank, nranks);
    int device;
    const cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) return fail(ncclUnhandledCudaError, "Cuda failure '%s'", cudaGetErrorString(e));
    ncclComm_t c = calloc(1, sizeof *c);
    if (!c) return fail(ncclSystemError, "out of host memory");
    c->nranks = nranks;
    c->rank = rank;
    c->id = id;
    if (nranks > 1) {
#ifdef GRUREC_EMU_MPI
        int inited = 0, size = 0, me = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            free(c);
            return fail(ncclInvalidUsage, "the emulated NCCL runs over MPI, which is not initialised");
        }
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        MPI_Comm_rank(MPI_COMM_WORLD, &me);
        if (size != nranks || me != rank) {
            free(c);
            return fail(ncclInvalidArgument,
                        "the emulated NCCL spans MPI_COMM_WORLD: rank %d of %d asked for, MPI's rank %d of %d", rank,
                        nranks, me, size);
        }
        MPI_Comm_idup(MPI_COMM_WORLD, &c->mc, &c->req);
#else
        free(c);
        return fail(ncclInvalidUsage, "this build has no MPI: the emulated NCCL has one rank only");
#endif
    }
    *comm = c;
    const int blocking = !config || config->blocking == NCCL_CONFIG_UNDEF_INT || config->blocking != 0;
    return progress_init(c, blocking);
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    return ncclCommInitRankConfig(comm, nranks, id, rank, NULL);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *state) {
    if (!comm || !state) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: NULL argument");
    *state = comm->aborted ? ncclSuccess : progress_init(comm, 0);
    return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
    if (!comm) return fail(ncclInvalidArgument, "ncclCommFinalize: comm is NULL");
    return ncclSuccess;  // its all-reduces are on their streams, run when those are
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return fail(ncclInvalidArgument, "ncclCommDestroy: comm is NULL");
#ifdef GRUREC_EMU_MPI
    if (comm->nranks > 1 && comm->ready) MPI_Comm_free(&comm->mc);
#endif
    free(comm);
    return ncclSuccess;
}

// Queued all-reduces of an aborted communicator do nothing; its MPI communicator may
// have collectives in flight and is left to the process's end (MPI_Abort follows).
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (comm) comm->aborted = 1;
    return ncclSuccess;
}

// ---- all-reduce ----

typedef struct {
    ncclComm_t c;
    part *parts;
    int n, started;
    size_t total;
    float *mine, *all;
#ifdef GRUREC_EMU_MPI
    MPI_Request req;
#endif
} allreduce_op;

static void open_parts(const allreduce_op *o, int recv) {
    const void *ptrs[64];
    int n = 0;
    for (int q = 0; q < o->n; q++) {
        ptrs[n++] = recv ? (const void *)o->parts[q].recv : (const void *)o->parts[q].send;
        if (n == 64) emu_fatal("an NCCL group of more than 64 all-reduces");
    }
    emu_access_begin(recv ? "ncclAllReduce (results)" : "ncclAllReduce (inputs)", ptrs, n);
}

static int run_allreduce(void *ctx, int wait) {
    allreduce_op *o = ctx;
    if (o->c->aborted) return 1;
    size_t at = 0;
    if (!o->started) {  // this rank's values, in the order of the group
        open_parts(o, 0);
        for (int q = 0; q < o->n; q++) {
            memcpy(o->mine + at, o->parts[q].send, o->parts[q].count * sizeof(float));
            at += o->parts[q].count;
        }
        emu_access_end();
#ifdef GRUREC_EMU_MPI
        if (o->c->nranks > 1)
            MPI_Iallgather(o->mine, (int)o->total, MPI_FLOAT, o->all, (int)o->total, MPI_FLOAT, o->c->mc, &o->req);
#endif
        o->started = 1;
    }
    const int P = o->c->nranks;
#ifdef GRUREC_EMU_MPI
    if (P > 1) {
        int done = 0;
        if (wait) MPI_Wait(&o->req, MPI_STATUS_IGNORE), done = 1;
        else MPI_Test(&o->req, &done, MPI_STATUS_IGNORE);
        if (!done) return 0;
        for (size_t e = 0; e < o->total; e++) {  // rank order: the same bits on every rank
            float s = o->all[e];
            for (int q = 1; q < P; q++) s += o->all[(size_t)q * o->total + e];
            o->mine[e] = s;
        }
    }
#else
    (void)wait;
    (void)P;
#endif
    open_parts(o, 1);
    at = 0;
    for (int q = 0; q < o->n; q++) {
        memcpy(o->parts[q].recv, o->mine + at, o->parts[q].count * sizeof(float));
        at += o->parts[q].count;
    }
    emu_access_end();
    return 1;
}

static void destroy_allreduce(void *ctx) {
    allreduce_op *o = ctx;
    free(o->parts);
    free(o->mine);
    free(o->all);
    free(o);
}

static ncclResult_t enqueue(ncclComm_t c, cudaStream_t st, part *parts, int n) {
    allreduce_op *o = calloc(1, sizeof *o);
    if (!o) return fail(ncclSystemError, "out of host memory");
    o->c = c;
    o->parts = parts;
    o->n = n;
    for (int q = 0; q < n; q++) o->total += parts[q].count;
    if (o->total > (size_t)INT32_MAX / (size_t)c->nranks) {
        destroy_allreduce(o);
        return fail(ncclInvalidArgument, "the emulated NCCL sums at most %d floats at once", INT32_MAX / c->nranks);
    }
    o->mine = malloc(o->total * sizeof(float));
    o->all = malloc(o->total * (size_t)c->nranks * sizeof(float));
    if (!o->mine || !o->all) {
        destroy_allreduce(o);
        return fail(ncclSystemError, "out of host memory");
    }
    emu_enqueue(st, run_allreduce, o, destroy_allreduce);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    if (!comm) return fail(ncclInvalidArgument, "ncclAllReduce: comm is NULL");
    if (!comm->ready) return fail(ncclInvalidUsage, "ncclAllReduce: the communicator is still being set up");
    if (datatype != ncclFloat32 || op != ncclSum)
        return fail(ncclInvalidArgument, "ncclAllReduce: the emulation sums floats only (type %d, op %d)", (int)datatype,
                    (int)op);
    if (!emu_stream_valid(stream)) return fail(ncclInvalidArgument, "ncclAllReduce: the stream does not exist");
    if (count == 0) return ncclSuccess;
    char why[256];
    if (!emu_device_range(sendbuff, count * sizeof(float), why, sizeof why))
        return fail(ncclInvalidArgument, "ncclAllReduce of %zu floats: sendbuff %p is %s", count, sendbuff, why);
    if (!emu_device_range(recvbuff, count * sizeof(float), why, sizeof why))
        return fail(ncclInvalidArgument, "ncclAllReduce of %zu floats: recvbuff %p is %s", count, recvbuff, why);
    const part p = {sendbuff, recvbuff, count};
    if (g_group_depth == 0) {
        part *one = malloc(sizeof *one);
        if (!one) return fail(ncclSystemError, "out of host memory");
        *one = p;
        return enqueue(comm, stream, one, 1);
    }
    if (g_n_group > 0 && (comm != g_group_comm || stream != g_group_stream))
        return fail(ncclInvalidUsage, "the emulated NCCL groups all-reduces of one communicator and stream only");
    if (g_n_group == g_cap_group) {
        g_cap_group = g_cap_group ? 2 * g_cap_group : 8;
        part *v = realloc(g_group, (size_t)g_cap_group * sizeof *v);
        if (!v) return fail(ncclSystemError, "out of host memory");
        g_group = v;
    }
    g_group[g_n_group++] = p;
    g_group_comm = comm;
    g_group_stream = stream;
    return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
    g_group_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
    if (g_group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    if (--g_group_depth > 0 || g_n_group == 0) return ncclSuccess;
    part *parts = g_group;  // the group's all-reduces as one operation
    const int n = g_n_group;
    g_group = NULL;
    g_n_group = g_cap_group = 0;
    return enqueue(g_group_comm, g_group_stream, parts, n);
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
        case ncclSuccess: return "no error";
        case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
        case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
        case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
        case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
        case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
        case ncclRemoteError: return "remote process exited or there was a network error";
        case ncclInProgress: return "NCCL operation in progress";
        default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t comm) {
    (void)comm;
    return g_last_error;
}
