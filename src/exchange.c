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
    x->n_dense = n_dense;
    x->n_items = n_items;
    x->fused = xmalloc((HDR_N + n_dense) * sizeof(float));
    const int P = comm_size(c);
    int max_w = 1;
    for (int t = 0; t < n_tables; t++) {
        row_grads_init(&x->u[t], n_items, widths[t], caps[t] * P);
        if (widths[t] > max_w) max_w = widths[t];
    }
    if (!sparse) x->full = xcalloc_huge((size_t)n_items * max_w * sizeof(float));
}

void exchange_free(exchange *x) {
    free(x->fused);
    for (int t = 0; t < 3; t++)
        if (x->u[t].slot) row_grads_free(&x->u[t]);
    free(x->full);
    memset(x, 0, sizeof *x);
}

void exchange_dense(exchange *x, float *header, float *dense) {
    double t0 = now_s();
    memcpy(x->fused, header, HDR_N * sizeof(float));
    memcpy(x->fused + HDR_N, dense, x->n_dense * sizeof(float));
    comm_allreduce_sum_f32(x->c, x->fused, HDR_N + x->n_dense);
    memcpy(header, x->fused, HDR_N * sizeof(float));
    memcpy(dense, x->fused + HDR_N, x->n_dense * sizeof(float));
    x->bytes_dense += (HDR_N + x->n_dense) * sizeof(float);
    x->seconds += now_s() - t0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

const row_grads *exchange_rows(exchange *x, int t, const row_grads *g) {
    double t0 = now_s();
    row_grads *u = &x->u[t];
    const int P = comm_size(x->c), w = g->width;
    int64_t *counts = xmalloc((size_t)P * sizeof *counts);
    int32_t *all = NULL;
    int64_t total = comm_allgatherv_i32(x->c, g->rows, g->n, &all, counts);
    x->bytes_sparse += (uint64_t)g->n * sizeof(int32_t);
    // The same sorted union on every rank.
    qsort(all, (size_t)total, sizeof *all, cmp_i32);
    int n = 0;
    for (int64_t k = 0; k < total; k++)
        if (n == 0 || all[k] != u->rows[n - 1]) {
            CHECK(n < u->cap, "union of %d rows exceeds its buffer", n + 1);
            u->rows[n++] = all[k];
        }
    u->n = n;
    if (x->sparse) {
        memset(u->grad, 0, (size_t)n * w * sizeof(float));
        for (int k = 0; k < g->n; k++) {
            const int32_t *at = bsearch(&g->rows[k], u->rows, (size_t)n, sizeof *u->rows, cmp_i32);
            memcpy(u->grad + (size_t)(at - u->rows) * w, g->grad + (size_t)k * w, (size_t)w * sizeof(float));
        }
        comm_allreduce_sum_f32(x->c, u->grad, (size_t)n * w);
        x->bytes_sparse += (uint64_t)n * w * sizeof(float);
    } else {  // the baseline: whole tables
        memset(x->full, 0, (size_t)x->n_items * w * sizeof(float));
        for (int k = 0; k < g->n; k++)
            memcpy(x->full + (size_t)g->rows[k] * w, g->grad + (size_t)k * w, (size_t)w * sizeof(float));
        comm_allreduce_sum_f32(x->c, x->full, (size_t)x->n_items * w);
        x->bytes_sparse += (uint64_t)x->n_items * w * sizeof(float);
        for (int k = 0; k < n; k++)
            memcpy(u->grad + (size_t)k * w, x->full + (size_t)u->rows[k] * w, (size_t)w * sizeof(float));
    }
    free(all);
    free(counts);
    if (t == 0) x->union_rows += n;
    x->seconds += now_s() - t0;
    return u;
}

void exchange_stats_reset(exchange *x) {
    x->bytes_dense = x->bytes_sparse = 0;
    x->seconds = 0;
    x->union_rows = x->steps = 0;
}
