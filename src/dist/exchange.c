#include "dist/exchange.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/check.h"
#include "util/clock.h"

// ---- host memory, summed by the MPI comm layer ----
static float *host_alloc(void *ctx, size_t n) {
    (void)ctx;
    return xcalloc_huge((n ? n : 1) * sizeof(float));
}
static void host_release(void *ctx, float *p) {
    (void)ctx;
    free(p);
}
static void host_zero(void *ctx, float *p, size_t n) {
    (void)ctx;
    memset(p, 0, n * sizeof *p);
}
static void host_copy(void *ctx, float *dst, const float *src, size_t n) {
    (void)ctx;
    memcpy(dst, src, n * sizeof *dst);
}
static void host_scatter_rows(void *ctx, float *dst, const int64_t *pos, const float *src, int n, int w) {
    (void)ctx;
    for (int k = 0; k < n; k++) memcpy(dst + (size_t)pos[k] * w, src + (size_t)k * w, (size_t)w * sizeof *dst);
}
// Runs of consecutive positions (or of zero rows) move as one piece: a rank's rows mostly
// come in long runs (the shared negatives, rank 0's block of the union).
static void host_gather_rows(void *ctx, float *dst, const float *src, const int64_t *pos, int n, int w) {
    (void)ctx;
    for (int k = 0; k < n;) {
        int run = 1;
        if (pos[k] >= 0)
            while (k + run < n && pos[k + run] == pos[k] + run) run++;
        else
            while (k + run < n && pos[k + run] < 0) run++;
        const size_t bytes = (size_t)run * w * sizeof *dst;
        if (pos[k] >= 0) memcpy(dst + (size_t)k * w, src + (size_t)pos[k] * w, bytes);
        else memset(dst + (size_t)k * w, 0, bytes);
        k += run;
    }
}
static void host_allreduce(void *ctx, comm *c, float *buf, size_t n) {
    (void)ctx;
    comm_allreduce_sum_f32(c, buf, n);
}
static const exchange_mem host_mem = {NULL,      host_alloc,        host_release,     host_zero,     host_copy, host_copy,
                                      host_copy, host_scatter_rows, host_gather_rows, host_allreduce};

void exchange_init(exchange *x, comm *c, int sparse, size_t n_dense, int64_t n_items, const int *widths,
                   const int *caps, int n_tables, const exchange_mem *mem) {
    memset(x, 0, sizeof *x);
    x->c = c;
    x->sparse = sparse;
    x->n_tables = n_tables;
    x->n_dense = n_dense;
    x->n_items = n_items;
    x->mem = mem ? mem : &host_mem;
    const int P = comm_size(c);
    // Gradients in device memory: the header (host values) goes with the ids, so that the
    // host never reads the device's sums back within a step.
    x->hdr_ids = x->mem != &host_mem ? HDR_N : 0;
    int max_rows = 0;
    int64_t ids = x->hdr_ids + n_tables;
    size_t floats = HDR_N + n_dense;
    for (int t = 0; t < n_tables; t++) {
        x->width[t] = widths[t];
        row_grads_init(&x->u[t], n_items, widths[t], caps[t] * P);
        // The summed gradients: read in place from the fused buffer (sparse), or gathered
        // from the whole table into a buffer of their own in the exchange's memory.
        free(x->u[t].grad);
        x->u[t].grad = x->u_grad[t] = sparse ? NULL : x->mem->alloc(x->mem->ctx, (size_t)caps[t] * P * widths[t]);
        if (caps[t] * P > max_rows) max_rows = caps[t] * P;
        ids += caps[t];
        floats += (size_t)(sparse ? caps[t] * P : n_items) * widths[t];
    }
    x->ids = xmalloc((size_t)ids * sizeof *x->ids);
    x->counts = xmalloc((size_t)P * sizeof *x->counts);
    x->pos = xmalloc((size_t)(max_rows > 0 ? max_rows : 1) * sizeof *x->pos);
    x->fused_cap = floats;
    // Host ranks that share a machine build the buffer in the comm's shared segment, sized
    // here for the largest step (collective), so that the transport is settled now: no
    // buffer of their own unless that segment cannot be had.
    const int shared = x->mem == &host_mem && comm_shared_buffer_f32(c, floats);
    if (!shared) x->fused = x->mem->alloc(x->mem->ctx, floats);
}

void exchange_free(exchange *x) {
    for (int t = 0; t < x->n_tables; t++) {
        if (x->u_grad[t]) x->mem->release(x->mem->ctx, x->u_grad[t]);
        x->u[t].grad = NULL;
        row_grads_free(&x->u[t]);
    }
    free(x->ids);
    free(x->counts);
    free(x->pos);
    if (x->fused) x->mem->release(x->mem->ctx, x->fused);
    memset(x, 0, sizeof *x);
}

void row_union_add(row_grads *u, int t, const int32_t *ids, int n) {
    for (int k = 0; k < n; k++) {
        int32_t id = ids[k];
        if (u->slot[id] >= 0) continue;
        CHECK(u->n < u->cap, "union of table %d exceeds its buffer", t);
        u->slot[id] = u->n;
        u->rows[u->n++] = id;
    }
}

// The union of table T's ids over every rank's block of ALL (counts per rank; a block's
// counts per table start at PRE).
static void build_union(row_grads *u, int t, int n_tables, int pre, const int32_t *all, const int64_t *counts, int P) {
    u->n = 0;
    const int32_t *block = all;
    for (int r = 0; r < P; r++) {
        const int32_t *cnt = block + pre, *rows = cnt + n_tables;
        for (int k = 0; k < t; k++) rows += cnt[k];
        row_union_add(u, t, rows, cnt[t]);
        block += counts[r];
    }
}

// HEADER summed over the ranks' blocks of ALL, in rank order (comm.h's order).
static void sum_headers(float *header, const int32_t *all, const int64_t *counts, int P) {
    float sum[HDR_N] = {0}, h[HDR_N];
    const int32_t *block = all;
    for (int r = 0; r < P; r++) {
        memcpy(h, block, sizeof h);
        for (int k = 0; k < HDR_N; k++) sum[k] = r == 0 ? h[k] : sum[k] + h[k];
        block += counts[r];
    }
    memcpy(header, sum, sizeof sum);
}

void exchange_step(exchange *x, float *header, float *dense, const row_grads *const *g, const row_grads **u_out) {
    double t0 = now_s();
    const int P = comm_size(x->c), T = x->n_tables;
    // 1. Every rank's row ids: [count per table | rows of table 0 | rows of table 1 | …],
    //    behind the header where it travels with them.
    const int pre = x->hdr_ids;
    if (pre) memcpy(x->ids, header, HDR_N * sizeof *header);
    int64_t n_ids = pre + T;
    for (int t = 0; t < T; t++) {
        x->ids[pre + t] = g[t]->n;
        memcpy(x->ids + n_ids, g[t]->rows, (size_t)g[t]->n * sizeof *x->ids);
        n_ids += g[t]->n;
    }
    int64_t *counts = x->counts;
    int32_t *all = NULL;
    double tw = now_s();
    comm_allgatherv_i32(x->c, x->ids, n_ids, &all, counts);
    x->st.wait_seconds += now_s() - tw;
    x->st.bytes_sparse += (uint64_t)(n_ids - pre) * sizeof(int32_t);
    if (pre) sum_headers(header, all, counts, P);
    // 2. One buffer: header, dense gradients, then each table's union rows (or whole table).
    //    On the host with every rank on one machine, the buffer is the comm's shared
    //    segment itself: built in place, summed there, the sums read there.
    const exchange_mem *mem = x->mem;
    size_t at = HDR_N + x->n_dense, table_at[3];
    for (int t = 0; t < T; t++) {
        build_union(&x->u[t], t, T, pre, all, counts, P);
        table_at[t] = at;
        at += (size_t)(x->sparse ? x->u[t].n : x->n_items) * x->width[t];
        if (t == 0) x->st.union_rows += x->u[t].n;
    }
    CHECK(at <= x->fused_cap, "exchange buffer too small");
    float *shared = mem == &host_mem ? comm_shared_buffer_f32(x->c, at) : NULL;
    if (!shared && !x->fused) x->fused = mem->alloc(mem->ctx, x->fused_cap);  // (once: shared memory failed)
    float *f = shared ? shared : x->fused;
    if (!pre) mem->put(mem->ctx, f, header, HDR_N);  // (else zeros there: summed, never read)
    mem->copy(mem->ctx, f + HDR_N, dense, x->n_dense);
    for (int t = 0; t < T; t++) {
        const row_grads *u = &x->u[t];
        const int w = x->width[t];
        if (x->sparse) {  // each union row written once: this rank's gradient row, or zeros
            for (int k = 0; k < u->n; k++) x->pos[k] = -1;
            for (int k = 0; k < g[t]->n; k++) x->pos[u->slot[g[t]->rows[k]]] = k;
            mem->gather_rows(mem->ctx, f + table_at[t], g[t]->grad, x->pos, u->n, w);
        } else {
            mem->zero(mem->ctx, f + table_at[t], (size_t)x->n_items * w);
            for (int k = 0; k < g[t]->n; k++) x->pos[k] = g[t]->rows[k];
            mem->scatter_rows(mem->ctx, f + table_at[t], x->pos, g[t]->grad, g[t]->n, w);
        }
    }
    // (the shared sums are read only: row_grads' pointer is not const, apply_update only reads)
    const double ts = now_s();
    float *sum = shared ? (float *)comm_allreduce_shared_f32(x->c, at) : f;
    if (!shared) mem->allreduce(mem->ctx, x->c, f, at);
    x->st.sum_seconds += now_s() - ts;
    x->st.bytes_dense += (HDR_N + x->n_dense) * sizeof(float);
    x->st.bytes_sparse += (at - HDR_N - x->n_dense) * sizeof(float);
    // 3. Sums back: header and dense in place; the unions' gradients stay in the buffer
    //    (sparse) or are gathered from the whole tables.
    if (!pre) mem->get(mem->ctx, header, sum, HDR_N);
    mem->copy(mem->ctx, dense, sum + HDR_N, x->n_dense);
    for (int t = 0; t < T; t++) {
        row_grads *u = &x->u[t];
        const int w = x->width[t];
        if (x->sparse) {  // the sums are read where they are
            u->grad = sum + table_at[t];
        } else {
            u->grad = x->u_grad[t];
            for (int k = 0; k < u->n; k++) x->pos[k] = u->rows[k];
            mem->gather_rows(mem->ctx, u->grad, sum + table_at[t], x->pos, u->n, w);
        }
        for (int k = 0; k < u->n; k++) u->slot[u->rows[k]] = -1;  // ready for the next step
        u_out[t] = u;
    }
    free(all);
    x->st.steps++;
    x->st.seconds += now_s() - t0;
}

void exchange_stats_reset(exchange_stats *st) { memset(st, 0, sizeof *st); }
