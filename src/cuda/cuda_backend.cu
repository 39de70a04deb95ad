// CUDA backend: the CPU backend's step (src/backend/cpu_backend.c) on the GPU, call for call.
// Parameters, optimizer state, hidden states and every step buffer live on the GPU;
// the host feeds item ids (inputs, targets, the step's negatives from the same
// counter-based sampler as the CPU) and the index lists it derives from them: the
// distinct output items, the columns of each item and the input rows of each table row.
// The host keeps those lists exactly as the CPU backend does (row_grads slots assigned
// in the same order), so every gather, scatter and sum below has the CPU loop's order:
// no atomics, deterministic, and the CPU's bits wherever no matrix product intervenes
// (but for the per-row loss values, whose double log is CUDA's, within 1 ulp of glibc's).
//
// Reading guide, CPU function → here: forward → forward; gru_forward → gru_forward;
// backend_gradient_step → cuda_gradient_step (same sections, same order); gru_backward →
// gru_backward; scatter_rows → k_segment_add_rows; adagrad_dense/rows → k_adagrad(_rows) (a graph step: k_adagrad_parts, all in one);
// carry_state → carry_state; metrics_add_rows → k_rank_counts + rank_from_counts.
// On one rank a full step is one CUDA graph (graph_step, step_graph: the same calls,
// captured once and replayed; docs/cuda.md, "One CUDA graph per step").
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend/backend_ops.h"
#include "util/check.h"
#include "util/clock.h"
#include "comm/comm_nccl.h"
#include "dist/exchange.h"
}
#include "cuda_check.h"
#include "device_info.h"
#include "device_sampler.h"
#include "kernels.h"

// Index lists uploaded once per step (int32, fixed offsets; see upload_step_ids).
// (IX_EROWS and IX_CNT: the device-built lists only, k_step_lists.)
enum { IX_X, IX_COLS, IX_CSLOT, IX_UNIQ, IX_COFF, IX_CLIST, IX_SEGSLOT, IX_SEGOFF, IX_SEGROWS, IX_MOVE, IX_EROWS, IX_CNT,
       IX_N };

struct backend_impl {
    train_config cfg;
    model_shape s;
    model_tensors *p;  // host copy (synced on request)
    int max_rows, max_cols, rank, training;
    int L, H;
    cudaStream_t st;
    cublasHandle_t blas;
    model_tensors d;  // device parameters
    int borrowed;     // d belongs to the training backend this scorer was made from
    // hidden state: device (and a second buffer per layer for row moves), host mirror
    float *state[MAX_LAYERS], *state_alt[MAX_LAYERS], *h_state[MAX_LAYERS];
    int state_width[MAX_LAYERS];
    float *xw[MAX_LAYERS], *gates[MAX_LAYERS], *rh[MAX_LAYERS], *out[MAX_LAYERS];
    float *mask[MAX_LAYERS];
    float *emb, *emb_mask;
    // output layer
    float *Wyu, *Ru, *R, *dR, *dRu, *loss_scratch, *log_q;
    double *row_loss, *h_row_loss;
    float *scores, *h_scores;  // scoring backends: [max_rows × n_items]
    unsigned long long *d_gt, *d_eq, *h_gt, *h_eq;
    int *d_nan, *h_nan;
    // backward
    float *dh, *dxw, *drh, *dx, *g_dense;
    // optimizer: device arrays and their host mirrors (acc, mom of dense, Wy, by, E; the
    // tables' mirrors are the caller's table_optim)
    float *opt[8], *h_opt[8];
    size_t opt_n[8];
    row_grads g_Wy, g_by, g_E;  // ids on the host, gradients on the device
    float *h_log_support, *h_log_q;
    // the step's index lists
    int32_t *h_ix, *d_ix;
    size_t ix_at[IX_N + 1];
    int32_t *seg_of_slot, *seg_count;  // host scratch for the input segments
    int64_t *d_pos;                    // exchange positions
    size_t d_pos_cap;
    int32_t *h_rows, *d_rows;          // the rows an update touches (the exchange's unions can be long)
    size_t rows_cap;
    double flops;
    comm_nccl *nccl;
    exchange_mem xmem;
    // An all-reduce started and not yet waited for: the host's next wait watches NCCL_EV,
    // recorded behind it, against its deadline (comm_nccl_wait_event) instead of draining
    // the stream. H_STAGE: pinned memory the exchange's reads land in before that wait.
    cudaEvent_t nccl_ev;
    float *h_stage;
    size_t stage_cap;
    // the loss a step late (backend_set_loss_late): sums on the device, read through
    // pinned memory after the event of its copy; slot = steps % 2, PENDING: slot or -1
    int late, pending;
    double *d_loss, *h_loss;
    cudaEvent_t loss_ev[2];
    // Device-built index lists (backend_draw_negatives, one rank): the sampler, an item →
    // position map (all -1 between steps), the sort's keys and scratch. DEV_STEP: this
    // step's lists are the device's (the host's row_grads stay empty until asked for:
    // HOST_ROWS); DEV_C: its column count (the lists' padded length).
    device_sampler *ds;
    int32_t *d_map, *d_tmp;
    unsigned long long *d_keys;
    float *d_log_support;
    int dev_step, dev_C, dev_M, host_rows;
    // The step's uploads go through pinned memory (step_upload): two slots, a step each
    // (gradient step to gradient step), refilled only once the event recorded when the
    // step after it began has completed. UP_NEED: this step's bytes; UP_WANT: the most a
    // step has needed (a slot grows to it when next refilled).
    unsigned char *up_buf[2];
    size_t up_cap[2], up_used, up_need, up_want;
    int up_slot, up_on;
    cudaEvent_t up_ev[2];
    // One CUDA graph per full step (graph_step): GRAPHS: allowed (GRUREC_CUDA_GRAPHS is not
    // 0); EXEC[slot] per late-loss slot (the loss's copy is in it), G_STATE: the state
    // buffers it was captured with, G_CNT and G_FLOPS: what one launch does. IN_GRAPH: this
    // step's updates were in it. CARRY: its state carry, and the lanes' move after it
    // (MOVE_M rows, the plan at the front of d_ix; -1: none yet), still owed to the state:
    // done by the next graph's first kernel, or by settle_carry.
    int graphs, in_graph, carry, move_m;
    cudaGraphExec_t exec[2];
    float *g_state[2][MAX_LAYERS];
    backend_counters g_cnt[2];
    double g_flops[2];
    void *blas_ws;  // cuBLAS's workspace of its own: no allocation inside a capture
    backend_counters cnt;  // the training step's cost (span_begin .. span_end)
    double wait_s;         // seconds the host has waited for the device (or captured a graph: once), in all
    // Sharded item tables (cuda_step_items; src/dist/tables_sharded.c): the device's Wy, by,
    // E are a step table of the shape's table_rows, refilled from the host's through the
    // pinned TAB_BUF (TAB_EV behind its copies; a scorer made from this backend, OWNER,
    // waits for it before it feeds); the step's gradients come down into pinned H_GRAD
    // (H_G*: row_grads with the device's ids and host rows). The tables' Adagrad state is
    // the host's.
    const int32_t *step_items;
    const backend_impl *owner;
    float *tab_buf, *h_grad;
    size_t tab_cap, h_grad_cap;
    cudaEvent_t tab_ev;
    int tab_on;
    row_grads h_gWy, h_gby, h_gE;
};

// The rows of the device's item tables: the shape's table_rows where the tables bound are
// a step table (sharded), else every item.
static size_t table_rows(const model_shape *s) { return (size_t)(s->table_rows ? s->table_rows : s->n_items); }

// One of the training step's calls, for the counters: its host time (less its waits)
// and the kernels it launched.
typedef struct {
    double t0, wait0;
    long long k0;
} span;

static span span_begin(const backend_impl *b) { return span{now_s(), b->wait_s, k_launch_count()}; }

static void span_end(backend_impl *b, span s) {
    b->cnt.host_us += 1e6 * ((now_s() - s.t0) - (b->wait_s - s.wait0));
    b->cnt.kernels += k_launch_count() - s.k0;
}

// The host blocks until the device catches up (from T0 on): counted and timed.
static void waited(backend_impl *b, double t0) {
    b->wait_s += now_s() - t0;
    b->cnt.host_waits++;
}

// Until the stream has done everything queued so far. Behind a started all-reduce the
// wait watches an event against NCCL's deadline: a peer that never comes must not hang us.
static void drain(backend_impl *b) {
    if (b->nccl) {  // (comm_nccl knows which all-reduces still run, and their deadlines)
        CUDA_CHECK(cudaEventRecord(b->nccl_ev, b->st));
        comm_nccl_wait_event(b->nccl, b->nccl_ev);
    } else {
        CUDA_CHECK(cudaStreamSynchronize(b->st));
    }
}

// Until EV has completed (not counted: the event is a step or two behind). Where NCCL sums
// the steps, under the deadline of any all-reduce still running before it.
static void event_sync(const backend_impl *b, cudaEvent_t ev) {
    if (b->nccl) comm_nccl_wait_event(b->nccl, ev);
    else CUDA_CHECK(cudaEventSynchronize(ev));
}

static void host_wait(backend_impl *b) {
    const double t0 = now_s();
    drain(b);
    waited(b, t0);
}

// Device memory (not initialised), the one place the backend allocates it: an
// out-of-memory names the GPU and the bytes wanted (the likely cause is the model's size).
static void *dalloc_bytes(size_t bytes) {
    void *ptr = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(&ptr, bytes);
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        char gpu[400];
        (void)cudaGetLastError();
        (void)cudaMemGetInfo(&free_b, &total_b);
        cuda_describe_device(gpu, (int)sizeof gpu);
        fail_at(__FILE__, __LINE__,
                "%s is out of memory: %zu more bytes wanted, %zu bytes free of %zu (the item tables, their Adagrad "
                "state and the evaluation scores grow with items x hidden units: use --device cpu, a smaller "
                "--eval-batch, or a GPU with more memory)",
                gpu, bytes, free_b, total_b);
    }
    CUDA_CHECK(e);
    return ptr;
}

// Zeroed device memory. cudaMemset runs on the legacy default stream, which does not
// order itself with the backend's non-blocking stream: wait for it here (set-up and
// buffer growth only).
static float *dalloc(size_t n) {
    const size_t bytes = (n ? n : 1) * sizeof(float);
    void *ptr = dalloc_bytes(bytes);
    CUDA_CHECK(cudaMemset(ptr, 0, bytes));
    CUDA_CHECK(cudaStreamSynchronize(0));
    return (float *)ptr;
}

static void dfree(void *ptr) {
    if (ptr) CUDA_CHECK(cudaFree(ptr));
}

// From pageable memory, which cudaMemcpyAsync stages before it returns: the caller may
// reuse the buffer at once. Set-up, synchronisation and scoring; the training step's
// uploads go through step_upload's pinned slots, each reused only after its event.
static void upload(backend_impl *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, b->st));
    b->cnt.copies_h2d++;
    b->cnt.pageable_h2d++;
    b->cnt.bytes_h2d += (int64_t)bytes;
}

// (A copy into pageable memory returns when it is done: the whole call is a wait.)
static void download(backend_impl *b, void *dst, const void *src, size_t bytes) {
    const double t0 = now_s();
    if (bytes) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, b->st));
        b->cnt.copies_d2h++;
        b->cnt.bytes_d2h += (int64_t)bytes;
    }
    drain(b);
    waited(b, t0);
}

// Aligned: the slots hold int32, int64 and float lists.
static size_t up_align(size_t n) { return (n + 15) & ~(size_t)15; }

// A step begins: the slot used two steps ago is refilled once its copies are done (the
// step before last: done long ago as a rule, so this is no drain; its time is not host time).
static void next_upload_slot(backend_impl *b) {
    if (!b->up_on) return;
    CUDA_CHECK(cudaEventRecord(b->up_ev[b->up_slot], b->st));  // behind every copy from the slot left
    if (b->up_need > b->up_want) b->up_want = b->up_need;
    b->up_slot ^= 1;
    const int k = b->up_slot;
    const double t0 = now_s();
    event_sync(b, b->up_ev[k]);
    b->wait_s += now_s() - t0;
    if (b->up_cap[k] < b->up_want) {  // the first steps, and a step longer than any before
        if (b->up_buf[k]) CUDA_CHECK(cudaFreeHost(b->up_buf[k]));
        b->up_cap[k] = 2 * b->up_want;
        CUDA_CHECK(cudaMallocHost((void **)&b->up_buf[k], b->up_cap[k]));
    }
    b->up_used = 0, b->up_need = 0;
}

// One of the step's uploads: the host's bytes into the step's pinned slot (SRC may be
// reused at once), copied from there. Where the slot is too small (or there is none: a
// scoring backend) the pageable path instead, this once.
static void step_upload(backend_impl *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    const int k = b->up_slot;
    const size_t at = b->up_used;
    b->up_need += up_align(bytes);
    if (!b->up_buf[k] || at + bytes > b->up_cap[k]) {
        upload(b, dst, src, bytes);
        return;
    }
    memcpy(b->up_buf[k] + at, src, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, b->up_buf[k] + at, bytes, cudaMemcpyHostToDevice, b->st));
    b->cnt.copies_h2d++;
    b->cnt.bytes_h2d += (int64_t)bytes;
    b->up_used = at + up_align(bytes);
}

static int32_t *ix(backend_impl *b, int which) { return b->d_ix + b->ix_at[which]; }
static int32_t *hix(backend_impl *b, int which) { return b->h_ix + b->ix_at[which]; }

// In front of the lists: the deferred row move's plan (max_rows ints), then the step's
// control words, so that a graph step uploads plan, controls, inputs and targets in one
// copy and a plain step controls, inputs and targets. The kernels read the step number
// here, not from their arguments (a graph's arguments are fixed at its capture).
enum { CTL_MOVE_M, CTL_CARRY, CTL_STEP_LO, CTL_STEP_HI, CTL_N };
static int32_t *ctl(backend_impl *b) { return b->d_ix + b->max_rows; }
static int32_t *hctl(backend_impl *b) { return b->h_ix + b->max_rows; }
static const int32_t *step_at(backend_impl *b) { return ctl(b) + CTL_STEP_LO; }
static void set_ctl(backend_impl *b, int64_t step, int carry, int move_m) {
    int32_t *c = hctl(b);
    c[CTL_MOVE_M] = move_m, c[CTL_CARRY] = carry;
    c[CTL_STEP_LO] = (int32_t)(uint32_t)(uint64_t)step, c[CTL_STEP_HI] = (int32_t)(uint32_t)((uint64_t)step >> 32);
}

// C = op(A)·op(B) + beta·C in row-major terms (as the CPU's gemm): column-major cuBLAS
// computes Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands swapped.
static void gemm(backend_impl *b, int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {  // an empty sum (a rank without rows): C = beta·C
        if (beta == 0.0f)
            CUDA_CHECK(cudaMemset2DAsync(C, (size_t)ldc * sizeof(float), 0, (size_t)n * sizeof(float), (size_t)m, b->st));
        return;
    }
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSgemm(b->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, B,
                             ldb, A, lda, &beta, C, ldc));
    b->cnt.blas_calls++;
    b->flops += 2.0 * m * n * k;
}

static void copy_d2d(backend_impl *b, float *dst, const float *src, size_t n) {
    if (n) CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, b->st));
}

// The host tensors → the device (or back): the PARTS of parameters, optimizer state,
// hidden states.
enum { XFER_PARAMS = 1, XFER_OPTIM = 2, XFER_STATES = 4, XFER_ALL = 7 };
static void settle_carry(backend_impl *b);
static void params_transfer(backend_impl *b, int to_device, int parts) {
    const model_shape *s = &b->s;
    if ((parts & XFER_STATES) && to_device) b->carry = 0, b->move_m = -1;  // (overwritten)
    if (parts & XFER_STATES) settle_carry(b);
    const size_t N = table_rows(s);
    float *h[4] = {b->p->dense, b->p->Wy, b->p->by, b->p->E};
    float *dv[4] = {b->d.dense, b->d.Wy, b->d.by, b->d.E};
    const size_t n[4] = {s->n_dense, N * b->H, N, b->p->E ? N * s->emb_width : 0};
    for (int k = 0; k < 4 && !b->borrowed && (parts & XFER_PARAMS); k++) {
        if (!h[k] || !n[k]) continue;
        if (to_device) upload(b, dv[k], h[k], n[k] * sizeof(float));
        else download(b, h[k], dv[k], n[k] * sizeof(float));
    }
    for (int k = 0; k < 8 && (parts & XFER_OPTIM); k++) {
        if (!b->opt[k]) continue;
        if (to_device) upload(b, b->opt[k], b->h_opt[k], b->opt_n[k] * sizeof(float));
        else download(b, b->h_opt[k], b->opt[k], b->opt_n[k] * sizeof(float));
    }
    for (int l = 0; l < b->L && (parts & XFER_STATES); l++) {
        size_t bytes = (size_t)b->max_rows * b->state_width[l] * sizeof(float);
        if (to_device) upload(b, b->state[l], b->h_state[l], bytes);
        else download(b, b->h_state[l], b->state[l], bytes);
    }
    drain(b);
}

static void cuda_sync_to_host(backend_impl *b) { params_transfer(b, 0, XFER_ALL); }
static void cuda_sync_params_to_host(backend_impl *b) { params_transfer(b, 0, XFER_PARAMS); }
static void cuda_sync_to_device(backend_impl *b) { params_transfer(b, 1, XFER_ALL); }

// Row gradients with their ids on the host (row_grads_slot bookkeeping, as the CPU) and
// their gradient rows on the device.
static void row_grads_init_device(row_grads *g, int64_t n_items, int width, int cap) {
    row_grads_init(g, n_items, width, cap);
    free(g->grad);
    g->grad = dalloc((size_t)cap * width);
}

static void row_grads_free_device(row_grads *g) {
    dfree(g->grad);
    g->grad = NULL;
    row_grads_free(g);
}

// SHARE: a training backend whose device parameters a scoring backend borrows.
static backend_impl *create(const train_config *c, const model_shape *s, model_tensors *params, const table_optim *topt,
                            int max_rows, int rank, const int64_t *item_support, const backend_impl *share) {
    const int for_training = topt != NULL;
    backend_impl *b = (backend_impl *)xcalloc(1, sizeof *b);
    b->cfg = *c;
    b->s = *s;
    b->p = params;
    b->rank = rank;
    b->training = for_training;
    b->max_rows = max_rows;
    b->pending = -1;
    b->max_cols = max_rows + (for_training ? c->n_sample : 0);
    b->L = s->n_layers;
    b->H = s->hid[b->L - 1];
    CUDA_CHECK(cudaStreamCreateWithFlags(&b->st, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&b->blas));
    CUBLAS_CHECK(cublasSetStream(b->blas, b->st));
    CUBLAS_CHECK(cublasSetMathMode(b->blas, backend_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));

    const size_t R = (size_t)max_rows, N = (size_t)s->n_items, T = table_rows(s);
    if (share) {  // the training backend's last update must be done before we read
        CUDA_CHECK(cudaStreamSynchronize(share->st));
        b->d = share->d;
        b->borrowed = 1;
    } else {
        b->d.dense = dalloc(s->n_dense);
        b->d.Wy = dalloc(T * b->H);
        b->d.by = dalloc(T);
        b->d.E = params->E ? dalloc(T * s->emb_width) : NULL;
    }
    int max_in = 0, max_h = 0;
    for (int l = 0; l < b->L; l++) {
        const int H = s->hid[l];
        if (s->in_dim[l] > max_in) max_in = s->in_dim[l];
        if (H > max_h) max_h = H;
        b->state[l] = dalloc(R * H);
        b->state_alt[l] = dalloc(R * H);
        b->h_state[l] = (float *)xcalloc(R * H, sizeof(float));
        b->state_width[l] = H;
        b->xw[l] = dalloc(R * 3 * H);
        b->gates[l] = dalloc(R * 3 * H);
        b->rh[l] = dalloc(R * H);
        b->out[l] = dalloc(R * H);
        b->mask[l] = dalloc(R * H);
    }
    b->emb = dalloc(R * (size_t)s->in_dim[0]);
    b->emb_mask = dalloc(R * (size_t)s->in_dim[0]);
    const size_t C = (size_t)b->max_cols;
    if (for_training) {
        b->Wyu = dalloc(C * b->H);
        b->Ru = dalloc(R * C);
        b->R = dalloc(R * C);
        b->dR = dalloc(R * C);
        b->dRu = dalloc(R * C);
        b->loss_scratch = dalloc(R * 4 * C);
        b->log_q = dalloc(C);
        b->row_loss = (double *)dalloc_bytes(R * sizeof(double));
        b->h_row_loss = (double *)xcalloc(R, sizeof(double));
        b->dh = dalloc(R * max_h);
        b->dxw = dalloc(R * 3 * max_h);
        b->drh = dalloc(R * max_h);
        b->dx = dalloc(R * (size_t)(max_in > max_h ? max_in : max_h));
        b->g_dense = dalloc(s->n_dense);
        const int mom = c->momentum > 0;
        const size_t n[8] = {s->n_dense, s->n_dense, N * b->H, N * b->H, N, N,
                             params->E ? N * s->emb_width : 0, params->E ? N * s->emb_width : 0};
        for (int k = 0; k < 8; k++) {
            if (n[k] == 0 || (k % 2 == 1 && !mom)) continue;
            if (k >= 2 && s->table_rows) continue;  // (a step table: the tables' state is the host's)
            b->opt_n[k] = n[k];
            b->opt[k] = dalloc(n[k]);
            b->h_opt[k] = k < 2 ? (float *)xcalloc(n[k], sizeof(float))
                                : k % 2 ? topt->mom[k / 2 - 1] : topt->acc[k / 2 - 1];
        }
        row_grads_init_device(&b->g_Wy, s->n_items, b->H, b->max_cols + max_rows);
        row_grads_init_device(&b->g_by, s->n_items, 1, b->max_cols);
        if (params->E) row_grads_init_device(&b->g_E, s->n_items, s->emb_width, max_rows);
        b->h_log_support = (float *)xcalloc(N, sizeof(float));
        for (size_t i = 0; i < N; i++)
            b->h_log_support[i] = item_support ? logf((float)(item_support[i] > 0 ? item_support[i] : 1)) : 0.0f;
        b->h_log_q = (float *)xcalloc(C, sizeof(float));
        const int cap = b->max_cols + max_rows;
        b->seg_of_slot = (int32_t *)xmalloc((size_t)cap * sizeof(int32_t));
        for (int k = 0; k < cap; k++) b->seg_of_slot[k] = -1;
        b->seg_count = (int32_t *)xcalloc((size_t)max_rows + 1, sizeof(int32_t));
        for (int k = 0; k < 2; k++) CUDA_CHECK(cudaEventCreateWithFlags(&b->up_ev[k], cudaEventDisableTiming));
        b->up_on = 1;
        const char *g = getenv("GRUREC_CUDA_GRAPHS");
        b->graphs = !(g && strcmp(g, "0") == 0);
        b->move_m = -1;
    } else {
        if (!s->table_rows) b->scores = dalloc(R * N);  // h_scores: on the first cuda_score_all (a step table: feeds only)
        b->d_gt = (unsigned long long *)dalloc_bytes(R * sizeof(unsigned long long));
        b->d_eq = (unsigned long long *)dalloc_bytes(R * sizeof(unsigned long long));
        b->d_nan = (int *)dalloc_bytes(R * sizeof(int));
        b->h_gt = (unsigned long long *)xcalloc(R, sizeof(unsigned long long));
        b->h_eq = (unsigned long long *)xcalloc(R, sizeof(unsigned long long));
        b->h_nan = (int *)xcalloc(R, sizeof(int));
    }
    // Index lists: sizes by the step's largest possible lists.
    const size_t sizes[IX_N] = {R, C, C, C + R, C + 1, C, R + C, R + 1, R, R, R, SL_N};
    b->ix_at[0] = R + CTL_N;  // (the move plan and the controls in front)
    for (int k = 0; k < IX_N; k++) b->ix_at[k + 1] = b->ix_at[k] + sizes[k];
    b->h_ix = (int32_t *)xcalloc(b->ix_at[IX_N], sizeof(int32_t));
    b->d_ix = (int32_t *)dalloc_bytes(b->ix_at[IX_N] * sizeof(int32_t));
    params_transfer(b, 1, XFER_PARAMS);  // optimizer state and hidden states start at zero on both sides
    return b;
}

static backend_impl *cuda_create(const train_config *c, const model_shape *s, model_tensors *params,
                                 const table_optim *opt, int max_rows, int rank, const int64_t *item_support) {
    return create(c, s, params, opt, max_rows, rank, item_support, NULL);
}

static backend_impl *cuda_create_scorer(backend_impl *training, int max_rows) {
    backend_impl *b = create(&training->cfg, &training->s, training->p, NULL, max_rows, 0, NULL, training);
    b->owner = training;  // (its step-table uploads: cuda_feed waits for them)
    return b;
}

static void cuda_free(backend_impl *b) {
    if (b->nccl) {
        drain(b);
        comm_nccl_free(b->nccl);
        CUDA_CHECK(cudaEventDestroy(b->nccl_ev));
        if (b->h_stage) CUDA_CHECK(cudaFreeHost(b->h_stage));
    }
    CUDA_CHECK(cudaStreamSynchronize(b->st));
    for (int k = 0; k < 2 && b->up_on; k++) {
        CUDA_CHECK(cudaEventDestroy(b->up_ev[k]));
        if (b->up_buf[k]) CUDA_CHECK(cudaFreeHost(b->up_buf[k]));
    }
    for (int l = 0; l < b->L; l++) {
        dfree(b->state[l]), dfree(b->state_alt[l]), free(b->h_state[l]);
        dfree(b->xw[l]), dfree(b->gates[l]), dfree(b->rh[l]), dfree(b->out[l]), dfree(b->mask[l]);
    }
    if (!b->borrowed) dfree(b->d.dense), dfree(b->d.Wy), dfree(b->d.by), dfree(b->d.E);
    dfree(b->emb), dfree(b->emb_mask);
    dfree(b->Wyu), dfree(b->Ru), dfree(b->R), dfree(b->dR), dfree(b->dRu), dfree(b->loss_scratch);
    dfree(b->log_q), dfree(b->row_loss), free(b->h_row_loss);
    dfree(b->scores), free(b->h_scores), dfree(b->d_gt), dfree(b->d_eq), dfree(b->d_nan);
    free(b->h_gt), free(b->h_eq), free(b->h_nan);
    dfree(b->dh), dfree(b->dxw), dfree(b->drh), dfree(b->dx), dfree(b->g_dense);
    for (int k = 0; k < 8; k++) dfree(b->opt[k]);
    free(b->h_opt[0]), free(b->h_opt[1]);  // (the tables' are the caller's)
    if (b->training) {
        row_grads_free_device(&b->g_Wy);
        row_grads_free_device(&b->g_by);
        if (b->p->E) row_grads_free_device(&b->g_E);
    }
    free(b->h_log_support), free(b->h_log_q), free(b->seg_of_slot), free(b->seg_count);
    free(b->h_ix), dfree(b->d_ix), dfree(b->d_pos), free(b->h_rows), dfree(b->d_rows);
    if (b->ds) device_sampler_free(b->ds), dfree(b->d_map), dfree(b->d_tmp), dfree(b->d_keys), dfree(b->d_log_support);
    if (b->late) {
        dfree(b->d_loss);
        CUDA_CHECK(cudaFreeHost(b->h_loss));
        for (int k = 0; k < 2; k++) CUDA_CHECK(cudaEventDestroy(b->loss_ev[k]));
    }
    for (int k = 0; k < 2; k++)
        if (b->exec[k]) CUDA_CHECK(cudaGraphExecDestroy(b->exec[k]));
    if (b->tab_on) {
        CUDA_CHECK(cudaEventDestroy(b->tab_ev));
        CUDA_CHECK(cudaFreeHost(b->tab_buf));
        if (b->h_grad) CUDA_CHECK(cudaFreeHost(b->h_grad));
    }
    CUBLAS_CHECK(cublasDestroy(b->blas));
    dfree(b->blas_ws);
    CUDA_CHECK(cudaStreamDestroy(b->st));
    free(b);
}

static float **cuda_states(backend_impl *b) { return b->h_state; }
static const int *cuda_state_widths(const backend_impl *b) { return b->state_width; }
static int cuda_n_states(const backend_impl *b) { return b->L; }
static double cuda_flops(const backend_impl *b) { return b->flops; }

static void cuda_zero_states(backend_impl *b) {
    b->carry = 0, b->move_m = -1;  // (what it owed is overwritten)
    for (int l = 0; l < b->L; l++) {
        size_t n = (size_t)b->max_rows * b->state_width[l];
        CUDA_CHECK(cudaMemsetAsync(b->state[l], 0, n * sizeof(float), b->st));
        memset(b->h_state[l], 0, n * sizeof(float));
    }
}

// lanes_step's plan: row k ← old row src[k] (or zeros), into the spare buffer, then swap.
static void move_rows_plain(backend_impl *b, const int32_t *src, int M) {
    step_upload(b, ix(b, IX_MOVE), src, (size_t)M * sizeof(int32_t));
    for (int l = 0; l < b->L; l++) {
        const size_t w = (size_t)b->state_width[l];
        k_move_rows(b->st, b->state_alt[l], b->state[l], ix(b, IX_MOVE), M, (int)w);
        // rows from M on keep their values, as on the CPU (never read again, but checkpointed)
        copy_d2d(b, b->state_alt[l] + (size_t)M * w, b->state[l] + (size_t)M * w, (size_t)(b->max_rows - M) * w);
        float *t = b->state[l];
        b->state[l] = b->state_alt[l];
        b->state_alt[l] = t;
    }
}

static void carry_state(backend_impl *b, int M);

// A graph step's carry (and the move after it) still owed to the state, issued now as
// plain work: the next step is not a graph, or the host is about to read the states.
static void settle_carry(backend_impl *b) {
    if (!b->carry) return;
    b->carry = 0;
    carry_state(b, b->max_rows);
    if (b->move_m > 0) move_rows_plain(b, b->h_ix, b->move_m);
    b->move_m = -1;
}

// After a graph step only the plan is kept (the front of h_ix): the next graph's first
// kernel carries and moves the state in one pass, uploaded with that step's inputs.
static void cuda_move_rows(backend_impl *b, const int32_t *src, int M) {
    if (M == 0) return;
    const span sp = span_begin(b);
    if (b->carry && b->move_m < 0) {
        memcpy(b->h_ix, src, (size_t)M * sizeof(int32_t));
        b->move_m = M;
    } else {
        settle_carry(b);
        move_rows_plain(b, src, M);
    }
    span_end(b, sp);
}

// ---- forward (CPU: forward in cpu_backend.c) ----

// Layer inputs and the GRU stack for M rows (ids at IX_X on the device); leaves the top
// layer's output in out[L-1].
static void forward(backend_impl *b, int M, int64_t step, int train) {
    const model_shape *s = &b->s;
    const float p_emb = train ? b->cfg.dropout_embed : 0.0f, p_hid = train ? b->cfg.dropout_hidden : 0.0f;
    const int in0 = s->in_dim[0];
    if (in0 == 0) {  // one-hot: layer 0's input product is a row of its input table
        k_gather_rows(b->st, b->xw[0], b->d.E, ix(b, IX_X), M, s->emb_width);
    } else {
        const float *table = b->d.E ? b->d.E : b->d.Wy;
        k_gather_rows(b->st, b->emb, table, ix(b, IX_X), M, in0);
        if (p_emb > 0)
            k_dropout(b->st, b->emb, b->emb_mask, (size_t)M * in0, p_emb, b->cfg.seed, b->rank, step, step_at(b), 0);
    }
    for (int l = 0; l < b->L; l++) {
        const int H = s->hid[l], in = s->in_dim[l];
        const float *input = l == 0 ? b->emb : b->out[l - 1];
        const float *W = b->d.dense + s->off_W[l], *U = b->d.dense + s->off_U[l], *bias = b->d.dense + s->off_b[l];
        if (in > 0) gemm(b, 0, 0, M, 3 * H, in, input, in, W, 3 * H, 0.0f, b->xw[l], 3 * H);
        // gru_forward: gates[:, 0:2H] = h·[U_r U_z]; r, z, r⊙h; gates[:, 2H:] = (r⊙h)·U_c; c, h'
        gemm(b, 0, 0, M, 2 * H, H, b->state[l], H, U, 3 * H, 0.0f, b->gates[l], 3 * H);
        k_gru_fwd_gates(b->st, M, H, b->xw[l], bias, b->gates[l], b->state[l], b->rh[l]);
        gemm(b, 0, 0, M, H, H, b->rh[l], H, U + 2 * H, 3 * H, 0.0f, b->gates[l] + 2 * H, 3 * H);
        k_gru_fwd_out(b->st, M, H, b->xw[l], b->gates[l], b->state[l], b->out[l]);  // (h', dropped in place)
        if (p_hid > 0)
            k_dropout(b->st, b->out[l], b->mask[l], (size_t)M * H, p_hid, b->cfg.seed, b->rank, step, step_at(b), 1 + l);
    }
}

// The dropped output is the state a lane carries to its next event (as the official code).
static void carry_state(backend_impl *b, int M) {
    for (int l = 0; l < b->L; l++) copy_d2d(b, b->state[l], b->out[l], (size_t)M * b->s.hid[l]);
}

// ---- the step's index lists (host), uploaded in one copy ----

// Columns (targets, then negatives) → distinct items in order of first appearance (the
// slots of g_Wy / g_by, as the CPU), each item's columns ascending (CSR), and the input
// rows of every table row the inputs touch (CSR over segments, rows ascending).
// Returns U; *base and *nseg describe the input segments.
static int prepare_step_ids(backend_impl *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                            int *base, int *nseg) {
    const int C = M + K;
    int32_t *cols = hix(b, IX_COLS), *cslot = hix(b, IX_CSLOT);
    memcpy(hix(b, IX_X), x, (size_t)M * sizeof(int32_t));
    memcpy(cols, y, (size_t)M * sizeof(int32_t));
    memcpy(cols + M, neg, (size_t)K * sizeof(int32_t));
    for (int j = 0; j < C; j++) {
        cslot[j] = row_grads_slot(&b->g_Wy, cols[j]);
        row_grads_slot(&b->g_by, cols[j]);  // the same slots: both start empty
    }
    const int U = b->g_Wy.n;
    memcpy(hix(b, IX_UNIQ), b->g_Wy.rows, (size_t)U * sizeof(int32_t));
    // columns per item: counting sort, stable in j
    int32_t *off = hix(b, IX_COFF), *list = hix(b, IX_CLIST);
    memset(off, 0, (size_t)(U + 1) * sizeof(int32_t));
    for (int j = 0; j < C; j++) off[cslot[j] + 1]++;
    for (int u = 0; u < U; u++) off[u + 1] += off[u];
    for (int j = 0; j < C; j++) list[off[cslot[j]]++] = j;
    for (int u = U; u > 0; u--) off[u] = off[u - 1];
    off[0] = 0;
    // input rows per touched table row (CPU: scatter_rows into g_E, or g_Wy when shared)
    row_grads *gin = b->p->E ? &b->g_E : &b->g_Wy;
    *base = gin->n;  // slots below hold the output product's gradient: added to
    int32_t *sslot = hix(b, IX_SEGSLOT), *soff = hix(b, IX_SEGOFF), *srows = hix(b, IX_SEGROWS);
    int n = 0;
    for (int i = 0; i < M; i++) {
        int32_t slot = row_grads_slot(gin, x[i]);
        if (b->seg_of_slot[slot] < 0) {
            b->seg_of_slot[slot] = n;
            sslot[n] = slot;
            b->seg_count[n++] = 0;
        }
        b->seg_count[b->seg_of_slot[slot]]++;
    }
    soff[0] = 0;
    for (int q = 0; q < n; q++) soff[q + 1] = soff[q] + b->seg_count[q];
    for (int q = 0; q < n; q++) b->seg_count[q] = soff[q];
    for (int i = 0; i < M; i++) srows[b->seg_count[b->seg_of_slot[gin->slot[x[i]]]]++] = i;
    for (int q = 0; q < n; q++) b->seg_of_slot[sslot[q]] = -1;
    *nseg = n;
    if (b->cfg.loss.logq > 0)  // q ∝ support for in-batch targets, support^α for samples
        for (int j = 0; j < C; j++)
            b->h_log_q[j] = b->h_log_support[b->step_items ? b->step_items[cols[j]] : cols[j]] *
                            (j < M ? 1.0f : b->cfg.sample_alpha);
    // one copy of the used prefix (the controls, everything up to the segment rows)
    step_upload(b, ctl(b), hctl(b), (b->ix_at[IX_MOVE] - (size_t)b->max_rows) * sizeof(int32_t));
    if (b->cfg.loss.logq > 0) step_upload(b, b->log_q, b->h_log_q, (size_t)C * sizeof(float));
    return U;
}

// The same lists built on the GPU (k_step_lists) from the step's negatives drawn there:
// the host uploads the inputs and targets only. The lists are padded to the C columns
// (the host does not learn U): padded slots gather zero rows, so the products over them
// add exact zeros, and the counts on the device bound the segment sums and the update.
// Returns C; *nseg bounds the segments.
// (The kernel, which reads the step from the controls: a graph's too.)
static void device_step_lists(backend_impl *b, int M, int K, int64_t step) {
    const int C = M + K;
    step_draws draws = device_sampler_step(b->ds, b->cfg.seed, (uint64_t)step);
    draws.step_at = step_at(b);
    const step_lists_out o = {ix(b, IX_CSLOT), ix(b, IX_UNIQ), ix(b, IX_COFF), ix(b, IX_CLIST), ix(b, IX_EROWS),
                              ix(b, IX_SEGSLOT), ix(b, IX_SEGOFF), ix(b, IX_SEGROWS), ix(b, IX_CNT)};
    k_step_lists(b->st, ix(b, IX_COLS), &draws, C, M, ix(b, IX_X), b->p->E == NULL, b->d_log_support, b->cfg.sample_alpha,
                 b->cfg.loss.logq > 0 ? b->log_q : NULL, b->d_map, b->d_keys, b->d_tmp, &o);
}

// The step's inputs and targets into the host's lists (the uploads are the caller's).
static void step_inputs(backend_impl *b, int M, const int32_t *x, const int32_t *y) {
    memcpy(hix(b, IX_X), x, (size_t)M * sizeof(int32_t));
    memcpy(hix(b, IX_COLS), y, (size_t)M * sizeof(int32_t));
}

static void mark_device_step(backend_impl *b, int M, int C) {
    b->dev_step = 1, b->dev_C = C, b->dev_M = M, b->host_rows = 0;
}

static int device_step_ids(backend_impl *b, int M, const int32_t *x, const int32_t *y, int K, int64_t step,
                           int *nseg) {
    step_inputs(b, M, x, y);
    // the controls, X, then the targets: one copy
    step_upload(b, ctl(b), hctl(b), (b->ix_at[IX_COLS] - (size_t)b->max_rows + (size_t)M) * sizeof(int32_t));
    device_step_lists(b, M, K, step);
    mark_device_step(b, M, M + K);
    *nseg = M;
    return M + K;
}

// The host's row ids of a device-built step, on request (tests; a download, a wait): the
// slots in the device's order, as row_grads_slot would have given them.
static void device_rows_to_host(backend_impl *b) {
    if (!b->dev_step || b->host_rows) return;
    int32_t cnt[SL_N];
    download(b, cnt, ix(b, IX_CNT), sizeof cnt);
    download(b, hix(b, IX_UNIQ), ix(b, IX_UNIQ), (size_t)cnt[SL_NWY] * sizeof(int32_t));
    download(b, hix(b, IX_EROWS), ix(b, IX_EROWS), (size_t)cnt[SL_NE] * sizeof(int32_t));
    for (int u = 0; u < cnt[SL_NWY]; u++) row_grads_slot(&b->g_Wy, hix(b, IX_UNIQ)[u]);
    for (int u = 0; u < cnt[SL_U]; u++) row_grads_slot(&b->g_by, hix(b, IX_UNIQ)[u]);
    for (int u = 0; u < cnt[SL_NE]; u++) row_grads_slot(&b->g_E, hix(b, IX_EROWS)[u]);
    b->host_rows = 1;
}

// ---- one training step (CPU: backend_gradient_step) ----

static void gru_backward(backend_impl *b, int l, int M) {
    const model_shape *s = &b->s;
    const int H = s->hid[l];
    const float *U = b->d.dense + s->off_U[l];
    float *dU = b->g_dense + s->off_U[l], *db = b->g_dense + s->off_b[l];
    k_gru_bwd_cz(b->st, M, H, b->gates[l], b->state[l], b->dh, b->dxw);
    gemm(b, 0, 1, M, H, H, b->dxw + 2 * H, 3 * H, U + 2 * H, 3 * H, 0.0f, b->drh, H);
    k_gru_bwd_r(b->st, M, H, b->gates[l], b->state[l], b->drh, b->dxw);
    gemm(b, 1, 0, H, 2 * H, M, b->state[l], H, b->dxw, 3 * H, 0.0f, dU, 3 * H);
    gemm(b, 1, 0, H, H, M, b->rh[l], H, b->dxw + 2 * H, 3 * H, 0.0f, dU + 2 * H, 3 * H);
    k_col_sums(b->st, b->dxw, M, 3 * H, 3 * H, db);
}

// The pending step's loss (0 if none), waiting for its event. DRAINS: nothing is queued
// behind it (counted as a host wait).
static double read_loss(backend_impl *b, int drains) {
    if (b->pending < 0) return 0.0;
    const double t0 = now_s();
    event_sync(b, b->loss_ev[b->pending]);
    if (drains) waited(b, t0);
    else b->wait_s += now_s() - t0;
    const double loss = b->h_loss[b->pending];
    b->pending = -1;
    return loss;
}

static int cuda_set_loss_late(backend_impl *b) {
    CHECK(b->training, "this backend was made for scoring, not training");
    if (!b->late) {
        b->d_loss = (double *)dalloc_bytes(2 * sizeof(double));
        CUDA_CHECK(cudaMallocHost((void **)&b->h_loss, 2 * sizeof(double)));
        for (int k = 0; k < 2; k++) CUDA_CHECK(cudaEventCreateWithFlags(&b->loss_ev[k], cudaEventDisableTiming));
        b->late = 1;
    }
    return 1;
}

static double cuda_take_loss(backend_impl *b) { return read_loss(b, 1); }

// One rank: the sampler's table to the device, and the buffers of the device's lists.
// With ranks the host keeps drawing: the exchange builds its unions from the host's ids.
static int cuda_draw_negatives(backend_impl *b, const alias_table *t) {
    CHECK(b->training, "this backend was made for scoring, not training");
    if (b->nccl || b->step_items) return 0;  // (sharded tables: the host fetches the negatives' rows)
    if (b->ds) return 1;
    const int C = b->max_cols, R = b->max_rows;
    size_t P2 = 1;
    while (P2 < (size_t)C) P2 *= 2;
    b->ds = device_sampler_create(t, C - R);
    b->d_map = (int32_t *)dalloc_bytes((size_t)b->s.n_items * sizeof(int32_t));
    CUDA_CHECK(cudaMemset(b->d_map, 0xff, (size_t)b->s.n_items * sizeof(int32_t)));  // all -1
    CUDA_CHECK(cudaStreamSynchronize(0));
    b->d_keys = (unsigned long long *)dalloc_bytes(P2 * sizeof(unsigned long long));
    b->d_tmp = (int32_t *)dalloc_bytes(((size_t)C + 4 * (size_t)R) * sizeof(int32_t));
    b->d_log_support = dalloc((size_t)b->s.n_items);
    upload(b, b->d_log_support, b->h_log_support, (size_t)b->s.n_items * sizeof(float));
    host_wait(b);
    b->cnt.copies_h2d--, b->cnt.bytes_h2d -= (int64_t)b->s.n_items * (int64_t)sizeof(float), b->cnt.host_waits--;
    return 1;
}

// The step's device work from its index lists on: forward, scores, loss, backward (the
// CPU's sections, in order). U: the distinct items (or the padded C).
static void step_kernels(backend_impl *b, int M, int C, int U, int base, int nseg, float scale, int64_t step) {
    const model_shape *s = &b->s;
    const int H = b->H, L = b->L;
    const int32_t *counts = b->dev_step ? ix(b, IX_CNT) : NULL;
    forward(b, M, step, 1);

    // Scores of the M targets and K negatives over the U distinct items.
    k_gather_rows(b->st, b->Wyu, b->d.Wy, ix(b, IX_UNIQ), U, H);
    k_broadcast_gather(b->st, b->Ru, b->d.by, ix(b, IX_UNIQ), M, U);
    const float *h = b->out[L - 1];
    gemm(b, 0, 1, M, U, H, h, H, b->Wyu, H, 1.0f, b->Ru, U);
    k_gather_cols(b->st, b->R, b->Ru, ix(b, IX_CSLOT), M, C, U);
    k_loss_rows(b->st, b->cfg.loss, b->R, M, C, b->cfg.loss.logq > 0 ? b->log_q : NULL, scale, b->dR, b->loss_scratch,
                b->row_loss);

    // Output layer over the distinct items: dRu sums each item's columns, then
    // dWy[items] = dRuᵀ·h, dby[items] = column sums of dRu, dh = dRu·Wy[items].
    k_segment_sum_cols(b->st, b->dRu, b->dR, ix(b, IX_COFF), ix(b, IX_CLIST), M, C, U);
    gemm(b, 1, 0, U, H, M, b->dRu, U, h, H, 0.0f, b->g_Wy.grad, H);
    k_col_sums(b->st, b->dRu, M, U, U, b->g_by.grad);
    gemm(b, 0, 0, M, H, U, b->dRu, U, b->Wyu, H, 0.0f, b->dh, H);

    // GRU stack, top down. dh holds the gradient of the current layer's (dropped) output.
    for (int l = L - 1; l >= 0; l--) {
        const int Hl = s->hid[l], in = s->in_dim[l];
        if (b->cfg.dropout_hidden > 0) k_mul(b->st, b->dh, b->mask[l], (size_t)M * Hl);
        gru_backward(b, l, M);
        if (in == 0) {  // one-hot: the pre-activation gradient is the input-table row's gradient
            k_segment_add_rows(b->st, b->g_E.grad, base, ix(b, IX_SEGSLOT), ix(b, IX_SEGOFF), ix(b, IX_SEGROWS), nseg,
                               counts, b->dxw, 3 * Hl);
            continue;
        }
        const float *input = l == 0 ? b->emb : b->out[l - 1];
        gemm(b, 1, 0, in, 3 * Hl, M, input, in, b->dxw, 3 * Hl, 0.0f, b->g_dense + s->off_W[l], 3 * Hl);
        gemm(b, 0, 1, M, in, 3 * Hl, b->dxw, 3 * Hl, b->d.dense + s->off_W[l], 3 * Hl, 0.0f, b->dx, in);
        if (l > 0) {
            copy_d2d(b, b->dh, b->dx, (size_t)M * in);
        } else {  // into the embedding rows (shared: Wy itself; separate: E)
            if (b->cfg.dropout_embed > 0) k_mul(b->st, b->dx, b->emb_mask, (size_t)M * in);
            k_segment_add_rows(b->st, b->p->E ? b->g_E.grad : b->g_Wy.grad, base, ix(b, IX_SEGSLOT), ix(b, IX_SEGOFF),
                               ix(b, IX_SEGROWS), nseg, counts, b->dx, in);
        }
    }
}

// The late loss: the rows' sum in row order (as the CPU) into pinned memory, slot SLOT.
static void queue_loss_sum(backend_impl *b, int M, int slot) {
    k_sum_doubles(b->st, b->row_loss, M, b->d_loss + slot);
    CUDA_CHECK(cudaMemcpyAsync(b->h_loss + slot, b->d_loss + slot, sizeof(double), cudaMemcpyDeviceToHost, b->st));
    b->cnt.copies_d2h++;
    b->cnt.bytes_d2h += (int64_t)sizeof(double);
}

// Its event, then the previous step's loss, read while this one runs.
static double late_loss(backend_impl *b, int slot) {
    CUDA_CHECK(cudaEventRecord(b->loss_ev[slot], b->st));
    const double loss = read_loss(b, 0);
    b->pending = slot;
    return loss;
}

static void update_device_rows(backend_impl *b, const int *on_dev);
static double graph_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, int K, float scale, int64_t step);

// A step as one graph: one rank, lists and loss on the device, every lane busy (the
// shrinking tail and the ranks' steps run plain).
static int graph_fits(const backend_impl *b, int M, const int32_t *neg) {
    return b->graphs && !neg && b->ds && b->late && !b->nccl && M == b->max_rows;
}

static double cuda_gradient_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                                 float scale, int64_t step) {
    const int C = M + K;
    CHECK(b->training, "this backend was made for scoring, not training");
    CHECK(M <= b->max_rows && C <= b->max_cols, "step of %d rows and %d columns exceeds the buffers", M, C);
    CHECK(b->g_Wy.n == 0 && b->g_by.n == 0, "gradient step on uncleared gradients (call backend_clear_gradients)");
    const span sp = span_begin(b);
    b->cnt.steps++;
    next_upload_slot(b);
    CHECK(neg || b->ds, "no negatives given, and the backend draws none (backend_draw_negatives)");
    if (graph_fits(b, M, neg)) {
        const double loss = graph_step(b, M, x, y, K, scale, step);
        span_end(b, sp);
        return loss;
    }
    settle_carry(b);
    int base = 0, nseg;
    set_ctl(b, step, 0, 0);
    const int U = neg ? prepare_step_ids(b, M, x, y, neg, K, &base, &nseg) : device_step_ids(b, M, x, y, K, step, &nseg);
    step_kernels(b, M, C, U, base, nseg, scale, step);
    double loss = 0.0;
    if (b->late) {
        const int slot = (int)(b->cnt.steps % 2);
        queue_loss_sum(b, M, slot);
        loss = late_loss(b, slot);
    } else {
        download(b, b->h_row_loss, b->row_loss, (size_t)M * sizeof(double));
        for (int i = 0; i < M; i++) loss += b->h_row_loss[i];
    }
    span_end(b, sp);
    return loss;
}

static backend_grads cuda_gradients(const backend_impl *b) {
    device_rows_to_host(const_cast<backend_impl *>(b));
    backend_grads g = {b->g_dense, &b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
    return g;
}

static void cuda_clear_gradients(backend_impl *b) {
    row_grads_clear(&b->g_Wy);
    row_grads_clear(&b->g_by);
    if (b->p->E) row_grads_clear(&b->g_E);
    b->dev_step = 0, b->host_rows = 0;
}

static float *cuda_dense_grads(backend_impl *b) { return b->g_dense; }

static int cuda_optim_arrays(backend_impl *b, float **arrays, size_t *sizes) {
    for (int k = 0; k < 8; k++) {
        arrays[k] = b->h_opt[k];
        sizes[k] = b->h_opt[k] ? b->opt_n[k] : 0;
    }
    return 8;
}

static void cuda_update_dense(backend_impl *b, const float *const *parts, int n_parts, size_t lo, size_t hi) {
    (void)parts;
    CHECK(n_parts == 0 && lo == 0 && hi == b->s.n_dense, "the CUDA backend updates the whole dense buffer, "
          "with its own gradient");
    if (b->in_graph) return;  // (in the step's graph)
    const span sp = span_begin(b);
    k_adagrad(b->st, b->d.dense, b->g_dense, b->opt[0], b->opt[1], b->s.n_dense, b->cfg.learning_rate,
              b->cfg.momentum);
    span_end(b, sp);
}

// Table T's update by a device-built step's own rows (bounded on the device by its count),
// as a part of k_adagrad_parts.
static adagrad_part_t own_rows_part(backend_impl *b, int t) {
    float *p[3] = {b->d.Wy, b->d.by, b->d.E};
    const row_grads *g[3] = {&b->g_Wy, &b->g_by, &b->g_E};
    const int bound[3] = {b->dev_C + b->dev_M, b->dev_C, b->dev_M}, live[3] = {SL_NWY, SL_U, SL_NE};
    const int32_t *rows[3] = {ix(b, IX_UNIQ), ix(b, IX_UNIQ), ix(b, IX_EROWS)};
    return adagrad_part_t{p[t], b->opt[2 + 2 * t], b->opt[3 + 2 * t], rows[t], g[t]->grad, bound[t],
                          ix(b, IX_CNT) + live[t], (size_t)g[t]->width};
}

// The tables ON_DEV[t] of a device-built step: its own rows, counted on the device.
static void update_device_rows(backend_impl *b, const int *on_dev) {
    adagrad_part_t q[3];
    int n = 0;
    for (int t = 0; t < 3; t++)
        if (on_dev[t]) q[n++] = own_rows_part(b, t);
    if (n) k_adagrad_parts(b->st, q, n, b->cfg.learning_rate, b->cfg.momentum);
}

// G[t]: rows of table t (NULL: none), their gradients in device memory.
static void cuda_update_rows(backend_impl *b, const row_grads *const *g) {
    const span sp = span_begin(b);
    const float lr = b->cfg.learning_rate, mu = b->cfg.momentum;
    float *p[3] = {b->d.Wy, b->d.by, b->d.E};
    // A device-built step's own rows are on the device already, counted there.
    const row_grads *own[3] = {&b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
    int on_dev[3] = {0, 0, 0};
    for (int t = 0; t < 3; t++) on_dev[t] = b->dev_step && g[t] && g[t] == own[t];
    CHECK(!b->in_graph, "a graph step updates its own rows only");
    if (b->dev_step) update_device_rows(b, on_dev);
    // The other id lists in one upload.
    size_t n = 0;
    for (int t = 0; t < 3; t++) n += g[t] && !on_dev[t] ? (size_t)g[t]->n : 0;
    if (n > b->rows_cap) {  // grows a few times early on (the unions of several ranks), then never
        host_wait(b);
        free(b->h_rows);
        dfree(b->d_rows);
        b->rows_cap = 2 * n;
        b->h_rows = (int32_t *)xmalloc(b->rows_cap * sizeof(int32_t));
        b->d_rows = (int32_t *)dalloc_bytes(b->rows_cap * sizeof(int32_t));
    }
    size_t at = 0;
    for (int t = 0; t < 3; t++)
        if (g[t] && g[t]->n && !on_dev[t])
            memcpy(b->h_rows + at, g[t]->rows, (size_t)g[t]->n * sizeof(int32_t)), at += (size_t)g[t]->n;
    step_upload(b, b->d_rows, b->h_rows, n * sizeof(int32_t));
    at = 0;
    for (int t = 0; t < 3; t++) {
        if (!g[t] || g[t]->n == 0 || on_dev[t]) continue;
        k_adagrad_rows(b->st, p[t], b->opt[2 + 2 * t], b->opt[3 + 2 * t], b->d_rows + at, g[t]->grad, g[t]->n, NULL,
                       g[t]->width, lr, mu);
        at += (size_t)g[t]->n;
    }
    span_end(b, sp);
}

// Its own gradients' rows, without bringing device-built lists to the host.
static void cuda_update_own_rows(backend_impl *b) {
    if (b->in_graph) return;  // (in the step's graph)
    const row_grads *g[3] = {&b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
    cuda_update_rows(b, g);
}

// After a graph step the carry is owed (the next graph does it with the lanes' move).
static void cuda_end_step(backend_impl *b, int M) {
    const span sp = span_begin(b);
    cuda_clear_gradients(b);
    if (b->in_graph) b->in_graph = 0, b->carry = 1, b->move_m = -1;
    else carry_state(b, M);
    span_end(b, sp);
}

// ---- one CUDA graph per step ----

// The dense update and the step's own rows' in one launch (the same bits as the plain
// calls: cuda_update_dense, update_device_rows).
static void all_updates(backend_impl *b) {
    adagrad_part_t q[4];
    int n = 0;
    q[n++] = adagrad_part_t{b->d.dense, b->opt[0], b->opt[1], NULL, b->g_dense, 1, NULL, b->s.n_dense};
    for (int t = 0; t < 3; t++)
        if (t < 2 || b->p->E) q[n++] = own_rows_part(b, t);
    k_adagrad_parts(b->st, q, n, b->cfg.learning_rate, b->cfg.momentum);
}

// The step's device work captured once per loss slot (again if a plain step's row move has
// swapped the state buffers since): the owed carry and move, the lists, forward, loss,
// backward, the loss's sum and copy, the Adagrad updates. Its arguments are fixed; what
// changes per step is read from the controls and lists uploaded before each launch.
static cudaGraphExec_t step_graph(backend_impl *b, int slot, int M, int K, float scale, int64_t step) {
    int same = b->exec[slot] != NULL;
    for (int l = 0; l < b->L; l++) same = same && b->g_state[slot][l] == b->state[l];
    if (same) return b->exec[slot];
    if (b->exec[slot]) CUDA_CHECK(cudaGraphExecDestroy(b->exec[slot]));
    const double t0 = now_s();
    if (!b->blas_ws) {  // (cuBLAS would otherwise allocate inside the capture; 32 MiB: Hopper's advice)
        const size_t ws = (size_t)32 << 20;
        b->blas_ws = dalloc_bytes(ws);
        CUBLAS_CHECK(cublasSetWorkspace(b->blas, b->blas_ws, ws));
    }
    const backend_counters c0 = b->cnt;
    const long long k0 = k_launch_count();
    const double f0 = b->flops;
    cudaGraph_t g;
    CUDA_CHECK(cudaStreamBeginCapture(b->st, cudaStreamCaptureModeThreadLocal));
    for (int l = 0; l < b->L; l++)
        k_carry_move(b->st, b->state[l], b->out[l], b->d_ix, ctl(b), b->max_rows, b->state_width[l]);
    device_step_lists(b, M, K, step);
    step_kernels(b, M, M + K, M + K, 0, M, scale, step);
    queue_loss_sum(b, M, slot);
    all_updates(b);
    CUDA_CHECK(cudaStreamEndCapture(b->st, &g));
    size_t nodes = 0;
    CUDA_CHECK(cudaGraphGetNodes(g, NULL, &nodes));
    CUDA_CHECK(cudaGraphInstantiate(&b->exec[slot], g, 0));
    CUDA_CHECK(cudaGraphDestroy(g));
    // What a launch does, counted per launch (graph_step), not here.
    backend_counters *d = &b->g_cnt[slot];
    memset(d, 0, sizeof *d);
    d->kernels = k_launch_count() - k0, d->blas_calls = b->cnt.blas_calls - c0.blas_calls;
    d->copies_d2h = b->cnt.copies_d2h - c0.copies_d2h, d->bytes_d2h = b->cnt.bytes_d2h - c0.bytes_d2h;
    d->graph_nodes = (int64_t)nodes;
    b->cnt.blas_calls = c0.blas_calls, b->cnt.copies_d2h = c0.copies_d2h, b->cnt.bytes_d2h = c0.bytes_d2h;
    b->cnt.kernels -= d->kernels;  // (span_end counts the launch count's difference)
    b->g_flops[slot] = b->flops - f0;
    b->flops = f0;
    for (int l = 0; l < b->L; l++) b->g_state[slot][l] = b->state[l];
    // A capture is set-up, as a buffer's growth: counted apart, not in the step's host time.
    b->cnt.graph_captures++;
    b->cnt.capture_us += 1e6 * (now_s() - t0);
    b->wait_s += now_s() - t0;
    return b->exec[slot];
}

// One upload (the owed move's plan, the controls, the inputs and targets), one launch.
static double graph_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, int K, float scale, int64_t step) {
    const int slot = (int)(b->cnt.steps % 2);
    step_inputs(b, M, x, y);
    set_ctl(b, step, b->carry, b->carry && b->move_m > 0 ? b->move_m : 0);
    const size_t front = b->carry && b->move_m > 0 ? 0 : (size_t)b->max_rows;  // (no plan: from the controls)
    step_upload(b, b->d_ix + front, b->h_ix + front, (b->ix_at[IX_COLS] - front + (size_t)M) * sizeof(int32_t));
    b->carry = 0, b->move_m = -1;
    mark_device_step(b, M, M + K);
    const cudaGraphExec_t e = step_graph(b, slot, M, K, scale, step);
    CUDA_CHECK(cudaGraphLaunch(e, b->st));
    const backend_counters *d = &b->g_cnt[slot];
    b->cnt.graph_launches++;
    b->cnt.graph_nodes += d->graph_nodes;
    b->cnt.graph_kernel_nodes += d->kernels;
    b->cnt.graph_blas_nodes += d->blas_calls;
    b->cnt.copies_d2h += d->copies_d2h, b->cnt.bytes_d2h += d->bytes_d2h;
    b->flops += b->g_flops[slot];
    b->in_graph = 1;
    return late_loss(b, slot);
}

static void cuda_counters(const backend_impl *b, backend_counters *out) { *out = b->cnt; }

// ---- scoring (evaluation, recommendations) ----

// Feeds X to the M rows (no dropout) and moves their state on (CPU: backend_feed).
static void cuda_feed(backend_impl *b, int M, const int32_t *x) {
    CHECK(M <= b->max_rows, "%d rows exceed the backend's %d", M, b->max_rows);
    settle_carry(b);
    if (b->owner && b->owner->tab_on) {  // the training backend's stream uploaded the step table
        const double t0 = now_s();
        event_sync(b->owner, b->owner->tab_ev);
        waited(b, t0);
    }
    upload(b, ix(b, IX_X), x, (size_t)M * sizeof(int32_t));
    forward(b, M, 0, 0);
    carry_state(b, M);
}

// Feeds X, then scores every item for the M rows into b->scores (left on the device).
static void score_all_device(backend_impl *b, int M, const int32_t *x) {
    CHECK(b->scores, "this backend was made for training, or holds a step table: it cannot score every item");
    cuda_feed(b, M, x);
    const int64_t N = b->s.n_items;
    k_broadcast_rows(b->st, b->scores, b->d.by, M, (int)N);
    gemm(b, 0, 1, M, (int)N, b->H, b->out[b->L - 1], b->H, b->d.Wy, b->H, 1.0f, b->scores, (int)N);
}

static const float *cuda_score_all(backend_impl *b, int M, const int32_t *x) {
    score_all_device(b, M, x);
    if (!b->h_scores) b->h_scores = (float *)xmalloc((size_t)b->max_rows * b->s.n_items * sizeof(float));
    download(b, b->h_scores, b->scores, (size_t)M * b->s.n_items * sizeof(float));
    return b->h_scores;
}

// Ranks counted on the GPU (integers: exact), turned into metrics on the host.
static void cuda_eval_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, metrics *met, tie_mode ties) {
    score_all_device(b, M, x);
    const int64_t N = b->s.n_items;
    for (int i = 0; i < M; i++) CHECK(y[i] >= 0 && y[i] < N, "target %d outside 0..%lld", (int)y[i], (long long)N - 1);
    int32_t *h_y = hix(b, IX_COLS);
    memcpy(h_y, y, (size_t)M * sizeof(int32_t));
    upload(b, ix(b, IX_COLS), h_y, (size_t)M * sizeof(int32_t));
    k_rank_counts(b->st, b->scores, M, N, ix(b, IX_COLS), b->d_gt, b->d_eq, b->d_nan);
    CUDA_CHECK(cudaMemcpyAsync(b->h_gt, b->d_gt, (size_t)M * sizeof *b->h_gt, cudaMemcpyDeviceToHost, b->st));
    CUDA_CHECK(cudaMemcpyAsync(b->h_eq, b->d_eq, (size_t)M * sizeof *b->h_eq, cudaMemcpyDeviceToHost, b->st));
    download(b, b->h_nan, b->d_nan, (size_t)M * sizeof *b->h_nan);
    for (int i = 0; i < M; i++)
        metrics_add_rank(met, rank_from_counts((int64_t)b->h_gt[i], (int64_t)b->h_eq[i], N, b->h_nan[i], ties));
}

// ---- the step exchange on device memory, summed by NCCL ----

static float *xm_alloc(void *ctx, size_t n) {
    (void)ctx;
    return dalloc(n);
}
static void xm_release(void *ctx, float *p) {
    (void)ctx;
    dfree(p);
}
// (The exchange's operations are part of the step: each is a span of the counters.)
static void xm_zero(void *ctx, float *p, size_t n) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    if (n) CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), b->st));
    span_end(b, sp);
}
static void xm_copy(void *ctx, float *dst, const float *src, size_t n) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    copy_d2d(b, dst, src, n);
    span_end(b, sp);
}
static void xm_put(void *ctx, float *dst, const float *host, size_t n) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    step_upload(b, dst, host, n * sizeof(float));
    span_end(b, sp);
}
// Behind a started all-reduce the copy lands in pinned memory and the one wait watches
// the event after it, under the all-reduce's deadline. (The step's header does not come
// this way: it travels with the ids over MPI, exchange.c.)
static void xm_get(void *ctx, float *host, const float *src, size_t n) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    if (!b->nccl || n == 0) {
        download(b, host, src, n * sizeof(float));
    } else {
        const double t0 = now_s();
        if (n > b->stage_cap) {  // once (the header's few floats): nothing is in flight into it
            if (b->h_stage) CUDA_CHECK(cudaFreeHost(b->h_stage));
            CUDA_CHECK(cudaMallocHost((void **)&b->h_stage, n * sizeof(float)));
            b->stage_cap = n;
        }
        CUDA_CHECK(cudaMemcpyAsync(b->h_stage, src, n * sizeof(float), cudaMemcpyDeviceToHost, b->st));
        b->cnt.copies_d2h++;
        b->cnt.bytes_d2h += (int64_t)(n * sizeof(float));
        drain(b);
        waited(b, t0);
        memcpy(host, b->h_stage, n * sizeof(float));
    }
    span_end(b, sp);
}
static int64_t *positions(backend_impl *b, const int64_t *pos, int n) {
    if ((size_t)n > b->d_pos_cap) {  // grows a few times early on, then never
        host_wait(b);
        dfree(b->d_pos);
        b->d_pos_cap = (size_t)n * 2;
        b->d_pos = (int64_t *)dalloc_bytes(b->d_pos_cap * sizeof(int64_t));
    }
    step_upload(b, b->d_pos, pos, (size_t)n * sizeof(int64_t));
    return b->d_pos;
}
static void xm_scatter(void *ctx, float *dst, const int64_t *pos, const float *src, int n, int w) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    if (n) k_scatter_rows64(b->st, dst, positions(b, pos, n), src, n, w);
    span_end(b, sp);
}
static void xm_gather(void *ctx, float *dst, const float *src, const int64_t *pos, int n, int w) {
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    if (n) k_gather_rows64(b->st, dst, src, positions(b, pos, n), n, w);
    span_end(b, sp);
}
// Only started: the stream orders the sums' readers on the device, and the host's later
// waits (event_sync, drain) watch its deadline. A step has none of its own.
static void xm_allreduce(void *ctx, comm *c, float *buf, size_t n) {
    (void)c;
    backend_impl *b = (backend_impl *)ctx;
    const span sp = span_begin(b);
    comm_nccl_allreduce_sum_f32_start(b->nccl, buf, n, "the step exchange");
    b->cnt.nccl_calls += n > 0;
    span_end(b, sp);
}

static const exchange_mem *cuda_exchange_mem(backend_impl *b, comm *c) {
    if (!b->nccl) {
        b->nccl = comm_nccl_init(c, b->st);  // collective: every rank is here
        CUDA_CHECK(cudaEventCreateWithFlags(&b->nccl_ev, cudaEventDisableTiming));
    }
    exchange_mem m = {b, xm_alloc, xm_release, xm_zero, xm_copy, xm_put, xm_get, xm_scatter, xm_gather, xm_allreduce};
    b->xmem = m;
    return &b->xmem;
}

// ---- sharded item tables (src/dist/tables_sharded.c): a step table on the device ----
//
// The host fetches a step's rows from their owners into the parameters' tables (a step
// table of table_rows rows, ids given as its rows); the rows go up through a pinned
// buffer, the step runs as ever, its row gradients come down, and the host sums and
// applies them (Adagrad of the rows on their owners); the dense gradient is summed in
// place by NCCL (cuda_exchange_mem) for cuda_update_dense. The shard and its Adagrad
// state stay in host memory.

// Row K of the step table is item ITEMS[K] (its logq support); the host draws the
// negatives (cuda_draw_negatives declines).
static void cuda_step_items(backend_impl *b, const int32_t *items) {
    CHECK(b->training, "this backend was made for scoring, not training");
    CHECK(!items || b->s.table_rows > 0, "the CUDA backend trains sharded tables from a step table: create it with "
          "the shape's table_rows (tables_bound_rows)");
    b->step_items = items;
    if (!items || b->tab_on) return;
    const size_t T = table_rows(&b->s), ew = b->p->E ? (size_t)b->s.emb_width : 0;
    b->tab_cap = T * ((size_t)b->H + 1 + ew);
    CUDA_CHECK(cudaMallocHost((void **)&b->tab_buf, b->tab_cap * sizeof(float)));
    b->h_grad_cap = b->s.n_dense + (size_t)b->g_Wy.cap * b->H + (size_t)b->g_by.cap + (b->p->E ? (size_t)b->g_E.cap * ew : 0);
    CUDA_CHECK(cudaMallocHost((void **)&b->h_grad, b->h_grad_cap * sizeof(float)));
    CUDA_CHECK(cudaEventCreateWithFlags(&b->tab_ev, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(b->tab_ev, b->st));  // (nothing in flight from the buffer yet)
    b->tab_on = 1;
}

// Rows 0..N-1 of the host's step table (Wy, by, E) up to the device, through TAB_BUF
// once its last copies are done (the step before's: done long ago as a rule).
static void cuda_put_table_rows(backend_impl *b, int n) {
    CHECK(b->tab_on, "step-table rows put to a backend without a step table (backend_step_items)");
    CHECK(n >= 0 && (size_t)n <= table_rows(&b->s), "%d step-table rows, room for %zu", n, table_rows(&b->s));
    if (n == 0) return;
    const span sp = span_begin(b);
    const double t0 = now_s();
    event_sync(b, b->tab_ev);
    b->wait_s += now_s() - t0;  // (as next_upload_slot's: no drain, not host time)
    const size_t rows = (size_t)n, w[3] = {(size_t)b->H, 1, b->p->E ? (size_t)b->s.emb_width : 0};
    const float *h[3] = {b->p->Wy, b->p->by, b->p->E};
    float *d[3] = {b->d.Wy, b->d.by, b->d.E};
    float *at = b->tab_buf;
    for (int t = 0; t < 3; t++) {
        if (!w[t]) continue;
        const size_t bytes = rows * w[t] * sizeof(float);
        memcpy(at, h[t], bytes);
        CUDA_CHECK(cudaMemcpyAsync(d[t], at, bytes, cudaMemcpyHostToDevice, b->st));
        b->cnt.copies_h2d++;
        b->cnt.bytes_h2d += (int64_t)bytes;
        at += rows * w[t];
    }
    CUDA_CHECK(cudaEventRecord(b->tab_ev, b->st));
    span_end(b, sp);
}

// The step's row gradients (and where DENSE its dense gradient) down into H_GRAD (one
// wait, which watches a started all-reduce's deadline): the host's row_grads are the
// device's ids with host rows.
static backend_grads cuda_host_gradients(backend_impl *b, int dense) {
    CHECK(b->tab_on, "host gradients of a backend without a step table (backend_step_items)");
    device_rows_to_host(b);
    const span sp = span_begin(b);
    const double t0 = now_s();
    const row_grads *g[3] = {&b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
    row_grads *hg[3] = {&b->h_gWy, &b->h_gby, &b->h_gE};
    const float *src[4] = {b->g_dense, g[0]->grad, g[1]->grad, g[2] ? g[2]->grad : NULL};
    size_t n[4] = {dense ? b->s.n_dense : 0, 0, 0, 0}, room[4] = {b->s.n_dense, 0, 0, 0};
    for (int t = 0; t < 3; t++)
        if (g[t]) n[t + 1] = (size_t)g[t]->n * g[t]->width, room[t + 1] = (size_t)g[t]->cap * g[t]->width;
    float *at = b->h_grad;
    for (int k = 0; k < 4; k++) {
        if (k > 0 && g[k - 1]) *hg[k - 1] = *g[k - 1], hg[k - 1]->grad = at;
        if (n[k]) {
            CUDA_CHECK(cudaMemcpyAsync(at, src[k], n[k] * sizeof(float), cudaMemcpyDeviceToHost, b->st));
            b->cnt.copies_d2h++;
            b->cnt.bytes_d2h += (int64_t)(n[k] * sizeof(float));
        }
        at += room[k];
    }
    drain(b);
    waited(b, t0);
    span_end(b, sp);
    const backend_grads out = {dense ? b->h_grad : NULL, hg[0], hg[1], g[2] ? hg[2] : NULL};
    return out;
}

extern "C" const backend_ops cuda_backend_ops = {
    "cuda",
    cuda_create,
    cuda_create_scorer,
    cuda_free,
    cuda_states,
    cuda_state_widths,
    cuda_n_states,
    cuda_zero_states,
    cuda_move_rows,
    cuda_gradient_step,
    cuda_gradients,
    cuda_clear_gradients,
    cuda_dense_grads,
    NULL,  // grad_buffers: the gradients stay on the GPU
    cuda_update_dense,
    cuda_update_rows,
    cuda_end_step,
    cuda_optim_arrays,
    cuda_eval_step,
    cuda_flops,
    cuda_feed,
    cuda_score_all,
    cuda_sync_to_host,
    cuda_sync_params_to_host,
    cuda_sync_to_device,
    cuda_exchange_mem,
    cuda_step_items,
    cuda_counters,
    cuda_set_loss_late,
    cuda_take_loss,
    cuda_draw_negatives,
    cuda_update_own_rows,
    cuda_put_table_rows,
    cuda_host_gradients,
};
