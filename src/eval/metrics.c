// Exact ranking evaluation over all items (see metrics.h).
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

// Sorts v[0..n-1] ascending and removes duplicates; returns the new count.
static int sort_unique(int *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

void metrics_init(metrics *m, const int *cutoffs, int n_cutoffs) {
    CHECK(n_cutoffs >= 1 && n_cutoffs <= METRICS_MAX_CUTOFFS,
          "metrics_init: %d cutoffs (must be 1..%d)", n_cutoffs, (int)METRICS_MAX_CUTOFFS);
    memset(m, 0, sizeof *m);
    for (int i = 0; i < n_cutoffs; i++) {
        CHECK(cutoffs[i] >= 1, "metrics_init: cutoff %d (must be >= 1)", cutoffs[i]);
        m->cutoffs[i] = cutoffs[i];
    }
    m->n_cutoffs = sort_unique(m->cutoffs, n_cutoffs);
}

enum { CUTOFF_MAX_VALUE = 1000000000 };

int metrics_parse_cutoffs(const char *s, int *cutoffs, int max) {
    if (!s || !*s || max < 1) return 0;
    int n = 0;
    const char *p = s;
    for (;;) {
        if (*p < '0' || *p > '9') return 0;  // empty item, sign, space, junk
        long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            if (v > CUTOFF_MAX_VALUE) return 0;
        }
        if (v < 1 || n == max) return 0;
        cutoffs[n++] = (int)v;
        if (*p == '\0') break;
        if (*p++ != ',') return 0;
    }
    return sort_unique(cutoffs, n);
}

int tie_mode_parse(const char *s, tie_mode *out) {
    if (!s) return 0;
    if (strcmp(s, "conservative") == 0) *out = TIES_CONSERVATIVE;
    else if (strcmp(s, "standard") == 0) *out = TIES_STANDARD;
    else if (strcmp(s, "median") == 0) *out = TIES_MEDIAN;
    else return 0;
    return 1;
}

const char *tie_mode_name(tie_mode t) {
    switch (t) {
    case TIES_CONSERVATIVE: return "conservative";
    case TIES_STANDARD: return "standard";
    case TIES_MEDIAN: return "median";
    }
    return "?";
}

// #(s > t) and #(s == t) over s[0..N-1] in one pass. The inner loops have fixed trip
// counts and no branches, so the compiler vectorises them even at -O2 (GCC's very-cheap
// cost model wants no epilogue): big blocks keep the vector counters in registers (one
// horizontal sum per 1024 items), small blocks and a scalar loop take the rest. NaNs
// compare false both ways and count nowhere.
enum { RANK_BIG = 1024, RANK_SMALL = 32 };

#define COUNT_BLOCK(BLOCK)                                   \
    for (; i + (BLOCK) <= N; i += (BLOCK)) {                 \
        const float *b = s + i;                              \
        uint32_t bg = 0, be = 0;                             \
        for (int j = 0; j < (BLOCK); j++) {                  \
            bg += (uint32_t)(b[j] > t);                      \
            be += (uint32_t)(b[j] == t);                     \
        }                                                    \
        g += bg;                                             \
        e += be;                                             \
    }

void metrics_count_gt_eq(const float *restrict s, int64_t N, float t, int64_t *gt, int64_t *eq) {
    int64_t g = 0, e = 0, i = 0;
    COUNT_BLOCK(RANK_BIG)
    COUNT_BLOCK(RANK_SMALL)
    for (; i < N; i++) {
        g += s[i] > t;
        e += s[i] == t;
    }
    *gt = g;
    *eq = e;
}

double rank_from_counts(int64_t gt, int64_t eq, int64_t N, int target_nan, tie_mode ties) {
    if (target_nan) return (double)N;
    switch (ties) {
    case TIES_CONSERVATIVE: return (double)(gt + eq);
    case TIES_STANDARD: return (double)(gt + 1);
    case TIES_MEDIAN: return (double)gt + 0.5 * (double)(eq - 1) + 1.0;
    }
    CHECK(0, "rank_from_counts: unknown tie mode %d", (int)ties);
    return 0;
}

double rank_of(const float *scores, int64_t N, int32_t target, tie_mode ties) {
    CHECK(target >= 0 && (int64_t)target < N, "rank_of: target %d outside 0..%lld",
          (int)target, (long long)N - 1);
    float t = scores[target];
    if (isnan(t)) return (double)N;
    int64_t gt, eq;
    metrics_count_gt_eq(scores, N, t, &gt, &eq);  // eq >= 1: the target itself
    return rank_from_counts(gt, eq, N, 0, ties);
}

void metrics_add_rank(metrics *m, double rank) {
    double inv = 1.0 / rank, gain = 1.0 / log2(rank + 1.0);
    for (int c = 0; c < m->n_cutoffs; c++) {
        if (rank <= (double)m->cutoffs[c]) {
            m->hits[c] += 1.0;
            m->rr[c] += inv;
            m->dcg[c] += gain;
        }
    }
    m->n++;
}

void metrics_add_rows(metrics *m, const float *scores, int M, int64_t N, const int32_t *targets,
                      tie_mode ties) {
    CHECK(M >= 0 && N >= 1, "metrics_add_rows: %d rows x %lld items", M, (long long)N);
    for (int r = 0; r < M; r++) metrics_add_rank(m, rank_of(scores + (size_t)r * (size_t)N, N, targets[r], ties));
}

void metrics_merge(metrics *into, const metrics *from) {
    CHECK(into->n_cutoffs == from->n_cutoffs &&
              memcmp(into->cutoffs, from->cutoffs, (size_t)into->n_cutoffs * sizeof(int)) == 0,
          "metrics_merge: different cutoffs");
    for (int c = 0; c < into->n_cutoffs; c++) {
        into->hits[c] += from->hits[c];
        into->rr[c] += from->rr[c];
        into->dcg[c] += from->dcg[c];
    }
    into->n += from->n;
}

static void check_index(const metrics *m, int k_index) {
    CHECK(k_index >= 0 && k_index < m->n_cutoffs, "metrics: cutoff index %d outside 0..%d",
          k_index, m->n_cutoffs - 1);
}

double metrics_recall(const metrics *m, int k_index) {
    check_index(m, k_index);
    return m->n > 0 ? m->hits[k_index] / (double)m->n : 0.0;
}

double metrics_mrr(const metrics *m, int k_index) {
    check_index(m, k_index);
    return m->n > 0 ? m->rr[k_index] / (double)m->n : 0.0;
}

double metrics_ndcg(const metrics *m, int k_index) {
    check_index(m, k_index);
    return m->n > 0 ? m->dcg[k_index] / (double)m->n : 0.0;
}
