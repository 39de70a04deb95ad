#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/adagrad_math.h"
#include "util/check.h"

// The update of N values, element by element as adagrad_math.h (shared with the CUDA
// backend). Inlined into the two entry points below, each cloned for AVX-512 / AVX2 /
// baseline and picked at run time: the per-element square root and division vectorise
// and give the same bits in every clone (IEEE-exact operations, no contraction into FMA
// under -std=c11).
static inline __attribute__((always_inline)) void adagrad_kernel(float *restrict p, const float *restrict g,
                                                                 float *restrict acc, float *restrict v, size_t n,
                                                                 float lr, float mu) {
    // (ivdep: the element function's pointers into p, acc, v lose the restrict of these,
    // and the vectoriser would add run-time overlap checks)
    if (v && mu > 0) {
#pragma GCC ivdep
        for (size_t i = 0; i < n; i++) adagrad_elem(&p[i], g[i], &acc[i], &v[i], lr, mu);
    } else {
#pragma GCC ivdep
        for (size_t i = 0; i < n; i++) adagrad_elem_nomom(&p[i], g[i], &acc[i], lr);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void adagrad_dense(float *p, const float *g, float *acc, float *v, size_t n, float lr, float mu) {
    adagrad_kernel(p, g, acc, v, n, lr, mu);
}

enum { SUM_CHUNK = 1024 };  // (a piece of a sum of gradients, summed in L1 right before its update)

// G[0..M) = the sum of the M values at OFF of each of the N arrays SRC (NULL: zeros), in order.
static inline __attribute__((always_inline)) void sum_piece(float *restrict g, const float *const *src, int n,
                                                            size_t off, size_t m) {
    static const float zeros[SUM_CHUNK];
    const float *a = src[0] ? src[0] + off : zeros, *b = src[1] ? src[1] + off : zeros;
    for (size_t j = 0; j < m; j++) g[j] = a[j] + b[j];
    for (int q = 2; q < n; q++) {
        const float *c = src[q] ? src[q] + off : zeros;
        for (size_t j = 0; j < m; j++) g[j] += c[j];
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void adagrad_dense_sum(float *p, const float *const *parts, int n_parts, float *acc, float *v, size_t n, float lr,
                       float mu) {
    CHECK(n_parts >= 2, "a sum of %d parts", n_parts);
    float g[SUM_CHUNK];  // (no buffer of sums to write and read back)
    for (size_t i = 0; i < n; i += SUM_CHUNK) {
        const size_t m = n - i < SUM_CHUNK ? n - i : SUM_CHUNK;
        sum_piece(g, parts, n_parts, i, m);
        adagrad_kernel(p + i, g, acc + i, v ? v + i : NULL, m, lr, mu);
    }
}

void row_grads_init(row_grads *g, int64_t n_items, int width, int cap) {
    memset(g, 0, sizeof *g);
    g->n_items = n_items;
    g->width = width;
    g->cap = cap;
    g->slot = xmalloc((size_t)n_items * sizeof *g->slot);
    memset(g->slot, 0xff, (size_t)n_items * sizeof *g->slot);  // all −1
    g->rows = xmalloc((size_t)cap * sizeof *g->rows);
    g->grad = xmalloc((size_t)cap * width * sizeof *g->grad);
}

void row_grads_free(row_grads *g) {
    free(g->slot);
    free(g->rows);
    free(g->grad);
    memset(g, 0, sizeof *g);
}

float *row_grads_row(row_grads *g, int32_t item) {
    int32_t s = g->slot[item];
    if (s < 0) {
        CHECK(g->n < g->cap, "more touched rows (%d) than the step can have", g->n + 1);
        s = g->slot[item] = g->n++;
        g->rows[s] = item;
        memset(g->grad + (size_t)s * g->width, 0, (size_t)g->width * sizeof *g->grad);
    }
    return g->grad + (size_t)s * g->width;
}

int32_t row_grads_slot(row_grads *g, int32_t item) {
    int32_t s = g->slot[item];
    if (s < 0) {
        CHECK(g->n < g->cap, "more touched rows (%d) than the step can have", g->n + 1);
        s = g->slot[item] = g->n++;
        g->rows[s] = item;
    }
    return s;
}

void row_grads_clear(row_grads *g) {
    for (int k = 0; k < g->n; k++) g->slot[g->rows[k]] = -1;
    g->n = 0;
}

row_grads row_grads_part(const row_grads *g, int part, int parts) {
    row_grads v = *g;
    const int k0 = (int)((int64_t)g->n * part / parts), k1 = (int)((int64_t)g->n * (part + 1) / parts);
    v.rows = g->rows + k0;
    if (g->grad) v.grad = g->grad + (size_t)k0 * g->width;
    if (g->srcs) v.srcs = g->srcs + (size_t)k0 * g->n_srcs;
    v.n = k1 - k0;
    v.cap = v.n;
    return v;
}

// Rows are scattered over tables far larger than the caches, but each row is a contiguous
// 0.4-4 KB that the hardware's stream prefetchers serve. Software prefetches of the next
// rows (prefetchw, 1-4 rows ahead) measured 2.3x slower on this machine class (9 vs
// 21 GB/s, 2,300 rows of 512 in 88 MB tables).
__attribute__((target_clones("avx512f", "avx2", "default")))
void adagrad_rows(float *p, float *acc, float *v, const row_grads *g, float lr, float mu) {
    const size_t w = (size_t)g->width;
    if (g->srcs) {
        CHECK(g->n_srcs >= 2, "a sum of %d parts", g->n_srcs);
        float sum[SUM_CHUNK];
        for (int k = 0; k < g->n; k++) {
            const size_t at = (size_t)g->rows[k] * w;
            for (size_t i = 0; i < w; i += SUM_CHUNK) {
                const size_t m = w - i < SUM_CHUNK ? w - i : SUM_CHUNK;
                sum_piece(sum, g->srcs + (size_t)k * g->n_srcs, g->n_srcs, i, m);
                adagrad_kernel(p + at + i, sum, acc + at + i, v ? v + at + i : NULL, m, lr, mu);
            }
        }
        return;
    }
    for (int k = 0; k < g->n; k++) {
        size_t at = (size_t)g->rows[k] * w;
        adagrad_kernel(p + at, g->grad + (size_t)k * w, acc + at, v ? v + at : NULL, w, lr, mu);
    }
}
