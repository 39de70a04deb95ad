#include "dist/slots.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "util/clock.h"

// A slot's pieces start on 64-byte lines.
static size_t line_up(size_t floats) { return (floats + 15) / 16 * 16; }

// Where a slot keeps its per-table row counts: after the header, in its first line.
static int32_t *slot_counts(const float *slot) { return (int32_t *)(slot + HDR_N); }

int slots_init(slots *sl, comm *c, size_t n_dense, int64_t n_items, const int *widths, const int *caps, int n_tables) {
    memset(sl, 0, sizeof *sl);
    const int P = comm_size(c), me = comm_rank(c);
    sl->c = c;
    sl->n_tables = n_tables;
    sl->n_dense = n_dense;
    size_t f = line_up(HDR_N + 3);  // header, then the row counts
    sl->off_dense = f;
    f = line_up(f + n_dense);
    sl->off_new = f;  // this rank's range of the updated dense values (slots_publish_dense)
    f = line_up(f + n_dense);
    for (int t = 0; t < n_tables; t++) {
        sl->width[t] = widths[t];
        sl->cap[t] = caps[t];
        sl->off_ids[t] = f;
        f = line_up(f + (size_t)caps[t]);
        sl->off_rows[t] = f;
        f = line_up(f + (size_t)caps[t] * widths[t]);
    }
    float *base = comm_node_segment(c, (size_t)P * f * sizeof(float));  // (collective; NULL everywhere if not)
    if (!base) return 0;
    sl->slot = xmalloc((size_t)P * sizeof *sl->slot);
    for (int q = 0; q < P; q++) sl->slot[q] = base + (size_t)q * f;
    for (int t = 0; t < n_tables; t++) {
        row_grads_init(&sl->u[t], n_items, widths[t], caps[t] * P);
        free(sl->u[t].grad);  // (ids only: the gradients stay in the slots)
        sl->u[t].grad = NULL;
        sl->srcs[t] = xmalloc((size_t)caps[t] * P * P * sizeof *sl->srcs[t]);
    }
    sl->dense_at = xmalloc((size_t)(P + 1) * sizeof *sl->dense_at);
    for (int q = 0; q <= P; q++) sl->dense_at[q] = n_dense * (size_t)q / (size_t)P;
    sl->dense_parts = xmalloc((size_t)P * sizeof *sl->dense_parts);
    for (int q = 0; q < P; q++) sl->dense_parts[q] = sl->slot[q] + sl->off_dense + sl->dense_at[me];
    return 1;
}

void slots_free(slots *sl) {
    for (int t = 0; t < sl->n_tables && sl->slot; t++) {
        free(sl->srcs[t]);
        row_grads_free(&sl->u[t]);
    }
    free(sl->slot);
    free(sl->dense_at);
    free(sl->dense_parts);
    memset(sl, 0, sizeof *sl);
}

static float *my_slot(const slots *sl) { return (float *)sl->slot[comm_rank(sl->c)]; }
float *slots_dense(const slots *sl) { return my_slot(sl) + sl->off_dense; }
void slots_rows(const slots *sl, float **rows) {
    for (int t = 0; t < 3; t++) rows[t] = t < sl->n_tables ? my_slot(sl) + sl->off_rows[t] : NULL;
}
size_t slots_dense_lo(const slots *sl) { return sl->dense_at[comm_rank(sl->c)]; }
size_t slots_dense_hi(const slots *sl) { return sl->dense_at[comm_rank(sl->c) + 1]; }
const float *const *slots_dense_parts(const slots *sl) { return sl->dense_parts; }

// This rank's part of union U (table T), with each rank's row of each of its rows.
static void take_part(slots *sl, int t, const row_grads **out) {
    const int P = comm_size(sl->c), me = comm_rank(sl->c), w = sl->width[t];
    row_grads *u = &sl->u[t], *part = &sl->part[t];
    *part = row_grads_part(u, me, P);
    const int k0 = (int)(part->rows - u->rows);
    const float **from = sl->srcs[t];
    for (size_t k = 0; k < (size_t)part->n * P; k++) from[k] = NULL;
    for (int q = 0; q < P; q++) {
        const int32_t *ids = (const int32_t *)(sl->slot[q] + sl->off_ids[t]);
        const int cnt = slot_counts(sl->slot[q])[t];
        for (int k = 0; k < cnt; k++) {
            const int r = u->slot[ids[k]] - k0;
            if (r >= 0 && r < part->n) from[(size_t)r * P + q] = sl->slot[q] + sl->off_rows[t] + (size_t)k * w;
        }
    }
    part->grad = NULL;
    part->srcs = from;
    part->n_srcs = P;
    *out = part;
}

void slots_step(slots *sl, float *header, const row_grads *const *g, const row_grads **part) {
    const double t0 = now_s();
    comm *c = sl->c;
    const int P = comm_size(c), T = sl->n_tables;
    const float **slot = sl->slot;
    float *mine = my_slot(sl);
    int64_t n_ids = T;
    memcpy(mine, header, HDR_N * sizeof *mine);
    for (int t = 0; t < T; t++) {
        CHECK(g[t]->grad == mine + sl->off_rows[t] && g[t]->n <= sl->cap[t],
              "table %d's gradients are not in the exchange's slot", t);
        slot_counts(mine)[t] = g[t]->n;
        memcpy(mine + sl->off_ids[t], g[t]->rows, (size_t)g[t]->n * sizeof *g[t]->rows);
        n_ids += g[t]->n;
    }
    const double tw = now_s();
    comm_node_barrier(c);
    sl->st.wait_seconds += now_s() - tw;
    const double ts = now_s();
    for (int i = 0; i < HDR_N; i++) {  // (rank order, as the all-reduce)
        float h = slot[0][i] + slot[1][i];
        for (int q = 2; q < P; q++) h += slot[q][i];
        header[i] = h;
    }
    size_t union_floats = 0;
    for (int t = 0; t < T; t++) {
        row_grads *u = &sl->u[t];
        u->n = 0;  // the union in rank order of first appearance, as over an all-gather
        for (int q = 0; q < P; q++) {
            const int cnt = slot_counts(slot[q])[t];
            CHECK(cnt >= 0 && cnt <= sl->cap[t], "rank %d published %d rows of table %d", q, cnt, t);
            row_union_add(u, t, (const int32_t *)(slot[q] + sl->off_ids[t]), cnt);
        }
        union_floats += (size_t)u->n * sl->width[t];
        if (t == 0) sl->st.union_rows += u->n;
        take_part(sl, t, &part[t]);
        for (int k = 0; k < u->n; k++) u->slot[u->rows[k]] = -1;  // ready for the next step
    }
    sl->st.sum_seconds += now_s() - ts;
    // (counted as the message exchange sends them: this rank's ids, the unions all-reduced)
    sl->st.bytes_dense += (HDR_N + sl->n_dense) * sizeof(float);
    sl->st.bytes_sparse += (uint64_t)n_ids * sizeof(int32_t) + union_floats * sizeof(float);
    sl->st.steps++;
    sl->st.seconds += now_s() - t0;
}

void slots_publish_dense(slots *sl, const float *dense) {
    const size_t lo = slots_dense_lo(sl), hi = slots_dense_hi(sl);
    memcpy(my_slot(sl) + sl->off_new + lo, dense + lo, (hi - lo) * sizeof *dense);
}

void slots_fetch_dense(slots *sl, float *dense) {
    const int P = comm_size(sl->c), me = comm_rank(sl->c);
    for (int q = 0; q < P; q++)
        if (q != me) {
            const size_t lo = sl->dense_at[q], hi = sl->dense_at[q + 1];
            memcpy(dense + lo, sl->slot[q] + sl->off_new + lo, (hi - lo) * sizeof *dense);
        }
}

void slots_gather_dense(slots *sl, float *a) {
    const int P = comm_size(sl->c);
    const size_t lo = slots_dense_lo(sl), hi = slots_dense_hi(sl);
    CHECK(hi - lo < ((size_t)1 << 31), "a dense range of %zu values is too long to gather", hi - lo);
    int32_t *all = NULL;  // (the floats' bits, moved as they are)
    int64_t *counts = xmalloc((size_t)P * sizeof *counts);
    const int64_t n = comm_allgatherv_i32(sl->c, (const int32_t *)(const void *)(a + lo), (int64_t)(hi - lo), &all, counts);
    CHECK((size_t)n == sl->n_dense, "gathered %lld dense values of %zu", (long long)n, sl->n_dense);
    memcpy(a, all, sl->n_dense * sizeof *a);  // (the ranges are in rank order)
    free(all);
    free(counts);
}
