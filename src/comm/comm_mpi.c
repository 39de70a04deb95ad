// The MPI backend of comm.h. Every collective is built from non-blocking MPI operations
// polled against a deadline (wait_all); a missed deadline starts a "blame round" on a
// communicator of its own that names the rank that did not answer, then MPI_Abort. When
// every rank runs on one machine, the all-reduces go through shared memory instead
// (shm_allreduce), waited for against the same deadline (comm/shm_wait.h).
#define _GNU_SOURCE  // sched_getaffinity
#include "comm.h"

#include "util/check.h"

#include <inttypes.h>
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util/clock.h"
#include "shm_segment.h"
#include "comm/shm_wait.h"

// Point-to-point tags on c->coll: one pair per reduction kind (reduce-scatter, all-gather),
// so that ranks calling different collectives wait (and time out, "every rank answered")
// instead of mixing their data.
enum { OP_SUM_F32, OP_SUM_F64, OP_SUM_I64, OP_MAX_I64, OP_MIN_I64, N_OPS };
enum {
    TAG_RS = 100,           // + op: contributions to the segment owner
    TAG_AG = 200,           // + op: summed segments from their owner
    TAG_GV_COUNT = 300,     // all-gather of counts
    TAG_GV_DATA = 301,      // all-gather of values
    TAG_SAME = 302,         // comm_check_same_u64
    TAG_MACHINE = 303,      // start-up: which machine each rank runs on
    TAG_A2A = 304,          // comm_alltoallv
    TAG_BLAME = 1           // on c->blame
};
#define MAX_MSG ((size_t)1 << 30)        // bytes per MPI message (counts are int)
#define DEFAULT_CHUNK ((size_t)16 << 20)  // bytes per all-reduce round
#define SPIN_S 20e-3                      // polling (yielding) after the last progress (s) ...
#define SPIN_CROWDED_S 50e-6              // ... with more ranks than cores on this machine
#define PROBE_S 10e-3                     // sleeping on shared memory: blame-round checks this often
#define MIN_SLEEP_NS 10000L               // then the back-off: 10 us ...
#define MAX_SLEEP_NS 200000L              // ... up to 200 us
#define MAX_NODE_SEGMENTS 4

struct comm {
    MPI_Comm coll;   // all collectives
    MPI_Comm blame;  // blame rounds only
    int rank, size, local_rank;
    int owns_mpi;    // we called MPI_Init, so we call MPI_Finalize
    double timeout_s;
    double spin_s;   // how long a wait polls before it sleeps
    size_t chunk_bytes;
    uint64_t bytes_sent;
    void *scratch;
    size_t scratch_bytes;
    MPI_Request *req;  // requests of the operation in progress
    int *idx;
    int nreq, cap;
    size_t *seg_lo, *seg_len;  // per rank, for the all-reduce in progress
    // The all-reduce through shared memory (every rank on this machine; see shm_allreduce)
    int shm_allowed;     // every rank runs on this machine, GRUREC_COMM_SHM is not 0, and no
                         // segment has failed: the same on every rank
    shm_segment shm;     // [bell | P flags | P slots | result], slots of shm_cap bytes (base NULL: none)
    size_t shm_cap;      // bytes per slot (0: no segment yet)
    uint64_t shm_gen;    // all-reduces through this segment so far
    uint64_t bar_gen;    // comm_node_barrier calls through this segment so far
    shm_segment node[MAX_NODE_SEGMENTS];  // comm_node_segment's, mapped until comm_finalize
    int n_node;
};

static int g_initialised;  // one comm per process

static int world_rank(void) {
    int r = -1, init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

noreturn void comm_abort(comm *c, int code, const char *msg) {
    fflush(stdout);
    fprintf(stderr, "%s: rank %d: %s\n", program_name(), c ? c->rank : world_rank(), msg);
    fflush(stderr);
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);  // not reached after MPI_Abort
}

static void mpi_ok(comm *c, int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING], msg[MPI_MAX_ERROR_STRING + 200];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    snprintf(msg, sizeof msg, "MPI error in %s: %s", what, s);
    comm_abort(c, 1, msg);
}

// ---- requests and the deadline ------------------------------------------------------

static MPI_Request *new_req(comm *c) {
    if (c->nreq == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->req = xrealloc(c->req, (size_t)c->cap * sizeof *c->req);
        c->idx = xrealloc(c->idx, (size_t)c->cap * sizeof *c->idx);
    }
    return &c->req[c->nreq++];
}

// Posts the transfer of BYTES bytes to/from PEER, in messages of at most MAX_MSG bytes.
static void post(comm *c, int send, void *p, size_t bytes, int peer, int tag, const char *what) {
    char *q = p;
    while (bytes > 0) {
        size_t k = bytes < MAX_MSG ? bytes : MAX_MSG;
        MPI_Request *r = new_req(c);
        int rc = send ? MPI_Isend(q, (int)k, MPI_BYTE, peer, tag, c->coll, r)
                      : MPI_Irecv(q, (int)k, MPI_BYTE, peer, tag, c->coll, r);
        mpi_ok(c, rc, what);
        if (send) c->bytes_sent += k;
        q += k;
        bytes -= k;
    }
}

static noreturn void blame_round(comm *c, const char *what);

// Completes every posted request by DEADLINE, or starts a blame round. Polls (yielding the
// core to any other runnable process) for c->spin_s after the last progress, then sleeps
// 10 us, 20 us, ... up to 200 us between polls, so that a long idle wait does not burn a core
// (a rank that naps longer than its partner computes adds that nap to every step);
// while idle it also listens for a blame round started by another rank and joins it.
static void wait_all(comm *c, double deadline, const char *what) {
    double spin_until = now_s() + c->spin_s;
    long nap = 0;
    for (;;) {
        int done = 0;
        mpi_ok(c, MPI_Testsome(c->nreq, c->req, &done, c->idx, MPI_STATUSES_IGNORE), what);
        if (done == MPI_UNDEFINED) break;  // no active request left
        double t = now_s();
        if (done > 0) {
            spin_until = t + c->spin_s;
            nap = 0;
            continue;
        }
        if (t > deadline) blame_round(c, what);
        if (t < spin_until) {
            sched_yield();
            continue;
        }
        if (c->blame != MPI_COMM_NULL) {
            int flag = 0;
            mpi_ok(c, MPI_Iprobe(MPI_ANY_SOURCE, TAG_BLAME, c->blame, &flag, MPI_STATUS_IGNORE), what);
            if (flag) blame_round(c, what);
        }
        nap = nap ? (2 * nap < MAX_SLEEP_NS ? 2 * nap : MAX_SLEEP_NS) : MIN_SLEEP_NS;
        sleep_ns(nap);
    }
    c->nreq = 0;
}

// Every rank that gets here sends a token to every other rank and listens for theirs for
// min(5 s, timeout) (at least 1 s); the lowest rank not heard from is named. Ranks waiting
// in any collective see the first token (wait_all) and join at once, so the living answer.
static noreturn void blame_round(comm *c, const char *what) {
    const int P = c->size, me = c->rank;
    char msg[512];
    if (c->blame == MPI_COMM_NULL) {  // during comm_init: nobody to ask
        snprintf(msg, sizeof msg, "%s did not complete within %g s", what, c->timeout_s);
        comm_abort(c, 1, msg);
    }
    double window = c->timeout_s < 5 ? c->timeout_s : 5;
    if (window < 1) window = 1;
    int token = me, *in = xcalloc((size_t)P, sizeof *in), *heard = xcalloc((size_t)P, sizeof *heard);
    int *idx = xmalloc((size_t)P * sizeof *idx);
    MPI_Request *rr = xmalloc((size_t)P * sizeof *rr), *sr = xmalloc((size_t)P * sizeof *sr);
    MPI_Status *st = xmalloc((size_t)P * sizeof *st);
    for (int q = 0; q < P; q++) {
        rr[q] = sr[q] = MPI_REQUEST_NULL;
        if (q == me) continue;
        // Errors here (a dead peer) just leave that peer unheard.
        MPI_Irecv(&in[q], 1, MPI_INT, q, TAG_BLAME, c->blame, &rr[q]);
        MPI_Isend(&token, 1, MPI_INT, q, TAG_BLAME, c->blame, &sr[q]);
    }
    heard[me] = 1;
    const double end = now_s() + window;
    int left = P - 1;
    while (left > 0 && now_s() < end) {
        int done = 0;
        int rc = MPI_Testsome(P, rr, &done, idx, st);
        if (rc != MPI_SUCCESS && rc != MPI_ERR_IN_STATUS) break;
        if (done == MPI_UNDEFINED) break;
        for (int i = 0; i < done; i++) {
            left--;
            if (rc == MPI_SUCCESS || st[i].MPI_ERROR == MPI_SUCCESS) heard[idx[i]] = 1;
        }
        if (done == 0) sleep_ns(MAX_SLEEP_NS);
    }
    int culprit = -1;
    for (int q = 0; q < P && culprit < 0; q++)
        if (!heard[q]) culprit = q;
    fflush(stdout);
    if (culprit >= 0)
        fprintf(stderr, "%s: rank %d did not answer within %g s (seen from rank %d in %s)\n", program_name(), culprit,
                c->timeout_s, me, what);
    else
        fprintf(stderr, "%s: rank %d: %s did not complete within %g s although every rank answered "
                        "(do all ranks call the same collectives?)\n", program_name(), me, what, c->timeout_s);
    fflush(stderr);
    sleep_ns(200 * 1000000L);  // let the other ranks of the round print their line too
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);  // not reached
}

static double deadline_of(const comm *c) { return now_s() + c->timeout_s; }

static void allgather_fixed(comm *c, const void *mine, size_t bytes, void *out, int tag, double deadline,
                            const char *what);

// ---- set-up -------------------------------------------------------------------------

static int env_rank(const char *name, int *out) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    long r = strtol(v, &end, 10);
    if (*end || r < 0 || r > 1 << 20) return 0;
    *out = (int)r;
    return 1;
}

// Where a rank runs: its machine, and the cores it may use.
typedef struct {
    char id[80];
    cpu_set_t cpus;
} place;

// More ranks on ME's machine than cores they may use together (the union of their
// affinities): they take turns on the cores, so a waiting rank gives its core away soon
// instead of polling while the rank it waits for is not running.
static int crowded(const place *me, const place *all, int P) {
    cpu_set_t cores;
    CPU_ZERO(&cores);
    int ranks = 0;
    for (int q = 0; q < P; q++)
        if (memcmp(all[q].id, me->id, sizeof me->id) == 0) {
            CPU_OR(&cores, &cores, &all[q].cpus);
            ranks++;
        }
    return ranks > CPU_COUNT(&cores);
}

comm *comm_init(int *argc, char ***argv, double timeout_s) {
    CHECK(!g_initialised, "comm_init called twice");
    CHECK(timeout_s > 0 && timeout_s < 1e9, "collective timeout must be > 0 seconds, not %g", timeout_s);
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    CHECK(!fin, "comm_init after MPI_Finalize");
    comm *c = xcalloc(1, sizeof *c);
    if (!init) {
        int provided;
        CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "MPI_Init failed");
        c->owns_mpi = 1;
    }
    g_initialised = 1;
    c->coll = c->blame = MPI_COMM_NULL;
    c->shm.fd = -1;
    c->timeout_s = timeout_s;
    c->spin_s = SPIN_S;
    c->chunk_bytes = DEFAULT_CHUNK;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (!env_rank("OMPI_COMM_WORLD_LOCAL_RANK", &c->local_rank) && !env_rank("SLURM_LOCALID", &c->local_rank) &&
        !env_rank("MPI_LOCALRANKID", &c->local_rank))
        c->local_rank = 0;
    // Our own communicators: errors come back to us (mpi_ok), and no message of the caller's
    // can match ours. The duplication has the deadline too.
    MPI_Comm coll, blame;
    mpi_ok(c, MPI_Comm_idup(MPI_COMM_WORLD, &coll, new_req(c)), "MPI_Comm_idup");
    mpi_ok(c, MPI_Comm_idup(MPI_COMM_WORLD, &blame, new_req(c)), "MPI_Comm_idup");
    wait_all(c, deadline_of(c), "start-up (MPI_Comm_idup)");
    MPI_Comm_set_errhandler(coll, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(blame, MPI_ERRORS_RETURN);
    c->coll = coll;
    c->blame = blame;
    c->seg_lo = xmalloc((size_t)c->size * sizeof *c->seg_lo);
    c->seg_len = xmalloc((size_t)c->size * sizeof *c->seg_len);
    // All-reduces go through shared memory when every rank runs on this machine, unless
    // GRUREC_COMM_SHM=0 (part of the compared id, so the ranks cannot disagree).
    if (c->size > 1) {
        place me, *all = xmalloc((size_t)c->size * sizeof *all);
        memset(&me, 0, sizeof me);
        shm_machine_id(me.id, 64);
        const char *env = getenv("GRUREC_COMM_SHM");
        const int off = env && strcmp(env, "0") == 0;
        if (off) strcat(me.id, "|no-shm");
        if (sched_getaffinity(0, sizeof me.cpus, &me.cpus) != 0) memset(&me.cpus, 0xff, sizeof me.cpus);  // (unknown)
        allgather_fixed(c, &me, sizeof me, all, TAG_MACHINE, deadline_of(c), "start-up (machine ids)");
        int same = !off;
        for (int q = 1; q < c->size; q++) same = same && memcmp(all[q].id, all[0].id, sizeof me.id) == 0;
        c->shm_allowed = same;
        if (crowded(&me, all, c->size)) c->spin_s = SPIN_CROWDED_S;
        free(all);
    }
    return c;
}

void comm_finalize(comm *c) {
    if (!c) return;
    comm_barrier(c);  // nobody enters MPI_Finalize (no deadline) before everyone is here
    shm_segment_close(&c->shm);
    for (int k = 0; k < c->n_node; k++) shm_segment_close(&c->node[k]);
    MPI_Comm_free(&c->coll);
    MPI_Comm_free(&c->blame);
    if (c->owns_mpi) MPI_Finalize();
    free(c->scratch);
    free(c->req);
    free(c->idx);
    free(c->seg_lo);
    free(c->seg_len);
    free(c);
    g_initialised = 0;
}

const char *comm_kind(void) { return "mpi"; }
int comm_rank(const comm *c) { return c->rank; }
int comm_size(const comm *c) { return c->size; }
int comm_local_rank(const comm *c) { return c->local_rank; }
double comm_timeout(const comm *c) { return c->timeout_s; }
uint64_t comm_bytes_sent(const comm *c) { return c->bytes_sent; }

void comm_set_timeout(comm *c, double timeout_s) {
    CHECK(timeout_s > 0 && timeout_s < 1e9, "collective timeout must be > 0 seconds, not %g", timeout_s);
    c->timeout_s = timeout_s;
}

void comm_set_chunk_bytes(comm *c, size_t bytes) {
    CHECK(bytes > 0, "all-reduce chunk of 0 bytes");
    c->chunk_bytes = bytes < MAX_MSG ? bytes : MAX_MSG;
}

static void *scratch(comm *c, size_t bytes) {
    if (bytes > c->scratch_bytes || !c->scratch) {
        free(c->scratch);
        c->scratch = xmalloc(bytes);
        c->scratch_bytes = bytes;
    }
    return c->scratch;
}

// ---- all-reduce ---------------------------------------------------------------------

// dst[i] = a[i] OP b[i], element by element (dst may be a or b: each element is read
// before it is written); the order across ranks is the caller's.
#define COMBINE_LOOP(T, EXPR)                                  \
    do {                                                       \
        T *d_ = dst;                                           \
        const T *a_ = a, *b_ = b;                              \
        _Pragma("GCC ivdep") for (size_t i = 0; i < n; i++) {  \
            const T x = a_[i], y = b_[i];                      \
            d_[i] = (EXPR);                                    \
        }                                                      \
    } while (0)

static void combine(int op, void *dst, const void *a, const void *b, size_t n) {
    switch (op) {
    case OP_SUM_F32: COMBINE_LOOP(float, x + y); break;
    case OP_SUM_F64: COMBINE_LOOP(double, x + y); break;
    case OP_SUM_I64: COMBINE_LOOP(int64_t, (int64_t)((uint64_t)x + (uint64_t)y)); break;  // wraps, never UB
    case OP_MAX_I64: COMBINE_LOOP(int64_t, y > x ? y : x); break;
    case OP_MIN_I64: COMBINE_LOOP(int64_t, y < x ? y : x); break;
    }
}

// One round on LEN elements: rank q owns segment q (balanced split); everyone sends the
// owner its part, the owner combines the P parts in rank order, then sends the result to all.
static void reduce_chunk(comm *c, char *buf, size_t len, size_t esz, int op, double deadline, const char *what) {
    const int P = c->size, me = c->rank;
    const size_t base = len / (size_t)P, rem = len % (size_t)P;
    for (int q = 0; q < P; q++) {
        c->seg_lo[q] = (size_t)q * base + ((size_t)q < rem ? (size_t)q : rem);
        c->seg_len[q] = base + ((size_t)q < rem);
    }
    const size_t mine = c->seg_len[me] * esz;
    char *in = scratch(c, (size_t)P * mine);  // slot q: rank q's part of my segment
    char *own = buf + c->seg_lo[me] * esz;
    for (int q = 0; q < P; q++) {
        if (q == me) continue;
        if (mine) post(c, 0, in + (size_t)q * mine, mine, q, TAG_RS + op, what);
        if (c->seg_len[q]) post(c, 1, buf + c->seg_lo[q] * esz, c->seg_len[q] * esz, q, TAG_RS + op, what);
    }
    wait_all(c, deadline, what);
    if (mine) {  // ((x_0 + x_1) + x_2) + ..., in scratch slot 0, the last sum straight into my segment
        const char *acc = me == 0 ? own : in;
        for (int q = 1; q < P; q++) {
            char *dst = q == P - 1 ? own : in;
            combine(op, dst, acc, q == me ? own : in + (size_t)q * mine, c->seg_len[me]);
            acc = dst;
        }
    }
    for (int q = 0; q < P; q++) {
        if (q == me) continue;
        if (c->seg_len[q]) post(c, 0, buf + c->seg_lo[q] * esz, c->seg_len[q] * esz, q, TAG_AG + op, what);
        if (mine) post(c, 1, own, mine, q, TAG_AG + op, what);
    }
    wait_all(c, deadline, what);
}

static void reduce_p2p(comm *c, void *buf, size_t n, size_t esz, int op, const char *what) {
    const double deadline = deadline_of(c);
    size_t chunk = c->chunk_bytes / esz;
    if (chunk < (size_t)c->size) chunk = (size_t)c->size;
    for (size_t off = 0; off < n; off += chunk)
        reduce_chunk(c, (char *)buf + off * esz, n - off < chunk ? n - off : chunk, esz, op, deadline, what);
}

static int shm_allreduce(comm *c, void *buf, size_t n, size_t esz, int op, const char *what);

static void allreduce(comm *c, void *buf, size_t n, size_t esz, int op, const char *what) {
    if (c->size == 1 || n == 0) return;
    CHECK(buf, "%s of %zu elements from NULL", what, n);
    if (!shm_allreduce(c, buf, n, esz, op, what)) reduce_p2p(c, buf, n, esz, op, what);
}

void comm_allreduce_sum_f32(comm *c, float *buf, size_t n) {
    allreduce(c, buf, n, sizeof *buf, OP_SUM_F32, "comm_allreduce_sum_f32");
}
void comm_allreduce_sum_f64(comm *c, double *buf, size_t n) {
    allreduce(c, buf, n, sizeof *buf, OP_SUM_F64, "comm_allreduce_sum_f64");
}
void comm_allreduce_sum_i64(comm *c, int64_t *buf, size_t n) {
    allreduce(c, buf, n, sizeof *buf, OP_SUM_I64, "comm_allreduce_sum_i64");
}
void comm_allreduce_max_i64(comm *c, int64_t *buf, size_t n) {
    allreduce(c, buf, n, sizeof *buf, OP_MAX_I64, "comm_allreduce_max_i64");
}
void comm_allreduce_min_i64(comm *c, int64_t *buf, size_t n) {
    allreduce(c, buf, n, sizeof *buf, OP_MIN_I64, "comm_allreduce_min_i64");
}

// ---- all-reduce through shared memory --------------------------------------------------
// When every rank runs on this machine, an all-reduce needs no messages: rank r copies its
// buffer into slot r of a segment all ranks map and raises its "arrive" flag; once every
// flag is up, rank r sums its share of the elements over the P slots in rank order (the
// same order as reduce_chunk, so the same bits) into the result area and raises "done";
// once every rank is done, each copies the result back (or, through
// comm_allreduce_shared_f32, reads it in place until its next collective). Flags are
// per-call counters, so nothing is reset between calls; a rank cannot overwrite its slot
// for call g+1 before every rank has raised "done" for call g, i.e. finished reading the
// slots, and no rank passes "arrive" of call g+1 (and writes the result) before every
// rank has arrived there, i.e. is done with the result of g.
// A rank that raises a flag then rings the segment's bell; a waiting rank polls for
// c->spin_s, then sleeps on the bell (shm_wait.h), waking at least every PROBE_S to
// check the deadline and listen for a blame round, as wait_all.

#define SHM_LINE 64
static void bcast(comm *c, void *buf, size_t bytes, int root, const char *what);
enum { FLAG_ARRIVE, FLAG_DONE, FLAG_PASS };
typedef struct {
    _Atomic uint64_t arrive, done;  // the last call this rank has reached / finished summing
    uint64_t sig;                   // what that call is (op, element size, count): checked
    _Atomic uint64_t pass;          // the last comm_node_barrier this rank has reached
    uint64_t need;                  // comm_alltoallv: the slot bytes this rank's call needs
    char pad[SHM_LINE - 5 * sizeof(uint64_t)];
} shm_flags;

static shm_bell *shm_bell_of(comm *c) { return (shm_bell *)c->shm.base; }  // (the first line)
static shm_flags *shm_flag(comm *c, int q) { return (shm_flags *)((char *)c->shm.base + SHM_LINE) + q; }
static char *shm_slot(comm *c, int q) {
    return (char *)c->shm.base + (size_t)(c->size + 1) * SHM_LINE + (size_t)q * c->shm_cap;
}

// Raises this rank's counter *FLAG to GEN (publishing what it wrote before) and wakes the
// ranks that sleep on it.
static void shm_raise(comm *c, _Atomic uint64_t *flag, uint64_t gen) {
    atomic_store_explicit(flag, gen, memory_order_release);
    shm_bell_ring(shm_bell_of(c));
}
static char *shm_result(comm *c) { return shm_slot(c, c->size); }

typedef struct {
    comm *c;
    int which;     // FLAG_*
    uint64_t gen;
    int q;         // the ranks below q have reached gen
} shm_waiting;

static int all_reached(void *arg) {
    shm_waiting *w = arg;
    for (; w->q < w->c->size; w->q++) {
        shm_flags *fl = shm_flag(w->c, w->q);
        _Atomic uint64_t *f = w->which == FLAG_DONE ? &fl->done : w->which == FLAG_PASS ? &fl->pass : &fl->arrive;
        if (atomic_load_explicit(f, memory_order_acquire) < w->gen) return 0;
    }
    return 1;
}

// Waits until every rank's counter WHICH (FLAG_*) has reached GEN.
static void shm_wait(comm *c, int which, uint64_t gen, double deadline, const char *what) {
    shm_waiting w = {c, which, gen, 0};
    const double spin_until = now_s() + c->spin_s;
    for (;;) {
        const double t = now_s();
        if (t > deadline) blame_round(c, what);
        if (shm_wait_until(shm_bell_of(c), all_reached, &w, spin_until, t + PROBE_S < deadline ? t + PROBE_S : deadline))
            return;
        int flag = 0;
        mpi_ok(c, MPI_Iprobe(MPI_ANY_SOURCE, TAG_BLAME, c->blame, &flag, MPI_STATUS_IGNORE), what);
        if (flag) blame_round(c, what);
    }
}

// Rank 0 makes a segment of BYTES, the others map it, and all agree on the outcome
// (collective): 1, or 0 on every rank (S closed, ERR the reason where this rank failed).
static int shm_share(comm *c, shm_segment *s, size_t bytes, char *err, size_t err_len, const char *what) {
    char path[SHM_PATH_MAX] = "";
    int64_t ok = 1;
    s->base = NULL;
    s->fd = -1;
    if (c->rank == 0) ok = shm_segment_make(s, bytes, path, err, err_len) == 0;
    bcast(c, path, sizeof path, 0, what);  // empty: rank 0 could not make it
    if (c->rank != 0) ok = path[0] && shm_segment_open(s, path, bytes, err, err_len) == 0;
    reduce_p2p(c, &ok, 1, sizeof ok, OP_MIN_I64, what);  // (rank 0 holds the segment until here)
    if (!ok) shm_segment_close(s);
    return (int)ok;
}

// Makes sure the segment's slots hold BYTES (collective: every rank asks for the same).
// Rank 0 makes a new segment when it does not, the others map it, and all agree on the
// outcome; 0 (and shared memory off for good, on every rank) when any rank failed.
static int shm_ensure(comm *c, size_t bytes, const char *what) {
    if (bytes <= c->shm_cap) return 1;
    // (a quarter to spare: the step exchange's size varies a little from step to step)
    size_t cap = c->shm_cap * 2 > bytes + bytes / 4 ? c->shm_cap * 2 : bytes + bytes / 4;
    cap = (cap + SHM_LINE - 1) / SHM_LINE * SHM_LINE;
    const size_t total = (size_t)(c->size + 1) * SHM_LINE + (size_t)(c->size + 1) * cap;
    shm_segment_close(&c->shm);
    c->shm_cap = 0;
    c->shm_gen = c->bar_gen = 0;
    char err[256] = "";
    if (!shm_share(c, &c->shm, total, err, sizeof err, what)) {
        if (err[0]) fprintf(stderr, "%s: rank %d: no shared-memory all-reduce (%s): using messages\n",
                            program_name(), c->rank, err);
        c->shm_allowed = 0;
        return 0;
    }
    c->shm_cap = cap;
    return 1;
}

// What reduce_p2p would send from this rank (comm_bytes_sent counts the same either way).
static uint64_t p2p_bytes_sent(const comm *c, size_t n, size_t esz) {
    const size_t P = (size_t)c->size, me = (size_t)c->rank;
    size_t chunk = c->chunk_bytes / esz, sent = 0;
    if (chunk < P) chunk = P;
    for (size_t off = 0; off < n; off += chunk) {
        const size_t len = n - off < chunk ? n - off : chunk, base = len / P, rem = len % P;
        const size_t mine = base + (me < rem);
        sent += (len - mine) + (P - 1) * mine;  // the others' segments to them, then mine to all
    }
    return (uint64_t)(sent * esz);
}

// The all-reduce of the N elements in this rank's slot, into the result area.
static void shm_reduce(comm *c, size_t n, size_t esz, int op, const char *what) {
    const int P = c->size, me = c->rank;
    const double deadline = deadline_of(c);
    const uint64_t gen = ++c->shm_gen, sig = ((uint64_t)n << 8) | ((uint64_t)esz << 4) | (uint64_t)op;
    shm_flags *mine = shm_flag(c, me);
    mine->sig = sig;
    shm_raise(c, &mine->arrive, gen);
    shm_wait(c, FLAG_ARRIVE, gen, deadline, what);
    for (int q = 1; q < P; q++)  // (messages would wait for the deadline; this knows at once)
        if (shm_flag(c, q)->sig != shm_flag(c, 0)->sig) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s: rank %d called another collective (or size) than rank 0", what, q);
            comm_abort(c, 1, msg);
        }
    // My share: a balanced split of the elements, on cache-line bounds (no two ranks write
    // one line of the result).
    const size_t per_line = SHM_LINE / esz, lines = (n + per_line - 1) / per_line;
    const size_t lo = (lines * (size_t)me / (size_t)P) * per_line, hi_l = (lines * (size_t)(me + 1) / (size_t)P) * per_line;
    const size_t hi = hi_l < n ? hi_l : n;
    if (lo < hi) {
        char *dst = shm_result(c) + lo * esz;
        combine(op, dst, shm_slot(c, 0) + lo * esz, shm_slot(c, 1) + lo * esz, hi - lo);
        for (int q = 2; q < P; q++) combine(op, dst, dst, shm_slot(c, q) + lo * esz, hi - lo);
    }
    shm_raise(c, &mine->done, gen);
    shm_wait(c, FLAG_DONE, gen, deadline, what);
    c->bytes_sent += p2p_bytes_sent(c, n, esz);
}

// 1: done through shared memory; 0: the caller uses messages.
static int shm_allreduce(comm *c, void *buf, size_t n, size_t esz, int op, const char *what) {
    const size_t bytes = n * esz;
    if (!c->shm_allowed || !shm_ensure(c, bytes, what)) return 0;
    memcpy(shm_slot(c, c->rank), buf, bytes);
    shm_reduce(c, n, esz, op, what);
    memcpy(buf, shm_result(c), bytes);
    return 1;
}

float *comm_shared_buffer_f32(comm *c, size_t n) {
    if (c->size == 1 || n == 0 || !c->shm_allowed || !shm_ensure(c, n * sizeof(float), "comm_shared_buffer_f32"))
        return NULL;
    return (float *)shm_slot(c, c->rank);
}

const float *comm_allreduce_shared_f32(comm *c, size_t n) {
    CHECK(c->shm_allowed && n * sizeof(float) <= c->shm_cap, "comm_allreduce_shared_f32 of %zu floats without a "
          "shared buffer of that size", n);
    shm_reduce(c, n, sizeof(float), OP_SUM_F32, "comm_allreduce_sum_f32");
    return (const float *)shm_result(c);
}

int comm_shared_memory(const comm *c) { return c->shm_allowed; }

void *comm_node_segment(comm *c, size_t bytes) {
    static const char what[] = "comm_node_segment";
    if (c->size == 1 || bytes == 0 || !c->shm_allowed) return NULL;
    CHECK(c->n_node < MAX_NODE_SEGMENTS, "more than %d shared segments", MAX_NODE_SEGMENTS);
    char err[256] = "";
    shm_segment *s = &c->node[c->n_node];
    if (!shm_share(c, s, bytes, err, sizeof err, what)) {
        if (err[0]) fprintf(stderr, "%s: rank %d: no shared copy of the model (%s): one per rank\n", program_name(),
                            c->rank, err);
        return NULL;
    }
    c->n_node++;
    return s->base;
}

void comm_node_barrier(comm *c) {
    static const char what[] = "comm_node_barrier";
    if (c->size == 1) return;
    if (!c->shm_allowed || !shm_ensure(c, SHM_LINE, what)) {
        comm_barrier(c);
        return;
    }
    const uint64_t gen = ++c->bar_gen;
    shm_raise(c, &shm_flag(c, c->rank)->pass, gen);
    shm_wait(c, FLAG_PASS, gen, deadline_of(c), what);
}

// ---- all-gather, broadcast, barrier -------------------------------------------------

// OUT (P * BYTES) receives every rank's BYTES bytes in rank order.
static void allgather_fixed(comm *c, const void *mine, size_t bytes, void *out, int tag, double deadline,
                            const char *what) {
    char *o = out;
    memcpy(o + (size_t)c->rank * bytes, mine, bytes);
    for (int q = 0; q < c->size; q++) {
        if (q == c->rank) continue;
        post(c, 0, o + (size_t)q * bytes, bytes, q, tag, what);
        post(c, 1, o + (size_t)c->rank * bytes, bytes, q, tag, what);
    }
    wait_all(c, deadline, what);
}

int64_t comm_allgatherv_i32(comm *c, const int32_t *mine, int64_t n, int32_t **out, int64_t *counts) {
    static const char what[] = "comm_allgatherv_i32";
    CHECK(n >= 0 && (n == 0 || mine), "%s of %lld values from %p", what, (long long)n, (const void *)mine);
    const int P = c->size, me = c->rank;
    const double deadline = deadline_of(c);
    allgather_fixed(c, &n, sizeof n, counts, TAG_GV_COUNT, deadline, what);
    int64_t total = 0;
    for (int q = 0; q < P; q++) {
        CHECK(counts[q] >= 0, "%s: rank %d sent a count of %lld", what, q, (long long)counts[q]);
        total += counts[q];
    }
    int32_t *o = xmalloc((size_t)total * sizeof *o);
    int64_t at = 0;
    for (int q = 0; q < P; q++) {
        size_t bytes = (size_t)counts[q] * sizeof *o;
        if (q == me) {
            if (bytes) memcpy(o + at, mine, bytes);
        } else {
            if (bytes) post(c, 0, o + at, bytes, q, TAG_GV_DATA, what);
            if (n) post(c, 1, (void *)mine, (size_t)n * sizeof *o, q, TAG_GV_DATA, what);
        }
        at += counts[q];
    }
    wait_all(c, deadline, what);
    *out = o;
    return total;
}

// ---- all-to-all through shared memory --------------------------------------------------
// Rank r writes its P byte counts and its send buffer into slot r and raises "arrive"; once
// every rank has arrived, each copies its part of every slot out and raises "done" (the same
// flags, generations and rules as shm_reduce). A rank whose call does not fit the slots
// writes nothing but its need; then every rank sees that, grows the segment to the largest
// need (collective) and starts again, so the usual call costs two waits and no message.
#define A2A_FIRST_CAP ((size_t)1 << 20)  // slot bytes made by the first all-to-all

// 1: done through shared memory; 0: the caller uses messages.
// LEARN: RECV_BYTES is filled from the senders' counts (RECV holds RECV_CAP bytes).
// TAKE (when not NULL) is handed each rank's part in place instead of copying it to RECV.
static int shm_alltoallv(comm *c, const void *send, const size_t *send_bytes, void *recv, size_t *recv_bytes,
                         size_t recv_cap, int learn, comm_take_fn take, void *arg, double deadline,
                         const char *what) {
    const int P = c->size, me = c->rank;
    if (!c->shm_allowed || !shm_ensure(c, A2A_FIRST_CAP, what)) return 0;
    const size_t head = (size_t)P * sizeof(uint64_t);
    size_t total = 0;
    for (int q = 0; q < P; q++) total += send_bytes[q];
    for (;;) {
        const uint64_t gen = ++c->shm_gen;
        shm_flags *mine = shm_flag(c, me);
        mine->sig = (uint64_t)N_OPS;  // (not an all-reduce's: a mix-up is named at once)
        mine->need = head + total;
        if (mine->need <= c->shm_cap) {
            uint64_t *counts = (uint64_t *)shm_slot(c, me);
            for (int q = 0; q < P; q++) counts[q] = send_bytes[q];
            if (total) memcpy(shm_slot(c, me) + head, send, total);
        }
        shm_raise(c, &mine->arrive, gen);
        shm_wait(c, FLAG_ARRIVE, gen, deadline, what);
        size_t most = 0;
        for (int q = 0; q < P; q++) {
            const shm_flags *f = shm_flag(c, q);
            if (f->sig != (uint64_t)N_OPS) {
                char msg[300];
                snprintf(msg, sizeof msg, "%s: rank %d called another collective than rank %d", what, q, me);
                comm_abort(c, 1, msg);
            }
            if (f->need > most) most = f->need;
        }
        if (most > c->shm_cap) {  // (every rank sees the same needs: all grow, or none)
            if (!shm_ensure(c, most, what)) return 0;
            continue;
        }
        if (learn) {
            size_t in = 0;
            for (int q = 0; q < P; q++) in += recv_bytes[q] = ((const uint64_t *)shm_slot(c, q))[me];
            CHECK(in <= recv_cap, "%s: %zu bytes sent to rank %d, room for %zu", what, in, me, recv_cap);
        }
        char *r = recv;
        for (int q = 0; q < P; q++) {
            const uint64_t *counts = (const uint64_t *)shm_slot(c, q);
            CHECK(counts[me] == recv_bytes[q], "%s: rank %d sends %" PRIu64 " bytes to rank %d, %zu expected", what, q,
                  counts[me], me, recv_bytes[q]);
            size_t at = head;
            for (int p = 0; p < me; p++) at += counts[p];
            if (take) {
                take(arg, q, shm_slot(c, q) + at, recv_bytes[q]);
            } else {  // (RECV is NULL with TAKE: no arithmetic on it)
                if (recv_bytes[q]) memcpy(r, shm_slot(c, q) + at, recv_bytes[q]);
                r += recv_bytes[q];
            }
            if (q != me) c->bytes_sent += send_bytes[q];  // (what messages would send)
        }
        if (learn) c->bytes_sent += (uint64_t)(P - 1) * sizeof(size_t);  // (the counts messages send first)
        shm_raise(c, &mine->done, gen);
        shm_wait(c, FLAG_DONE, gen, deadline, what);
        return 1;
    }
}

// The all-to-all over messages, by DEADLINE (the caller's, taken when it was entered: a
// call made of several exchanges, or that fell back from shared memory, has one deadline
// and names itself in a blame round).
static void a2a_msgs(comm *c, const void *send, const size_t *send_bytes, void *recv, const size_t *recv_bytes,
                     double deadline, const char *what) {
    const char *s = send;
    char *r = recv;
    for (int q = 0; q < c->size; q++) {
        if (q == c->rank) {
            CHECK(send_bytes[q] == recv_bytes[q], "%s: %zu bytes to itself, %zu expected", what, send_bytes[q],
                  recv_bytes[q]);
            if (send_bytes[q]) memcpy(r, s, send_bytes[q]);
        } else {
            if (recv_bytes[q]) post(c, 0, r, recv_bytes[q], q, TAG_A2A, what);
            if (send_bytes[q]) post(c, 1, (void *)s, send_bytes[q], q, TAG_A2A, what);
        }
        s += send_bytes[q];
        r += recv_bytes[q];
    }
    wait_all(c, deadline, what);
}

void comm_alltoallv(comm *c, const void *send, const size_t *send_bytes, void *recv, const size_t *recv_bytes) {
    static const char what[] = "comm_alltoallv";
    const double deadline = deadline_of(c);
    if (c->size > 1 &&
        shm_alltoallv(c, send, send_bytes, recv, (size_t *)recv_bytes, 0, 0, NULL, NULL, deadline, what))
        return;
    a2a_msgs(c, send, send_bytes, recv, recv_bytes, deadline, what);
}

void comm_alltoallv_learn(comm *c, const void *send, const size_t *send_bytes, void *recv, size_t recv_cap,
                          size_t *recv_bytes) {
    static const char what[] = "comm_alltoallv_learn";
    const double deadline = deadline_of(c);
    if (c->size > 1 && shm_alltoallv(c, send, send_bytes, recv, recv_bytes, recv_cap, 1, NULL, NULL, deadline, what))
        return;
    // messages: the counts first (one per rank), then the bytes
    const size_t P = (size_t)c->size;
    size_t *one = scratch(c, P * sizeof *one);  // (the comm's, grown once: no allocation a step)
    for (size_t q = 0; q < P; q++) one[q] = sizeof *one;
    a2a_msgs(c, send_bytes, one, recv_bytes, one, deadline, what);
    size_t in = 0;
    for (size_t q = 0; q < P; q++) in += recv_bytes[q];
    CHECK(in <= recv_cap, "%s: %zu bytes sent to rank %d, room for %zu", what, in, c->rank, recv_cap);
    a2a_msgs(c, send, send_bytes, recv, recv_bytes, deadline, what);
}

void comm_alltoallv_take(comm *c, const void *send, const size_t *send_bytes, const size_t *recv_bytes,
                         comm_take_fn take, void *arg) {
    static const char what[] = "comm_alltoallv_take";
    const double deadline = deadline_of(c);
    if (c->size > 1 &&
        shm_alltoallv(c, send, send_bytes, NULL, (size_t *)recv_bytes, 0, 0, take, arg, deadline, what))
        return;
    size_t in = 0;
    for (int q = 0; q < c->size; q++) in += recv_bytes[q];
    char *buf = scratch(c, in + 1), *r = buf;  // (the comm's, grown once: no allocation a step)
    a2a_msgs(c, send, send_bytes, buf, recv_bytes, deadline, what);
    for (int q = 0; q < c->size; q++) take(arg, q, r, recv_bytes[q]), r += recv_bytes[q];
}

static void bcast(comm *c, void *buf, size_t bytes, int root, const char *what) {
    CHECK(root >= 0 && root < c->size, "%s from rank %d of %d", what, root, c->size);
    if (c->size == 1 || bytes == 0) return;
    const double deadline = deadline_of(c);
    for (size_t off = 0; off < bytes; off += MAX_MSG) {
        size_t k = bytes - off < MAX_MSG ? bytes - off : MAX_MSG;
        mpi_ok(c, MPI_Ibcast((char *)buf + off, (int)k, MPI_BYTE, root, c->coll, new_req(c)), what);
        if (c->rank == root) c->bytes_sent += (uint64_t)k * (uint64_t)(c->size - 1);
    }
    wait_all(c, deadline, what);
}

void comm_bcast(comm *c, void *buf, size_t bytes, int root) { bcast(c, buf, bytes, root, "comm_bcast"); }

void comm_barrier(comm *c) {
    if (c->size == 1) return;
    mpi_ok(c, MPI_Ibarrier(c->coll, new_req(c)), "comm_barrier");
    wait_all(c, deadline_of(c), "comm_barrier");
}

void comm_check_same_u64(comm *c, uint64_t value, const char *what) {
    if (c->size == 1) return;
    uint64_t *all = xmalloc((size_t)c->size * sizeof *all);
    allgather_fixed(c, &value, sizeof value, all, TAG_SAME, deadline_of(c), "comm_check_same_u64");
    for (int q = 1; q < c->size; q++) {
        if (all[q] == all[0]) continue;
        char who[32];
        snprintf(who, sizeof who, "rank %d", q);
        uint64_t theirs = all[q], first = all[0];
        free(all);
        input_fail_all(who, 0, "%s differs from rank 0 (0x%016" PRIx64 " vs 0x%016" PRIx64 ")", what, theirs, first);
    }
    free(all);
}
