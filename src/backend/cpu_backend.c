// CPU backend: one training step of GRU4Rec as plain loops and matrix products (sgemm_rm:
// OpenBLAS, and our AVX-512 kernel for the large weight gradients) over preallocated
// buffers (nothing is allocated inside the step).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "data/lanes.h"
#include "util/check.h"
#include "model/gru.h"
#include "model/loss.h"
#include "model/optim.h"
#include "data/rng.h"
#include "backend/sgemm.h"

struct backend_impl {
    train_config cfg;
    model_shape s;
    model_tensors *p;
    int max_rows, max_cols, rank, training;
    int L, H;  // layers, last hidden size
    // hidden state (rows follow the lanes) and this step's per-layer buffers
    float *state[MAX_LAYERS];
    int state_width[MAX_LAYERS];
    float *xw[MAX_LAYERS], *gates[MAX_LAYERS], *rh[MAX_LAYERS], *h_new[MAX_LAYERS], *out[MAX_LAYERS];
    float *mask[MAX_LAYERS];  // inverted-dropout multipliers of each layer's output
    float *emb, *emb_mask;    // layer-0 input rows (shared / separate embedding)
    // output
    int32_t *cols, *col_slot;  // the step's columns, and each one's distinct-item index
    float *log_q_col, *Wyu, *byu, *Ru, *R, *dR, *dRu;
    float *scores;  // eval: [max_rows × n_items]
    // backward
    float *dh, *dxw, *drh, *dx, *loss_scratch;
    // optimizer
    float *g_dense, *acc_dense, *mom_dense;
    int borrowed_grads;  // g_dense and the rows' grad are the caller's (backend_grad_buffers)
    table_optim tab;  // the item tables' Adagrad state (borrowed: the caller's)
    row_grads g_Wy, g_by, g_E;
    float *log_support;  // [n_items] log of training support (logq)
    const int32_t *step_items;  // sharded tables: the item of each step-table row (NULL: ids are items)
    double flops;        // in matrix products so far (benchmarks report GFLOP/s)
};

static double cpu_flops(const backend_impl *b) { return b->flops; }

static float *alloc_f(size_t n) { return xcalloc_huge((n ? n : 1) * sizeof(float)); }

// C = A·B (+ beta·C), row-major, counting 2·m·n·k floating-point operations.
static void gemm(backend_impl *b, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_rm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);  // (nothing for m or n = 0)
    b->flops += 2.0 * m * n * k;
}

static backend_impl *cpu_create(const train_config *c, const model_shape *s, model_tensors *params,
                                const table_optim *opt, int max_rows, int rank, const int64_t *item_support) {
    const int for_training = opt != NULL;
    backend_impl *b = xcalloc(1, sizeof *b);
    b->cfg = *c;
    b->s = *s;
    b->p = params;
    b->rank = rank;
    b->training = for_training;
    b->max_rows = max_rows;
    b->max_cols = max_rows + (for_training ? c->n_sample : 0);
    b->L = s->n_layers;
    b->H = s->hid[b->L - 1];
    const size_t R = (size_t)max_rows;
    int max_in = 0, max_h = 0;
    for (int l = 0; l < b->L; l++) {
        int H = s->hid[l];
        if (s->in_dim[l] > max_in) max_in = s->in_dim[l];
        if (H > max_h) max_h = H;
        b->state[l] = alloc_f(R * H);
        b->state_width[l] = H;
        b->xw[l] = alloc_f(R * 3 * H);
        b->gates[l] = alloc_f(R * 3 * H);
        b->rh[l] = alloc_f(R * H);
        b->h_new[l] = alloc_f(R * H);
        b->out[l] = alloc_f(R * H);
        b->mask[l] = alloc_f(R * H);
    }
    b->emb = alloc_f(R * (size_t)s->in_dim[0]);
    b->emb_mask = alloc_f(R * (size_t)s->in_dim[0]);
    if (for_training) {
        const size_t C = (size_t)b->max_cols;
        b->cols = xmalloc(C * sizeof *b->cols);
        b->col_slot = xmalloc(C * sizeof *b->col_slot);
        b->log_q_col = alloc_f(C);
        b->Wyu = alloc_f(C * b->H);
        b->byu = alloc_f(C);
        b->Ru = alloc_f(R * C);
        b->R = alloc_f(R * C);
        b->dR = alloc_f(R * C);
        b->dRu = alloc_f(R * C);
        b->dh = alloc_f(R * max_h);
        b->dxw = alloc_f(R * 3 * max_h);
        b->drh = alloc_f(R * max_h);
        b->dx = alloc_f(R * (size_t)(max_in > max_h ? max_in : max_h));
        b->loss_scratch = alloc_f(loss_scratch_floats(max_rows, b->max_cols));
        const int mom = c->momentum > 0;
        const size_t N = (size_t)s->n_items;
        b->g_dense = alloc_f(s->n_dense);
        b->acc_dense = alloc_f(s->n_dense);
        b->mom_dense = mom ? alloc_f(s->n_dense) : NULL;
        b->tab = *opt;
        // Touched rows per step: the columns, plus the inputs when Wy is also the input table.
        row_grads_init(&b->g_Wy, s->n_items, b->H, b->max_cols + max_rows);
        row_grads_init(&b->g_by, s->n_items, 1, b->max_cols);
        if (params->E) row_grads_init(&b->g_E, s->n_items, s->emb_width, max_rows);
        b->log_support = alloc_f(N);
        for (size_t i = 0; i < N; i++) b->log_support[i] = item_support ? logf((float)(item_support[i] > 0 ? item_support[i] : 1)) : 0.0f;
    }  // (a scorer's scores: at its first score_all; one that only feeds needs none)
    return b;
}

// The CPU scores the host parameters the training backend updates in place.
static backend_impl *cpu_create_scorer(backend_impl *training, int max_rows) {
    return cpu_create(&training->cfg, &training->s, training->p, NULL, max_rows, 0, NULL);
}

static void cpu_free(backend_impl *b) {
    for (int l = 0; l < b->L; l++) {
        free(b->state[l]); free(b->xw[l]); free(b->gates[l]); free(b->rh[l]);
        free(b->h_new[l]); free(b->out[l]); free(b->mask[l]);
    }
    free(b->emb); free(b->emb_mask); free(b->cols); free(b->col_slot); free(b->log_q_col); free(b->Wyu);
    free(b->byu); free(b->Ru); free(b->R); free(b->dR); free(b->dRu); free(b->scores); free(b->dh); free(b->dxw); free(b->drh); free(b->dx);
    if (b->borrowed_grads) {  // (the caller's memory)
        b->g_dense = b->g_Wy.grad = b->g_by.grad = b->g_E.grad = NULL;
    }
    free(b->loss_scratch); free(b->g_dense); free(b->log_support); free(b->acc_dense); free(b->mom_dense);
    if (b->training) {
        row_grads_free(&b->g_Wy);
        row_grads_free(&b->g_by);
        if (b->p->E) row_grads_free(&b->g_E);
    }
    free(b);
}

static float **cpu_states(backend_impl *b) { return b->state; }
static const int *cpu_state_widths(const backend_impl *b) { return b->state_width; }
static int cpu_n_states(const backend_impl *b) { return b->L; }

static void cpu_zero_states(backend_impl *b) {
    for (int l = 0; l < b->L; l++) memset(b->state[l], 0, (size_t)b->max_rows * b->state_width[l] * sizeof(float));
}

// Inverted dropout: mask = 1/(1−p) with probability 1−p, else 0, from a counter-based
// stream keyed by (step, slot, element), so masks never depend on the order of draws
// (rng.h's dropout_multiplier, which the CUDA kernels call too).
static inline __attribute__((always_inline)) void dropout_mask_loop(float *mask, size_t n, float p, uint64_t seed,
                                                                    int rank, int64_t step, int slot) {
    for (size_t i = 0; i < n; i++) mask[i] = dropout_multiplier(seed, rank, step, slot, i, p);
}

// AVX-512DQ's 64-bit multiply vectorises the hash (elsewhere it runs scalar). Picked by
// hand: target_clones' "arch=" picks by CPU model, not by feature.
__attribute__((target("avx512f,avx512dq"))) static void dropout_mask_dq(float *mask, size_t n, float p, uint64_t seed,
                                                                         int rank, int64_t step, int slot) {
    dropout_mask_loop(mask, n, p, seed, rank, step, slot);
}

static void dropout_mask(float *mask, size_t n, float p, uint64_t seed, int rank, int64_t step, int slot) {
    if (__builtin_cpu_supports("avx512dq")) dropout_mask_dq(mask, n, p, seed, rank, step, slot);
    else dropout_mask_loop(mask, n, p, seed, rank, step, slot);
}

static void mul_inplace(float *x, const float *m, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= m[i];
}

// Layer inputs and the GRU stack for M rows; leaves the top layer's output in out[L-1].
static void forward(backend_impl *b, int M, const int32_t *x, int64_t step, int train) {
    const model_shape *s = &b->s;
    const float p_emb = train ? b->cfg.dropout_embed : 0.0f, p_hid = train ? b->cfg.dropout_hidden : 0.0f;
    const int in0 = s->in_dim[0];
    if (in0 == 0) {  // one-hot: layer 0's input product is a row of its input table
        const int w = s->emb_width;
        for (int i = 0; i < M; i++) memcpy(b->xw[0] + (size_t)i * w, b->p->E + (size_t)x[i] * w, (size_t)w * sizeof(float));
    } else {
        const float *table = b->p->E ? b->p->E : b->p->Wy;
        for (int i = 0; i < M; i++) memcpy(b->emb + (size_t)i * in0, table + (size_t)x[i] * in0, (size_t)in0 * sizeof(float));
        if (p_emb > 0) {
            dropout_mask(b->emb_mask, (size_t)M * in0, p_emb, b->cfg.seed, b->rank, step, 0);
            mul_inplace(b->emb, b->emb_mask, (size_t)M * in0);
        }
    }
    for (int l = 0; l < b->L; l++) {
        const int H = s->hid[l], in = s->in_dim[l];
        const float *input = l == 0 ? b->emb : b->out[l - 1];
        if (in > 0)
            gemm(b, CblasNoTrans, CblasNoTrans, M, 3 * H, in, input, in, layer_W(b->p, s, l), 3 * H, 0.0f, b->xw[l],
                 3 * H);
        gru_forward(M, H, b->state[l], layer_U(b->p, s, l), layer_b(b->p, s, l), b->xw[l], b->gates[l], b->rh[l],
                    b->h_new[l]);
        b->flops += 2.0 * M * 3 * H * H;  // its products with U
        memcpy(b->out[l], b->h_new[l], (size_t)M * H * sizeof(float));
        if (p_hid > 0) {
            dropout_mask(b->mask[l], (size_t)M * H, p_hid, b->cfg.seed, b->rank, step, 1 + l);
            mul_inplace(b->out[l], b->mask[l], (size_t)M * H);
        }
    }
}

// The dropped output is the state a lane carries to its next event (as the official code).
static void carry_state(backend_impl *b, int M) {
    for (int l = 0; l < b->L; l++) memcpy(b->state[l], b->out[l], (size_t)M * b->s.hid[l] * sizeof(float));
}

static void scatter_rows(row_grads *g, const int32_t *ids, int n, const float *rows, int width) {
    for (int i = 0; i < n; i++) {
        float *dst = row_grads_row(g, ids[i]);
        const float *src = rows + (size_t)i * width;
        for (int k = 0; k < width; k++) dst[k] += src[k];
    }
}

static double cpu_gradient_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                             float scale, int64_t step) {
    const model_shape *s = &b->s;
    const int H = b->H, C = M + K, L = b->L;
    CHECK(b->training, "this backend was made for scoring, not training");
    CHECK(M <= b->max_rows && C <= b->max_cols, "step of %d rows and %d columns exceeds the buffers", M, C);
    CHECK(b->g_Wy.n == 0 && b->g_by.n == 0, "gradient step on uncleared gradients (call backend_clear_gradients)");
    forward(b, M, x, step, 1);

    // Scores of the M targets and K negatives: R = h · Wy[cols]ᵀ + by[cols]. An item
    // can be several columns (a popular item drawn twice, a target that is also a
    // negative): the products run over the U distinct items, whose gradient rows are
    // the first U slots of the row accumulators (cleared at the end of every step).
    memcpy(b->cols, y, (size_t)M * sizeof *b->cols);
    memcpy(b->cols + M, neg, (size_t)K * sizeof *b->cols);
    for (int j = 0; j < C; j++) {
        b->col_slot[j] = row_grads_slot(&b->g_Wy, b->cols[j]);
        row_grads_slot(&b->g_by, b->cols[j]);  // the same slots: both start empty
    }
    const int U = b->g_Wy.n;
    for (int u = 0; u < U; u++) {
        memcpy(b->Wyu + (size_t)u * H, b->p->Wy + (size_t)b->g_Wy.rows[u] * H, (size_t)H * sizeof(float));
        b->byu[u] = b->p->by[b->g_Wy.rows[u]];
    }
    for (int i = 0; i < M; i++) memcpy(b->Ru + (size_t)i * U, b->byu, (size_t)U * sizeof(float));
    const float *h = b->out[L - 1];
    gemm(b, CblasNoTrans, CblasTrans, M, U, H, h, H, b->Wyu, H, 1.0f, b->Ru, U);
    for (int i = 0; i < M; i++) {
        const float *ru = b->Ru + (size_t)i * U;
        float *r = b->R + (size_t)i * C;
        for (int j = 0; j < C; j++) r[j] = ru[b->col_slot[j]];
    }
    const float *log_q = NULL;
    if (b->cfg.loss.logq > 0) {  // q ∝ support for in-batch targets, support^α for samples
        for (int j = 0; j < C; j++)
            b->log_q_col[j] = b->log_support[b->step_items ? b->step_items[b->cols[j]] : b->cols[j]] *
                              (j < M ? 1.0f : b->cfg.sample_alpha);
        log_q = b->log_q_col;
    }
    double loss = loss_forward_backward(&b->cfg.loss, b->R, M, C, log_q, scale, b->dR, b->loss_scratch);

    // Output layer over the distinct items: dRu sums the columns of each item, then
    // dWy[items] = dRuᵀ·h (straight into the accumulator rows), dby[items] = column
    // sums of dRu, dh = dRu·Wy[items].
    memset(b->dRu, 0, (size_t)M * U * sizeof(float));
    for (int i = 0; i < M; i++) {
        const float *dr = b->dR + (size_t)i * C;
        float *du = b->dRu + (size_t)i * U;
        for (int j = 0; j < C; j++) du[b->col_slot[j]] += dr[j];
    }
    gemm(b, CblasTrans, CblasNoTrans, U, H, M, b->dRu, U, h, H, 0.0f, b->g_Wy.grad, H);
    for (int u = 0; u < U; u++) b->g_by.grad[u] = 0.0f;
    for (int i = 0; i < M; i++) {
        const float *du = b->dRu + (size_t)i * U;
        for (int u = 0; u < U; u++) b->g_by.grad[u] += du[u];
    }
    gemm(b, CblasNoTrans, CblasNoTrans, M, H, U, b->dRu, U, b->Wyu, H, 0.0f, b->dh, H);

    // GRU stack, top down. dh holds the gradient of the current layer's (dropped) output.
    // Every dense gradient is written whole (products with β = 0): nothing to zero first.
    for (int l = L - 1; l >= 0; l--) {
        const int Hl = s->hid[l], in = s->in_dim[l];
        if (b->cfg.dropout_hidden > 0) mul_inplace(b->dh, b->mask[l], (size_t)M * Hl);
        gru_backward(M, Hl, b->state[l], layer_U(b->p, s, l), b->gates[l], b->rh[l], b->dh, b->dxw, b->drh,
                     b->g_dense + s->off_U[l], b->g_dense + s->off_b[l], 0);
        b->flops += 2.0 * M * 4 * Hl * Hl;  // d(r⊙h), dU
        if (in == 0) {  // one-hot: the pre-activation gradient is the input-table row's gradient
            scatter_rows(&b->g_E, x, M, b->dxw, 3 * Hl);
            continue;
        }
        const float *input = l == 0 ? b->emb : b->out[l - 1];
        gemm(b, CblasTrans, CblasNoTrans, in, 3 * Hl, M, input, in, b->dxw, 3 * Hl, 0.0f, b->g_dense + s->off_W[l],
             3 * Hl);
        gemm(b, CblasNoTrans, CblasTrans, M, in, 3 * Hl, b->dxw, 3 * Hl, layer_W(b->p, s, l), 3 * Hl, 0.0f, b->dx, in);
        if (l > 0) {
            memcpy(b->dh, b->dx, (size_t)M * in * sizeof(float));
        } else {  // into the embedding rows (shared: Wy itself; separate: E)
            if (b->cfg.dropout_embed > 0) mul_inplace(b->dx, b->emb_mask, (size_t)M * in);
            scatter_rows(b->p->E ? &b->g_E : &b->g_Wy, x, M, b->dx, in);
        }
    }

    return loss;
}

static backend_grads cpu_gradients(const backend_impl *b) {
    return (backend_grads){b->g_dense, &b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
}

static void cpu_clear_gradients(backend_impl *b) {
    row_grads_clear(&b->g_Wy);
    row_grads_clear(&b->g_by);
    if (b->p->E) row_grads_clear(&b->g_E);
}

static float *cpu_dense_grads(backend_impl *b) { return b->g_dense; }

static int cpu_optim_arrays(backend_impl *b, float **arrays, size_t *sizes) {
    const size_t N = (size_t)b->s.n_items, D = b->s.n_dense, H = (size_t)b->H, W = (size_t)b->s.emb_width;
    float *a[8] = {b->acc_dense, b->mom_dense, b->tab.acc[TABLE_WY], b->tab.mom[TABLE_WY], b->tab.acc[TABLE_BY],
                   b->tab.mom[TABLE_BY], b->tab.acc[TABLE_E], b->tab.mom[TABLE_E]};
    const size_t n[8] = {D, D, N * H, N * H, N, N, N * W, N * W};
    for (int k = 0; k < 8; k++) {
        arrays[k] = a[k];
        sizes[k] = a[k] ? n[k] : 0;
    }
    return 8;
}

// The dense Adagrad, of the values LO to HI − 1: with this backend's gradient, or summed
// from the ranks' gradients where they lie (adagrad_dense_sum: the bits of an all-reduce).
static void cpu_update_dense(backend_impl *b, const float *const *parts, int n_parts, size_t lo, size_t hi) {
    CHECK(lo <= hi && hi <= b->s.n_dense, "dense range %zu-%zu of %zu", lo, hi, b->s.n_dense);
    const float lr = b->cfg.learning_rate, mu = b->cfg.momentum;
    float *mom = b->mom_dense ? b->mom_dense + lo : NULL;
    if (n_parts) adagrad_dense_sum(b->p->dense + lo, parts, n_parts, b->acc_dense + lo, mom, hi - lo, lr, mu);
    else adagrad_dense(b->p->dense + lo, b->g_dense + lo, b->acc_dense + lo, mom, hi - lo, lr, mu);
}

// The sparse Adagrad of the given rows of each table.
static void cpu_update_rows(backend_impl *b, const row_grads *const *g) {
    const float lr = b->cfg.learning_rate, mu = b->cfg.momentum;
    float *p[N_TABLES] = {b->p->Wy, b->p->by, b->p->E};
    for (int t = 0; t < N_TABLES; t++)
        if (g[t]) adagrad_rows(p[t], b->tab.acc[t], b->tab.mom[t], g[t], lr, mu);
}

static void cpu_end_step(backend_impl *b, int M) {
    cpu_clear_gradients(b);
    carry_state(b, M);
}

static void cpu_grad_buffers(backend_impl *b, float *dense, float *const *rows) {
    CHECK(b->training && !b->borrowed_grads, "gradient buffers given twice, or to a scoring backend");
    row_grads *g[N_TABLES] = {&b->g_Wy, &b->g_by, b->p->E ? &b->g_E : NULL};
    free(b->g_dense);
    b->g_dense = dense;
    b->borrowed_grads = 1;
    for (int t = 0; t < N_TABLES; t++)
        if (g[t]) {
            free(g[t]->grad);
            g[t]->grad = rows[t];
        }
}

static void cpu_feed(backend_impl *b, int M, const int32_t *x) {
    forward(b, M, x, 0, 0);
    carry_state(b, M);
}

static const float *cpu_score_all(backend_impl *b, int M, const int32_t *x) {
    CHECK(!b->training, "this backend was made for training, not scoring");
    if (!b->scores) b->scores = alloc_f((size_t)b->max_rows * (size_t)b->s.n_items);
    forward(b, M, x, 0, 0);
    carry_state(b, M);
    const int64_t N = b->s.n_items;
    for (int i = 0; i < M; i++) memcpy(b->scores + (size_t)i * N, b->p->by, (size_t)N * sizeof(float));
    gemm(b, CblasNoTrans, CblasTrans, M, (int)N, b->H, b->out[b->L - 1], b->H, b->p->Wy, b->H, 1.0f, b->scores,
         (int)N);
    return b->scores;
}

static void cpu_eval_step(backend_impl *b, int M, const int32_t *x, const int32_t *y, metrics *met, tie_mode ties) {
    const float *scores = cpu_score_all(b, M, x);
    metrics_add_rows(met, scores, M, b->s.n_items, y, ties);
}

static void cpu_move_rows(backend_impl *b, const int32_t *src, int M) {
    lanes_move_rows(b->state, b->state_width, b->L, src, M);
}

// Everything already lives in the host buffers.
static void cpu_sync(backend_impl *b) { (void)b; }

static void cpu_step_items(backend_impl *b, const int32_t *items) { b->step_items = items; }

static const exchange_mem *cpu_exchange_mem(backend_impl *b, comm *c) {
    (void)b, (void)c;
    return NULL;
}

const backend_ops cpu_backend_ops = {
    .name = "cpu",
    .create = cpu_create,
    .create_scorer = cpu_create_scorer,
    .free = cpu_free,
    .states = cpu_states,
    .state_widths = cpu_state_widths,
    .n_states = cpu_n_states,
    .zero_states = cpu_zero_states,
    .move_rows = cpu_move_rows,
    .gradient_step = cpu_gradient_step,
    .gradients = cpu_gradients,
    .clear_gradients = cpu_clear_gradients,
    .dense_grads = cpu_dense_grads,
    .grad_buffers = cpu_grad_buffers,
    .update_dense = cpu_update_dense,
    .update_rows = cpu_update_rows,
    .end_step = cpu_end_step,
    .optim_arrays = cpu_optim_arrays,
    .eval_step = cpu_eval_step,
    .flops = cpu_flops,
    .feed = cpu_feed,
    .score_all = cpu_score_all,
    .sync_to_host = cpu_sync,
    .sync_params_to_host = cpu_sync,
    .sync_to_device = cpu_sync,
    .exchange_mem = cpu_exchange_mem,
    .step_items = cpu_step_items,
};
