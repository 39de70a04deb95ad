#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void adagrad_dense(float *restrict p, const float *restrict g, float *restrict acc, float *restrict v, size_t n,
                   float lr, float mu) {
    if (v && mu > 0) {
        for (size_t i = 0; i < n; i++) {
            float a = acc[i] + g[i] * g[i];
            acc[i] = a;
            v[i] = mu * v[i] - lr * g[i] / sqrtf(a + 1e-6f);
            p[i] += v[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float a = acc[i] + g[i] * g[i];
            acc[i] = a;
            p[i] -= lr * g[i] / sqrtf(a + 1e-6f);
        }
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

void row_grads_clear(row_grads *g) {
    for (int k = 0; k < g->n; k++) g->slot[g->rows[k]] = -1;
    g->n = 0;
}

void adagrad_rows(float *p, float *acc, float *v, const row_grads *g, float lr, float mu) {
    const size_t w = (size_t)g->width;
    for (int k = 0; k < g->n; k++) {
        size_t at = (size_t)g->rows[k] * w;
        adagrad_dense(p + at, g->grad + (size_t)k * w, acc + at, v ? v + at : NULL, w, lr, mu);
    }
}
