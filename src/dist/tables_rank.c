// Ranking the targets over sharded item tables (tables_rank_targets, docs/distributed.md
// "Evaluation"): no rank holds every item's row, so every rank scores its own rows for
// every rank's lanes and the ranks add their counts.
//  1. the lanes' top-layer outputs and targets are all-gathered;
//  2. each target's score is computed by its owner and all-reduced (one owner, the others
//     add +0);
//  3. every rank counts, per lane, its items scoring above and equal to the target, and
//     the counts are all-reduced; each rank ranks its own lanes as rank_of does.
// The scores have the replicated scorer's bits: the same product (h·Wyᵀ, added to by)
// over the same lanes of one rank at a time, only over fewer columns; so the metrics are
// the replicated path's exactly (tests/sharded_eval_test.sh).
#include "dist/tables_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sgemm.h"
#include "util/check.h"

enum { RANK_BLOCK = 8192 };  // items scored at once: a few MB of scores per lane block

// C (m × n) = by + h·Wyᵀ for the rows of WY (n × H) and BY: the replicated scorer's product.
static void score(int m, int n, int H, const float *h, const float *wy, const float *by, float *C) {
    for (int i = 0; i < m; i++) memcpy(C + (size_t)i * n, by, (size_t)n * sizeof *C);
    sgemm_rm(CblasNoTrans, CblasTrans, m, n, H, h, H, wy, H, 1.0f, C, n);
}

void tables_rank_targets(tables *tb, int M, const float *h, const int32_t *y, tie_mode ties, double *rank) {
    const model_tensors *own;
    int64_t first, stride, n_own;
    tables_rows_here(tb, &own, &first, &stride, &n_own);
    const int P = comm_size(tb->cm), me = comm_rank(tb->cm), H = tb->s.hid[tb->s.n_layers - 1];
    const int w = H + 1;  // a lane: its output, then its target
    // 1. every rank's lanes
    int32_t *mine = xmalloc(((size_t)M * w + 1) * sizeof *mine), *all;
    for (int i = 0; i < M; i++) {
        memcpy(mine + (size_t)i * w, h + (size_t)i * H, (size_t)H * sizeof *h);
        mine[(size_t)i * w + H] = y[i];
    }
    int64_t *counts = xmalloc((size_t)P * sizeof *counts), *at = xmalloc(((size_t)P + 1) * sizeof *at);
    const int64_t Mt = comm_allgatherv_i32(tb->cm, mine, (int64_t)M * w, &all, counts) / w;
    free(mine);
    float *hs = xmalloc(((size_t)Mt * H + 1) * sizeof *hs);
    int32_t *ys = xmalloc(((size_t)Mt + 1) * sizeof *ys);
    for (int64_t i = 0; i < Mt; i++) {
        memcpy(hs + (size_t)i * H, all + (size_t)i * w, (size_t)H * sizeof *hs);
        ys[i] = all[(size_t)i * w + H];
    }
    free(all);
    at[0] = 0;
    for (int q = 0; q < P; q++) at[q + 1] = at[q] + counts[q] / w;
    // 2. the targets' scores, from the lanes of one rank at a time against the rows owned here
    float *t = xcalloc((size_t)Mt + 1, sizeof *t);
    float *rows = xmalloc(((size_t)Mt * H + 1) * sizeof *rows), *bys = xmalloc(((size_t)Mt + 1) * sizeof *bys);
    int64_t *lane = xmalloc(((size_t)Mt + 1) * sizeof *lane);
    size_t C_n = 0;
    for (int q = 0; q < P; q++) C_n = (size_t)(at[q + 1] - at[q]) > C_n ? (size_t)(at[q + 1] - at[q]) : C_n;
    float *C = xmalloc((C_n * (size_t)(RANK_BLOCK > Mt ? RANK_BLOCK : Mt) + 1) * sizeof *C);
    for (int q = 0; q < P; q++) {
        const int mq = (int)(at[q + 1] - at[q]);
        int nt = 0;
        for (int i = 0; i < mq; i++) {
            const int32_t item = ys[at[q] + i];
            if ((item - first) % stride != 0 || item < first) continue;
            const int64_t r = (item - first) / stride;
            memcpy(rows + (size_t)nt * H, own->Wy + (size_t)r * H, (size_t)H * sizeof *rows);
            bys[nt] = own->by[r];
            lane[nt++] = i;
        }
        if (!nt) continue;
        score(mq, nt, H, hs + (size_t)at[q] * H, rows, bys, C);
        for (int j = 0; j < nt; j++) t[at[q] + lane[j]] = C[(size_t)lane[j] * nt + j];
    }
    comm_allreduce_sum_f32(tb->cm, t, (size_t)Mt);
    free(rows), free(bys), free(lane);
    // 3. the counts over the rows owned here, in blocks of items
    int64_t *ge = xcalloc(2 * (size_t)Mt + 1, sizeof *ge);  // [gt, eq] per lane
    for (int64_t lo = 0; lo < n_own; lo += RANK_BLOCK) {
        const int nb = (int)(n_own - lo < RANK_BLOCK ? n_own - lo : RANK_BLOCK);
        for (int q = 0; q < P; q++) {
            const int mq = (int)(at[q + 1] - at[q]);
            if (!mq) continue;
            score(mq, nb, H, hs + (size_t)at[q] * H, own->Wy + (size_t)lo * H, own->by + lo, C);
            for (int i = 0; i < mq; i++) {
                const int64_t k = at[q] + i;
                if (isnan(t[k])) continue;  // (ranked last, whatever the counts)
                int64_t g, e;
                metrics_count_gt_eq(C + (size_t)i * nb, nb, t[k], &g, &e);
                ge[2 * k] += g, ge[2 * k + 1] += e;
            }
        }
    }
    comm_allreduce_sum_i64(tb->cm, ge, 2 * (size_t)Mt);
    for (int i = 0; i < M; i++) {
        const int64_t k = at[me] + i;
        rank[i] = rank_from_counts(ge[2 * k], ge[2 * k + 1], tb->s.n_items, isnan(t[k]), ties);
    }
    free(ge), free(C), free(t), free(hs), free(ys), free(counts), free(at);
}
