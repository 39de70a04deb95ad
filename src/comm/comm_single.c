// comm.h for a world of one process, for builds without MPI (-DGRUREC_MPI=OFF): every
// collective is the identity. Such a grurec trains on one GPU or one CPU process and
// refuses to start as one of several tasks (they would all think they are rank 0).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "comm/comm.h"

struct comm {
    double timeout_s;
};

static int g_initialised;

// A launcher's task count, when it says one (mpirun, srun, PMI).
static long launcher_tasks(const char **which) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
    for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *v = getenv(vars[k]);
        if (v && *v) {
            *which = vars[k];
            return strtol(v, NULL, 10);
        }
    }
    return 1;
}

comm *comm_init(int *argc, char ***argv, double timeout_s) {
    (void)argc, (void)argv;
    CHECK(!g_initialised, "comm_init called twice");
    CHECK(timeout_s > 0 && timeout_s < 1e9, "collective timeout must be > 0 seconds, not %g", timeout_s);
    const char *which = "";
    long tasks = launcher_tasks(&which);
    if (tasks > 1) {
        fprintf(stderr, "%s: this grurec was built without MPI (-DGRUREC_MPI=OFF) but started as one of %ld tasks "
                        "(%s): run one process, or rebuild with MPI\n", program_name(), tasks, which);
        exit(EXIT_INPUT);
    }
    comm *c = xcalloc(1, sizeof *c);
    c->timeout_s = timeout_s;
    g_initialised = 1;
    return c;
}

void comm_finalize(comm *c) {
    if (!c) return;
    free(c);
    g_initialised = 0;
}

const char *comm_kind(void) { return "single"; }
int comm_rank(const comm *c) { (void)c; return 0; }
int comm_size(const comm *c) { (void)c; return 1; }
int comm_local_rank(const comm *c) { (void)c; return 0; }
double comm_timeout(const comm *c) { return c->timeout_s; }
uint64_t comm_bytes_sent(const comm *c) { (void)c; return 0; }

void comm_set_timeout(comm *c, double timeout_s) {
    CHECK(timeout_s > 0 && timeout_s < 1e9, "collective timeout must be > 0 seconds, not %g", timeout_s);
    c->timeout_s = timeout_s;
}

void comm_set_chunk_bytes(comm *c, size_t bytes) { (void)c, (void)bytes; }
int comm_shared_memory(const comm *c) {
    (void)c;
    return 0;
}
void *comm_node_segment(comm *c, size_t bytes) {
    (void)c, (void)bytes;
    return NULL;
}
void comm_node_barrier(comm *c) { (void)c; }
float *comm_shared_buffer_f32(comm *c, size_t n) {
    (void)c, (void)n;
    return NULL;
}
const float *comm_allreduce_shared_f32(comm *c, size_t n) {
    (void)c, (void)n;
    CHECK(0, "comm_allreduce_shared_f32 without a shared buffer");
    return NULL;
}

// Sums and extremes over one rank: the values themselves.
void comm_allreduce_sum_f32(comm *c, float *buf, size_t n) { (void)c, (void)buf, (void)n; }
void comm_allreduce_sum_f64(comm *c, double *buf, size_t n) { (void)c, (void)buf, (void)n; }
void comm_allreduce_sum_i64(comm *c, int64_t *buf, size_t n) { (void)c, (void)buf, (void)n; }
void comm_allreduce_max_i64(comm *c, int64_t *buf, size_t n) { (void)c, (void)buf, (void)n; }
void comm_allreduce_min_i64(comm *c, int64_t *buf, size_t n) { (void)c, (void)buf, (void)n; }

int64_t comm_allgatherv_i32(comm *c, const int32_t *mine, int64_t n, int32_t **out, int64_t *counts) {
    (void)c;
    CHECK(n >= 0 && (mine || n == 0), "comm_allgatherv_i32: %lld values from %p", (long long)n, (const void *)mine);
    *out = xmalloc((size_t)(n > 0 ? n : 1) * sizeof **out);
    if (n) memcpy(*out, mine, (size_t)n * sizeof **out);
    counts[0] = n;
    return n;
}

void comm_alltoallv(comm *c, const void *send, const size_t *send_bytes, void *recv, const size_t *recv_bytes) {
    (void)c;
    CHECK(send_bytes[0] == recv_bytes[0], "comm_alltoallv: %zu bytes to itself, %zu expected", send_bytes[0],
          recv_bytes[0]);
    if (send_bytes[0]) memcpy(recv, send, send_bytes[0]);
}

void comm_alltoallv_learn(comm *c, const void *send, const size_t *send_bytes, void *recv, size_t recv_cap,
                          size_t *recv_bytes) {
    CHECK(send_bytes[0] <= recv_cap, "comm_alltoallv_learn: %zu bytes to itself, room for %zu", send_bytes[0], recv_cap);
    recv_bytes[0] = send_bytes[0];
    comm_alltoallv(c, send, send_bytes, recv, recv_bytes);
}

void comm_alltoallv_take(comm *c, const void *send, const size_t *send_bytes, const size_t *recv_bytes,
                         comm_take_fn take, void *arg) {
    (void)c;
    CHECK(send_bytes[0] == recv_bytes[0], "comm_alltoallv_take: %zu bytes to itself, %zu expected", send_bytes[0],
          recv_bytes[0]);
    take(arg, 0, send, send_bytes[0]);
}

void comm_bcast(comm *c, void *buf, size_t bytes, int root) {
    (void)c, (void)buf, (void)bytes;
    CHECK(root == 0, "comm_bcast from rank %d of 1", root);
}

void comm_barrier(comm *c) { (void)c; }
void comm_check_same_u64(comm *c, uint64_t value, const char *what) { (void)c, (void)value, (void)what; }

GRUREC_NORETURN void comm_abort(comm *c, int code, const char *msg) {
    (void)c;
    fflush(stdout);
    fprintf(stderr, "%s: rank 0: %s\n", program_name(), msg);
    exit(code ? code : 1);
}
