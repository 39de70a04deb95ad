// Unit tests: src/eval/metrics.{h,c} (ranks with ties, Recall@K, MRR@K, NDCG@K, merging,
// parsing). Expected values are worked out by hand in the comments, or come from
// tests/reference/ndcg_ref.txt (a sort-based Python reference, ndcg_ref.py).
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"
#include "data/rng.h"

static const tie_mode MODES[3] = {TIES_CONSERVATIVE, TIES_STANDARD, TIES_MEDIAN};

// ---- rank_of --------------------------------------------------------------------------

Test(rank, ties_by_hand) {
    const float s[4] = {0.5f, 0.9f, 0.5f, 0.1f};
    // target 0 (0.5): one item above (0.9), two equal (itself and item 2).
    //   standard 1 + 1 = 2; conservative #(>=) = 3; median 1 + 0.5 * (2 - 1) + 1 = 2.5
    cr_assert_eq(rank_of(s, 4, 0, TIES_STANDARD), 2.0);
    cr_assert_eq(rank_of(s, 4, 0, TIES_CONSERVATIVE), 3.0);
    cr_assert_eq(rank_of(s, 4, 0, TIES_MEDIAN), 2.5);
    // target 2 is the same score: the same ranks.
    cr_assert_eq(rank_of(s, 4, 2, TIES_STANDARD), 2.0);
    cr_assert_eq(rank_of(s, 4, 2, TIES_CONSERVATIVE), 3.0);
    cr_assert_eq(rank_of(s, 4, 2, TIES_MEDIAN), 2.5);
    // target 1 (0.9) is the unique best: 1 in every mode.
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(s, 4, 1, MODES[m]), 1.0);
    // target 3 (0.1) is the unique worst: 4 in every mode.
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(s, 4, 3, MODES[m]), 4.0);
}

Test(rank, all_equal) {
    const float s[4] = {1, 1, 1, 1};
    // 0 above, 4 equal: standard 1; conservative 4; median 0 + 0.5 * 3 + 1 = 2.5
    cr_assert_eq(rank_of(s, 4, 2, TIES_STANDARD), 1.0);
    cr_assert_eq(rank_of(s, 4, 2, TIES_CONSERVATIVE), 4.0);
    cr_assert_eq(rank_of(s, 4, 2, TIES_MEDIAN), 2.5);
}

Test(rank, single_item) {
    const float s[1] = {-3};
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(s, 1, 0, MODES[m]), 1.0);
}

Test(rank, nan_handling) {
    const float nan = NAN;
    // Other items' NaNs never count: target 1 (0.3) is first in every mode.
    const float a[3] = {nan, 0.3f, 0.2f};
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(a, 3, 1, MODES[m]), 1.0);
    // Target 2 (0.2): only 0.3 above -> 2 in every mode.
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(a, 3, 2, MODES[m]), 2.0);
    // A NaN target ranks last: N = 3.
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(a, 3, 0, MODES[m]), 3.0);
    // All NaN: still N.
    const float b[5] = {nan, nan, nan, nan, nan};
    for (int m = 0; m < 5; m++) cr_assert_eq(rank_of(b, 5, m, TIES_CONSERVATIVE), 5.0);
}

Test(rank, infinities) {
    const float inf = INFINITY;
    const float s[4] = {inf, 0, inf, -inf};
    // target 0 (+inf): 0 above, 2 equal -> standard 1, conservative 2, median 1.5
    cr_assert_eq(rank_of(s, 4, 0, TIES_STANDARD), 1.0);
    cr_assert_eq(rank_of(s, 4, 0, TIES_CONSERVATIVE), 2.0);
    cr_assert_eq(rank_of(s, 4, 0, TIES_MEDIAN), 1.5);
    // target 3 (-inf): 3 above -> 4
    for (int m = 0; m < 3; m++) cr_assert_eq(rank_of(s, 4, 3, MODES[m]), 4.0);
}

static double naive_rank(const float *s, int64_t N, int32_t target, tie_mode ties) {
    float t = s[target];
    if (isnan(t)) return (double)N;
    int64_t gt = 0, eq = 0;
    for (int64_t i = 0; i < N; i++) {
        if (s[i] > t) gt++;
        else if (s[i] == t) eq++;
    }
    switch (ties) {
    case TIES_STANDARD: return (double)gt + 1;
    case TIES_CONSERVATIVE: return (double)(gt + eq);
    case TIES_MEDIAN: return (double)gt + 0.5 * (double)(eq - 1) + 1;
    }
    return -1;
}

// The vectorised block loops (1024 and 32 items) and the scalar tail against a plain
// loop: sizes around both block sizes, the real item count (43,097), many ties (scores
// quantised) and some NaNs.
Test(rank, matches_naive_loop) {
    const int64_t sizes[] = {1, 2, 31, 32, 33, 63, 64, 65, 1000, 1023, 1024, 1025, 1087, 43097};
    const int64_t maxn = 43097;
    float *s = malloc((size_t)maxn * sizeof *s);
    uint64_t ctr = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        int64_t N = sizes[z];
        for (int rep = 0; rep < 20; rep++) {
            for (int64_t i = 0; i < N; i++) {
                float u = rng_uniform(11, 0, ctr++);
                s[i] = floorf(u * 50) / 50;  // 50 distinct values: plenty of ties
                if (rng_uniform(12, 0, ctr) < 0.01f) s[i] = NAN;
            }
            int32_t target = (int32_t)(rng_uniform(13, 0, ctr++) * (float)N);
            for (int m = 0; m < 3; m++) {
                double got = rank_of(s, N, target, MODES[m]);
                double want = naive_rank(s, N, target, MODES[m]);
                cr_assert_eq(got, want, "N=%lld target=%d mode=%d: %g vs %g", (long long)N,
                             (int)target, m, got, want);
            }
        }
    }
    free(s);
}

Test(rank, rejects_bad_target, .exit_code = 1) {
    const float s[2] = {0, 1};
    rank_of(s, 2, 2, TIES_STANDARD);
}

// ---- Recall / MRR -----------------------------------------------------------------------

static int near(double a, double b) { return fabs(a - b) <= 1e-12; }

Test(metrics, recall_mrr_by_hand) {
    // Three rows over the same 6 scores; standard ranks: target 5 -> 1, target 3 -> 3
    // (0.5 and 0.6 above), target 0 -> 6.
    const float row[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    float s[18];
    for (int r = 0; r < 3; r++) memcpy(s + 6 * r, row, sizeof row);
    const int32_t targets[3] = {5, 3, 0};
    const int cut[2] = {1, 5};
    metrics m;
    metrics_init(&m, cut, 2);
    metrics_add_rows(&m, s, 3, 6, targets, TIES_STANDARD);
    cr_assert_eq(m.n, 3);
    // @1: only the rank-1 row: recall 1/3, MRR 1/3, NDCG 1/log2(2) / 3 = 1/3.
    cr_assert_eq(m.hits[0], 1.0);
    cr_assert(near(metrics_recall(&m, 0), 1.0 / 3));
    cr_assert(near(metrics_mrr(&m, 0), 1.0 / 3));
    cr_assert(near(metrics_ndcg(&m, 0), 1.0 / 3));
    // @5: ranks 1 and 3: recall 2/3, MRR (1 + 1/3) / 3 = 4/9,
    // NDCG (1/log2(2) + 1/log2(4)) / 3 = (1 + 1/2) / 3 = 1/2.
    cr_assert_eq(m.hits[1], 2.0);
    cr_assert(near(metrics_recall(&m, 1), 2.0 / 3));
    cr_assert(near(metrics_mrr(&m, 1), 4.0 / 9));
    cr_assert(near(metrics_ndcg(&m, 1), 0.5));
}

Test(metrics, tie_modes_against_cutoffs) {
    // [0.5, 0.9, 0.5, 0.1], target 0: standard 2, conservative 3, median 2.5.
    const float s[4] = {0.5f, 0.9f, 0.5f, 0.1f};
    const int32_t target[1] = {0};
    const int cut[3] = {2, 3, 4};
    metrics st, co, me;
    metrics_init(&st, cut, 3);
    metrics_init(&co, cut, 3);
    metrics_init(&me, cut, 3);
    metrics_add_rows(&st, s, 1, 4, target, TIES_STANDARD);
    metrics_add_rows(&co, s, 1, 4, target, TIES_CONSERVATIVE);
    metrics_add_rows(&me, s, 1, 4, target, TIES_MEDIAN);
    // standard (2): hit at 2, 3, 4; rr 1/2; dcg 1/log2(3) = 0.63092975357145743.
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(st.hits[c], 1.0);
        cr_assert(near(st.rr[c], 0.5));
        cr_assert(near(st.dcg[c], 0.63092975357145743));
    }
    // conservative (3): miss at 2; hit at 3, 4; rr 1/3; dcg 1/log2(4) = 1/2.
    cr_assert_eq(co.hits[0], 0.0);
    cr_assert_eq(co.rr[0], 0.0);
    cr_assert_eq(co.dcg[0], 0.0);
    cr_assert_eq(co.hits[1], 1.0);
    cr_assert(near(co.rr[1], 1.0 / 3));
    cr_assert(near(metrics_ndcg(&co, 1), 0.5));
    // median (2.5): miss at 2; hit at 3, 4; rr 1/2.5 = 0.4; dcg 1/log2(3.5) = 0.55329475566511220.
    cr_assert_eq(me.hits[0], 0.0);
    cr_assert_eq(me.dcg[0], 0.0);
    cr_assert_eq(me.hits[1], 1.0);
    cr_assert_eq(me.hits[2], 1.0);
    cr_assert(near(me.rr[1], 0.4));
    cr_assert(near(metrics_mrr(&me, 2), 0.4));
    cr_assert(near(metrics_ndcg(&me, 2), 0.55329475566511220));
}

Test(metrics, nan_rows) {
    // Row 0: NaN target -> rank 4 (last). Row 1: NaN elsewhere, target best -> rank 1.
    const float nan = NAN;
    const float s[8] = {nan, 0.1f, 0.2f, 0.3f, /**/ nan, 0.9f, nan, 0.2f};
    const int32_t targets[2] = {0, 1};
    const int cut[2] = {1, 4};
    metrics m;
    metrics_init(&m, cut, 2);
    metrics_add_rows(&m, s, 2, 4, targets, TIES_CONSERVATIVE);
    cr_assert_eq(m.hits[0], 1.0);  // row 1
    cr_assert_eq(m.hits[1], 2.0);  // both
    cr_assert(near(m.rr[1], 1.0 + 0.25));
}

Test(metrics, empty_is_zero) {
    const int cut[1] = {20};
    metrics m;
    metrics_init(&m, cut, 1);
    metrics_add_rows(&m, NULL, 0, 10, NULL, TIES_STANDARD);
    cr_assert_eq(m.n, 0);
    cr_assert_eq(metrics_recall(&m, 0), 0.0);
    cr_assert_eq(metrics_mrr(&m, 0), 0.0);
    cr_assert_eq(metrics_ndcg(&m, 0), 0.0);
}

Test(metrics, init_sorts_and_dedups) {
    const int cut[5] = {20, 1, 10, 5, 10};
    metrics m;
    metrics_init(&m, cut, 5);
    cr_assert_eq(m.n_cutoffs, 4);
    const int want[4] = {1, 5, 10, 20};
    cr_assert_arr_eq(m.cutoffs, want, sizeof want);
    for (int c = 0; c < 4; c++) cr_assert(m.hits[c] == 0 && m.rr[c] == 0 && m.dcg[c] == 0);
    cr_assert_eq(m.n, 0);
}

Test(metrics, init_rejects_zero_cutoff, .exit_code = 1) {
    const int cut[2] = {0, 5};
    metrics m;
    metrics_init(&m, cut, 2);
}

Test(metrics, init_rejects_too_many, .exit_code = 1) {
    int cut[METRICS_MAX_CUTOFFS + 1];
    for (int i = 0; i <= METRICS_MAX_CUTOFFS; i++) cut[i] = i + 1;
    metrics m;
    metrics_init(&m, cut, METRICS_MAX_CUTOFFS + 1);
}

Test(metrics, recall_rejects_bad_index, .exit_code = 1) {
    const int cut[1] = {20};
    metrics m;
    metrics_init(&m, cut, 1);
    metrics_recall(&m, 1);
}

// Summing per-shard metrics equals one pass over all rows (hits, n exactly; rr to rounding).
Test(metrics, merge_equals_single_pass) {
    const int M = 300;
    const int64_t N = 777;
    float *s = malloc((size_t)M * (size_t)N * sizeof *s);
    int32_t *targets = malloc((size_t)M * sizeof *targets);
    for (int64_t i = 0; i < M * N; i++) s[i] = floorf(rng_uniform(3, 0, (uint64_t)i) * 100);
    for (int r = 0; r < M; r++) targets[r] = (int32_t)(rng_uniform(4, 0, (uint64_t)r) * (float)N);
    const int cut[4] = {1, 5, 10, 20};
    for (int mode = 0; mode < 3; mode++) {
        metrics all, a, b, c;
        metrics_init(&all, cut, 4);
        metrics_init(&a, cut, 4);
        metrics_init(&b, cut, 4);
        metrics_init(&c, cut, 4);
        metrics_add_rows(&all, s, M, N, targets, MODES[mode]);
        metrics_add_rows(&a, s, 100, N, targets, MODES[mode]);
        metrics_add_rows(&b, s + 100 * N, 150, N, targets + 100, MODES[mode]);
        metrics_add_rows(&c, s + 250 * N, 50, N, targets + 250, MODES[mode]);
        metrics_merge(&a, &b);
        metrics_merge(&a, &c);
        cr_assert_eq(a.n, all.n);
        cr_assert_eq(a.n, M);
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(a.hits[k], all.hits[k]);
            cr_assert(fabs(a.rr[k] - all.rr[k]) <= 1e-12 * all.rr[k], "rr %g vs %g", a.rr[k],
                      all.rr[k]);
            cr_assert(fabs(a.dcg[k] - all.dcg[k]) <= 1e-12 * all.dcg[k], "dcg %g vs %g", a.dcg[k],
                      all.dcg[k]);
        }
        // Sanity: the sums are not trivially zero for every cutoff.
        cr_assert(all.hits[3] > 0);
    }
    free(targets);
    free(s);
}

Test(metrics, merge_rejects_different_cutoffs, .exit_code = 1) {
    const int c1[2] = {1, 5}, c2[2] = {1, 10};
    metrics a, b;
    metrics_init(&a, c1, 2);
    metrics_init(&b, c2, 2);
    metrics_merge(&a, &b);
}

// ---- against the sort-based reference ---------------------------------------------------

// tests/reference/ndcg_ref.txt (ndcg_ref.py): random rows with many ties and some NaNs,
// ranked by SORTING each row in Python; every mode's rank must match rank_of exactly and
// every Recall@K / MRR@K / NDCG@K the C sums to rounding.
typedef struct {
    char name[16];
    int N, M, n_cutoffs;
    int cutoffs[METRICS_MAX_CUTOFFS];
    float *scores;  // M x N
    int32_t *targets;
} ref_case;

static const ref_case *find_case(const ref_case *cases, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(cases[i].name, name) == 0) return &cases[i];
    cr_assert_fail("unknown case %s", name);
    return NULL;
}

Test(metrics, sort_reference_all_tie_modes) {
    const char *path = GRUREC_TESTS_DIR "/reference/ndcg_ref.txt";
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    enum { MAX_CASES = 8 };
    ref_case cases[MAX_CASES];
    int n_cases = 0, n_ranks = 0, n_values = 0, n_hits = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *p = line;
        if (*p == '#' || *p == '\n') continue;
        if (strncmp(p, "case ", 5) == 0) {
            cr_assert_lt(n_cases, MAX_CASES);
            ref_case *c = &cases[n_cases++];
            cr_assert_eq(sscanf(p, "case %15s %d %d", c->name, &c->N, &c->M), 3);
            cr_assert(getline(&line, &cap, f) > 0 && strncmp(line, "cutoffs ", 8) == 0);
            p = line + 8;
            for (c->n_cutoffs = 0; c->n_cutoffs < METRICS_MAX_CUTOFFS && *p && *p != '\n'; c->n_cutoffs++)
                c->cutoffs[c->n_cutoffs] = (int)strtol(p, &p, 10);
            c->scores = malloc((size_t)c->M * (size_t)c->N * sizeof *c->scores);
            c->targets = malloc((size_t)c->M * sizeof *c->targets);
            for (int r = 0; r < c->M; r++) {
                cr_assert(getline(&line, &cap, f) > 0 && strncmp(line, "row ", 4) == 0);
                p = line + 4;
                c->targets[r] = (int32_t)strtol(p, &p, 10);
                for (int i = 0; i < c->N; i++) c->scores[(size_t)r * (size_t)c->N + (size_t)i] = strtof(p, &p);
            }
            continue;
        }
        char name[16], mode_name[16];
        int used;
        tie_mode mode;
        if (strncmp(p, "ranks ", 6) == 0) {
            cr_assert_eq(sscanf(p, "ranks %15s %15s %n", name, mode_name, &used), 2);
            cr_assert(tie_mode_parse(mode_name, &mode));
            const ref_case *c = find_case(cases, n_cases, name);
            p += used;
            for (int r = 0; r < c->M; r++) {
                double want = strtod(p, &p);
                double got = rank_of(c->scores + (size_t)r * (size_t)c->N, c->N, c->targets[r], mode);
                cr_expect_eq(got, want, "case %s %s row %d: rank %g, the sort says %g", name, mode_name, r, got, want);
                n_ranks++;
            }
            continue;
        }
        int k;
        double recall, mrr, ndcg;
        cr_assert_eq(sscanf(p, "value %15s %15s %d %lf %lf %lf", name, mode_name, &k, &recall, &mrr, &ndcg), 6,
                     "bad line: %s", p);
        cr_assert(tie_mode_parse(mode_name, &mode));
        const ref_case *c = find_case(cases, n_cases, name);
        metrics m;
        metrics_init(&m, c->cutoffs, c->n_cutoffs);
        metrics_add_rows(&m, c->scores, c->M, c->N, c->targets, mode);
        int at = -1;
        for (int i = 0; i < m.n_cutoffs; i++)
            if (m.cutoffs[i] == k) at = i;
        cr_assert_geq(at, 0, "cutoff %d not in case %s", k, name);
        cr_expect_eq(m.n, c->M);
        cr_expect_eq(metrics_recall(&m, at), recall, "case %s %s @%d: recall %.17g, want %.17g", name, mode_name, k,
                     metrics_recall(&m, at), recall);
        cr_expect(fabs(metrics_mrr(&m, at) - mrr) <= 1e-12, "case %s %s @%d: MRR %.17g, want %.17g", name, mode_name,
                  k, metrics_mrr(&m, at), mrr);
        cr_expect(fabs(metrics_ndcg(&m, at) - ndcg) <= 1e-12, "case %s %s @%d: NDCG %.17g, want %.17g", name,
                  mode_name, k, metrics_ndcg(&m, at), ndcg);
        n_hits += recall > 0;
        n_values++;
    }
    free(line);
    fclose(f);
    for (int i = 0; i < n_cases; i++) {
        free(cases[i].scores);
        free(cases[i].targets);
    }
    // 6 cases; ranks for 3 modes of 3+4+25+30+30+20 rows; a value per mode per cutoff.
    cr_assert_eq(n_cases, 6, "truncated %s?", path);
    cr_assert_eq(n_ranks, 3 * (3 + 4 + 25 + 30 + 30 + 20));
    cr_assert_eq(n_values, 3 * (2 + 4 + 5 + 6 + 7 + 7));
    cr_assert_gt(n_hits, n_values / 2, "most values should be non-zero");
}

// ---- parsing ----------------------------------------------------------------------------

Test(parse, cutoffs_ok) {
    int c[METRICS_MAX_CUTOFFS];
    cr_assert_eq(metrics_parse_cutoffs("1,5,10,20", c, METRICS_MAX_CUTOFFS), 4);
    const int want[4] = {1, 5, 10, 20};
    cr_assert_arr_eq(c, want, sizeof want);
    cr_assert_eq(metrics_parse_cutoffs("20", c, METRICS_MAX_CUTOFFS), 1);
    cr_assert_eq(c[0], 20);
    // Sorted and deduplicated.
    cr_assert_eq(metrics_parse_cutoffs("20,1,5,5,1", c, METRICS_MAX_CUTOFFS), 3);
    const int want2[3] = {1, 5, 20};
    cr_assert_arr_eq(c, want2, sizeof want2);
    cr_assert_eq(metrics_parse_cutoffs("007", c, 1), 1);
    cr_assert_eq(c[0], 7);
    cr_assert_eq(metrics_parse_cutoffs("1000000000", c, 1), 1);
}

Test(parse, cutoffs_errors) {
    int c[4];
    const char *bad[] = {"",     ",",      "1,",  ",1",    "1,,2", "0",   "1,0",
                         "-1",   "+1",     " 1",  "1 ",    "1, 2", "a",   "5x",
                         "1.5",  "1;2",    "1000000001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(metrics_parse_cutoffs(bad[i], c, 4), 0, "\"%s\" accepted", bad[i]);
    cr_assert_eq(metrics_parse_cutoffs(NULL, c, 4), 0);
    cr_assert_eq(metrics_parse_cutoffs("1,2,3,4,5", c, 4), 0);  // more than max
    cr_assert_eq(metrics_parse_cutoffs("1,2,3,4", c, 4), 4);
    cr_assert_eq(metrics_parse_cutoffs("1", c, 0), 0);
}

Test(parse, tie_modes) {
    tie_mode t = TIES_STANDARD;
    cr_assert_eq(tie_mode_parse("conservative", &t), 1);
    cr_assert_eq(t, TIES_CONSERVATIVE);
    cr_assert_eq(tie_mode_parse("standard", &t), 1);
    cr_assert_eq(t, TIES_STANDARD);
    cr_assert_eq(tie_mode_parse("median", &t), 1);
    cr_assert_eq(t, TIES_MEDIAN);
    const char *bad[] = {"", "Median", "conservative ", "tiebreaking", "cons"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(tie_mode_parse(bad[i], &t), 0, "\"%s\" accepted", bad[i]);
        cr_assert_eq(t, TIES_MEDIAN);  // untouched
    }
    cr_assert_eq(tie_mode_parse(NULL, &t), 0);
    for (int m = 0; m < 3; m++) {
        tie_mode back;
        cr_assert_eq(tie_mode_parse(tie_mode_name(MODES[m]), &back), 1);
        cr_assert_eq(back, MODES[m]);
    }
}
