#include "exchange.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void exchange_init(exchange *x, comm *c, int sparse, size_t n_dense, int64_t n_items, const int *widths,
                   const int *caps, int n_tables) {
    memset(x, 0, sizeof *x);
    x->c = c;
    x->sparse = sparse;
    x->n_tables = n_tables;
    x->n_dense = n_dense;
    x->n_items = n_items;
    const int P = comm_size(c);
    int64_t ids = n_tables;
    size_t floats = HDR_N + n_dense;
    for (int t = 0; t < n_tables; t++) {
        x->width[t] = widths[t];
        row_grads_init(&x->u[t], n_items, widths[t], caps[t] * P);
        ids += caps[t];
        floats += (size_t)(sparse ? caps[t] * P : n_items) * widths[t];
    }
    x->ids = xmalloc((size_t)ids * sizeof *x->ids);
    x->counts = xmalloc((size_t)P * sizeof *x->counts);
    x->fused_cap = floats;
    x->fused = xcalloc_huge(floats * sizeof(float));
}

void exchange_free(exchange *x) {
    for (int t = 0; t < x->n_tables; t++) row_grads_free(&x->u[t]);
    free(x->ids);
    free(x->counts);
    free(x->fused);
    memset(x, 0, sizeof *x);
}

// The union of table T's ids over every rank's block of ALL (counts per rank), in order of
// first appearance in rank order: the same order on every rank, built in linear time
// through the accumulator's slot array (no sort; slots are reset in exchange_step).
static void build_union(row_grads *u, int t, int n_tables, const int32_t *all, const int64_t *counts, int P) {
    int n = 0;
    const int32_t *block = all;
    for (int r = 0; r < P; r++) {
        const int32_t *rows = block + n_tables;
        for (int k = 0; k < t; k++) rows += block[k];
        for (int k = 0; k < block[t]; k++) {
            int32_t id = rows[k];
            if (u->slot[id] >= 0) continue;
            CHECK(n < u->cap, "union of table %d exceeds its buffer", t);
            u->slot[id] = n;
            u->rows[n++] = id;
        }
        block += counts[r];
    }
    u->n = n;
}

void exchange_step(exchange *x, float *header, float *dense, const row_grads *const *g, const row_grads **u_out) {
    double t0 = now_s();
    const int P = comm_size(x->c), T = x->n_tables;
    // 1. Every rank's row ids: [count per table | rows of table 0 | rows of table 1 | …].
    int64_t n_ids = T;
    for (int t = 0; t < T; t++) {
        x->ids[t] = g[t]->n;
        memcpy(x->ids + n_ids, g[t]->rows, (size_t)g[t]->n * sizeof *x->ids);
        n_ids += g[t]->n;
    }
    int64_t *counts = x->counts;
    int32_t *all = NULL;
    double tw = now_s();
    comm_allgatherv_i32(x->c, x->ids, n_ids, &all, counts);
    x->wait_seconds += now_s() - tw;
    x->bytes_sparse += (uint64_t)n_ids * sizeof(int32_t);
    // 2. One buffer: header, dense gradients, then each table's union rows (or whole table).
    float *f = x->fused;
    memcpy(f, header, HDR_N * sizeof(float));
    memcpy(f + HDR_N, dense, x->n_dense * sizeof(float));
    size_t at = HDR_N + x->n_dense, table_at[3];
    for (int t = 0; t < T; t++) {
        row_grads *u = &x->u[t];
        const int w = x->width[t];
        build_union(u, t, T, all, counts, P);
        table_at[t] = at;
        size_t len = (size_t)(x->sparse ? u->n : x->n_items) * w;
        CHECK(at + len <= x->fused_cap, "exchange buffer too small");
        memset(f + at, 0, len * sizeof(float));
        for (int k = 0; k < g[t]->n; k++) {
            int64_t pos = x->sparse ? u->slot[g[t]->rows[k]] : g[t]->rows[k];
            memcpy(f + at + (size_t)pos * w, g[t]->grad + (size_t)k * w, (size_t)w * sizeof(float));
        }
        at += len;
        if (t == 0) x->union_rows += u->n;
    }
    comm_allreduce_sum_f32(x->c, f, at);
    x->bytes_dense += (HDR_N + x->n_dense) * sizeof(float);
    x->bytes_sparse += (at - HDR_N - x->n_dense) * sizeof(float);
    // 3. Sums back: header and dense in place, the unions' gradients into their rows.
    memcpy(header, f, HDR_N * sizeof(float));
    memcpy(dense, f + HDR_N, x->n_dense * sizeof(float));
    for (int t = 0; t < T; t++) {
        row_grads *u = &x->u[t];
        const int w = x->width[t];
        if (x->sparse) memcpy(u->grad, f + table_at[t], (size_t)u->n * w * sizeof(float));
        else
            for (int k = 0; k < u->n; k++)
                memcpy(u->grad + (size_t)k * w, f + table_at[t] + (size_t)u->rows[k] * w, (size_t)w * sizeof(float));
        for (int k = 0; k < u->n; k++) u->slot[u->rows[k]] = -1;  // ready for the next step
        u_out[t] = u;
    }
    free(all);
    x->steps++;
    x->seconds += now_s() - t0;
}

void exchange_stats_reset(exchange *x) {
    x->bytes_dense = x->bytes_sparse = 0;
    x->seconds = x->wait_seconds = 0;
    x->union_rows = x->steps = 0;
}
