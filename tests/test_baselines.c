// The ICLR 2016 baselines (src/eval/baselines.h) on in-memory CSR sessions:
//  - popularity levels; POP ranks by support, equal support ties;
//  - S-POP puts the session's repeated item first, a count always beats popularity, the
//    session's items with equal counts are ordered by popularity, equal (count, support)
//    is a true tie;
//  - item-KNN similarities by hand on a 3-session example (λ = 1; α = 0.5, 0.25, 0),
//    self excluded, the ranking with popularity breaking ties between equal similarities
//    and among the items outside the neighbours; top-M truncation; the fit does not
//    depend on the number of threads;
//  - BPR-MF: the BPR loss falls over epochs on a learnable toy set (4 clusters of items),
//    held-out sessions are ranked well above chance, same seed = same bits, another seed
//    differs;
//  - evaluation: the prediction count is Σ(len-1); baseline_evaluate equals ranking the
//    rows of baseline_score_prefix one by one; it does not depend on the thread count;
//    the three tie modes reach the ranks (conservative / standard / median by hand).
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/baselines.h"
#include "eval/metrics.h"
#include "data/rng.h"

static const tie_mode MODES[3] = {TIES_CONSERVATIVE, TIES_STANDARD, TIES_MEDIAN};

// Rank of `target` after the session prefix, in a tie mode.
static double rank_after(const baseline_scorer *b, const int32_t *prefix, int64_t len, int32_t target,
                         tie_mode t) {
    float *s = malloc((size_t)b->n_items * sizeof *s);
    baseline_score_prefix(b, prefix, len, s);
    double r = rank_of(s, b->n_items, target, t);
    free(s);
    return r;
}

// ---- popularity -------------------------------------------------------------------------

Test(pop, levels) {
    const int64_t support[6] = {5, 0, 5, 9, 1, 0};
    int32_t level[6];
    cr_assert_eq(popularity_levels(support, 6, level), 4);
    const int32_t want[6] = {3, 1, 3, 4, 2, 1};
    for (int i = 0; i < 6; i++) cr_assert_eq(level[i], want[i], "item %d: level %d, want %d", i, level[i], want[i]);
}

Test(pop, ranks_by_support) {
    const int64_t support[5] = {5, 0, 5, 9, 1};
    baseline_scorer b;
    baseline_scorer_init(&b, BASELINE_POP, support, 5, NULL, NULL);
    const int32_t prefix[2] = {1, 4};
    // Order 3 (9) > 0 = 2 (5) > 4 (1) > 1 (0), whatever the session.
    cr_assert_eq(rank_after(&b, prefix, 2, 3, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, prefix, 1, 4, TIES_CONSERVATIVE), 4);
    cr_assert_eq(rank_after(&b, prefix, 2, 1, TIES_STANDARD), 5);
    for (int t = 0; t < 2; t++) {  // the tie of 0 and 2
        cr_assert_eq(rank_after(&b, prefix, 2, t * 2, TIES_CONSERVATIVE), 3);
        cr_assert_eq(rank_after(&b, prefix, 2, t * 2, TIES_STANDARD), 2);
        cr_assert_eq(rank_after(&b, prefix, 2, t * 2, TIES_MEDIAN), 2.5);
    }
    baseline_scorer_free(&b);
}

// ---- S-POP ------------------------------------------------------------------------------

Test(spop, session_counts_then_popularity) {
    const int64_t support[6] = {10, 1, 5, 3, 2, 3};
    baseline_scorer b;
    baseline_scorer_init(&b, BASELINE_SPOP, support, 6, NULL, NULL);
    // Session 1, 3, 1: item 1 seen twice (the least popular item: the count wins), 3 once;
    // then the others by popularity: 0 (10), 2 (5), 5 (3), 4 (2).
    const int32_t s1[3] = {1, 3, 1};
    const int32_t order1[6] = {1, 3, 0, 2, 5, 4};
    for (int k = 0; k < 6; k++)
        for (int m = 0; m < 3; m++)
            cr_assert_eq(rank_after(&b, s1, 3, order1[k], MODES[m]), k + 1, "item %d", order1[k]);
    // Prefix 1, 3 only: equal counts, ordered by popularity: 3 (3) before 1 (1).
    cr_assert_eq(rank_after(&b, s1, 2, 3, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, s1, 2, 1, TIES_CONSERVATIVE), 2);
    cr_assert_eq(rank_after(&b, s1, 2, 0, TIES_CONSERVATIVE), 3);
    // Session 5, 3: equal count and equal support: a true tie at the top.
    const int32_t s2[2] = {5, 3};
    cr_assert_eq(rank_after(&b, s2, 2, 3, TIES_CONSERVATIVE), 2);
    cr_assert_eq(rank_after(&b, s2, 2, 5, TIES_STANDARD), 1);
    cr_assert_eq(rank_after(&b, s2, 2, 5, TIES_MEDIAN), 1.5);
    // A count of 3 against 2 against 1 against the most popular item.
    const int32_t s3[6] = {4, 2, 4, 1, 2, 4};
    cr_assert_eq(rank_after(&b, s3, 6, 4, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, s3, 6, 2, TIES_CONSERVATIVE), 2);
    cr_assert_eq(rank_after(&b, s3, 6, 1, TIES_CONSERVATIVE), 3);
    cr_assert_eq(rank_after(&b, s3, 6, 0, TIES_CONSERVATIVE), 4);
    baseline_scorer_free(&b);
}

// ---- item-KNN ---------------------------------------------------------------------------
// Three sessions over 5 items:
//   s0: 0 1 0 2   counts 0:2 1:1 2:1
//   s1: 1 2 3 1   counts 1:2 2:1 3:1
//   s2: 0 3 3 4   counts 0:1 3:2 4:1
// support 0:3 1:3 2:2 3:3 4:1. Co-occurrence Σ_s c_s(i) c_s(j):
//   (0,1) 2·1 = 2   (0,2) 2·1 = 2   (0,3) 1·2 = 2   (0,4) 1·1 = 1
//   (1,2) 1·1 + 2·1 = 3   (1,3) 2·1 = 2   (2,3) 1·1 = 1   (3,4) 2·1 = 2   (1,4) = (2,4) = 0
static const int64_t KOFF[4] = {0, 4, 8, 12};
static const int32_t KITEMS[12] = {0, 1, 0, 2, 1, 2, 3, 1, 0, 3, 3, 4};
static const int64_t KSUP[5] = {3, 3, 2, 3, 1};
static const double CO[5][5] = {{0, 2, 2, 2, 1}, {2, 0, 3, 2, 0}, {2, 3, 0, 1, 0}, {2, 2, 1, 0, 2}, {1, 0, 0, 2, 0}};

static double knn_sim(const itemknn_model *k, int32_t i, int32_t j) {
    for (int64_t q = k->off[i]; q < k->off[i + 1]; q++)
        if (k->item[q] == j) return k->sim[q];
    return 0;
}

Test(itemknn, similarities_by_hand) {
    const csr_sessions tr = {3, KOFF, KITEMS};
    const double alphas[3] = {0.5, 0.25, 0.0};
    for (int a = 0; a < 3; a++) {
        double al = alphas[a];
        itemknn_model k;
        itemknn_fit(&k, &tr, KSUP, 5, 1.0, al, 100, 1);
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                double want = i == j ? 0 : CO[i][j] / (pow(KSUP[i] + 1.0, al) * pow(KSUP[j] + 1.0, 1 - al));
                cr_assert(fabs(knn_sim(&k, i, j) - want) <= 1e-12, "alpha %g sim(%d,%d) = %.15g, want %.15g", al, i, j,
                          knn_sim(&k, i, j), want);
            }
        // Literal values: α = 0.5: 2/sqrt(4·3), 2/4, 1/sqrt(4·2); α = 0: co / (supp_j + 1).
        if (a == 0) {
            cr_assert(fabs(knn_sim(&k, 0, 2) - 0.5773502691896258) < 1e-15);
            cr_assert(fabs(knn_sim(&k, 0, 1) - 0.5) < 1e-15);
            cr_assert(fabs(knn_sim(&k, 0, 4) - 0.3535533905932738) < 1e-15);
            cr_assert(fabs(knn_sim(&k, 4, 3) - 0.7071067811865476) < 1e-15);
            cr_assert_eq(knn_sim(&k, 0, 2), knn_sim(&k, 2, 0), "α = 0.5 is symmetric");
        }
        if (a == 2) {
            cr_assert_eq(knn_sim(&k, 0, 4), 0.5);
            cr_assert_eq(knn_sim(&k, 4, 0), 0.25);
            cr_assert_eq(knn_sim(&k, 2, 1), 0.75);
        }
        // Neighbour lists: positive similarities only, best first, never the item itself.
        for (int i = 0; i < 5; i++) {
            int nz = 0;
            for (int j = 0; j < 5; j++) nz += j != i && CO[i][j] > 0;
            cr_assert_eq(k.off[i + 1] - k.off[i], nz, "item %d keeps its %d co-occurring items", i, nz);
            for (int64_t q = k.off[i]; q < k.off[i + 1]; q++) {
                cr_assert_neq(k.item[q], i);
                cr_assert_gt(k.sim[q], 0);
                if (q > k.off[i]) cr_assert_geq(k.sim[q - 1], k.sim[q]);
            }
        }
        itemknn_free(&k);
    }
}

Test(itemknn, ranking_with_popularity_tie_breaks) {
    const csr_sessions tr = {3, KOFF, KITEMS};
    itemknn_model k;
    baseline_scorer b;
    // α = 0.5, λ = 1, current item 4: neighbours 3 (0.707), 0 (0.354); then the items with
    // similarity 0 by popularity: 1 (support 3), 2 (2), 4 itself (1).
    itemknn_fit(&k, &tr, KSUP, 5, 1.0, 0.5, 100, 1);
    baseline_scorer_init(&b, BASELINE_ITEMKNN, KSUP, 5, &k, NULL);
    const int32_t p4[2] = {1, 4};  // only the current item matters
    const int32_t order4[5] = {3, 0, 1, 2, 4};
    for (int r = 0; r < 5; r++)
        for (int m = 0; m < 3; m++) cr_assert_eq(rank_after(&b, p4, 2, order4[r], MODES[m]), r + 1, "item %d", order4[r]);
    // Current item 0: 2 (0.577), then 1 and 3 (both 0.5 and support 3: a true tie), 4, 0.
    const int32_t p0[1] = {0};
    cr_assert_eq(rank_after(&b, p0, 1, 2, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, p0, 1, 1, TIES_CONSERVATIVE), 3);
    cr_assert_eq(rank_after(&b, p0, 1, 3, TIES_STANDARD), 2);
    cr_assert_eq(rank_after(&b, p0, 1, 4, TIES_CONSERVATIVE), 4);
    cr_assert_eq(rank_after(&b, p0, 1, 0, TIES_CONSERVATIVE), 5);
    baseline_scorer_free(&b);
    itemknn_free(&k);
    // α = 0, λ = 1 (sim = co / (supp_j + 1)), current item 0: 2 (2/3), then 1, 3 and 4 all
    // at exactly 0.5 — popularity puts 4 (support 1) below 1 and 3 (support 3), tied.
    itemknn_fit(&k, &tr, KSUP, 5, 1.0, 0.0, 100, 1);
    baseline_scorer_init(&b, BASELINE_ITEMKNN, KSUP, 5, &k, NULL);
    cr_assert_eq(knn_sim(&k, 0, 1), knn_sim(&k, 0, 4));
    cr_assert_eq(rank_after(&b, p0, 1, 2, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, p0, 1, 1, TIES_CONSERVATIVE), 3);
    cr_assert_eq(rank_after(&b, p0, 1, 3, TIES_STANDARD), 2);
    cr_assert_eq(rank_after(&b, p0, 1, 4, TIES_STANDARD), 4);
    cr_assert_eq(rank_after(&b, p0, 1, 0, TIES_STANDARD), 5);
    baseline_scorer_free(&b);
    itemknn_free(&k);
}

Test(itemknn, top_m_truncation) {
    const csr_sessions tr = {3, KOFF, KITEMS};
    itemknn_model k;
    itemknn_fit(&k, &tr, KSUP, 5, 1.0, 0.5, 2, 1);
    for (int i = 0; i < 5; i++) cr_assert_leq(k.off[i + 1] - k.off[i], 2);
    // Item 0 keeps 2 (0.577) and, of the tied 1 and 3 (0.5, same support), the lower id 1.
    cr_assert_eq(k.off[1] - k.off[0], 2);
    cr_assert_eq(k.item[k.off[0]], 2);
    cr_assert_eq(k.item[k.off[0] + 1], 1);
    cr_assert_eq(knn_sim(&k, 0, 3), 0);
    baseline_scorer b;
    baseline_scorer_init(&b, BASELINE_ITEMKNN, KSUP, 5, &k, NULL);
    // Ranking for item 0: 2, 1, then by popularity 0 and 3 (support 3, tied), 4 (1).
    const int32_t p0[1] = {0};
    cr_assert_eq(rank_after(&b, p0, 1, 2, TIES_CONSERVATIVE), 1);
    cr_assert_eq(rank_after(&b, p0, 1, 1, TIES_CONSERVATIVE), 2);
    cr_assert_eq(rank_after(&b, p0, 1, 3, TIES_CONSERVATIVE), 4);
    cr_assert_eq(rank_after(&b, p0, 1, 3, TIES_STANDARD), 3);
    cr_assert_eq(rank_after(&b, p0, 1, 4, TIES_CONSERVATIVE), 5);
    baseline_scorer_free(&b);
    itemknn_free(&k);
    // M = 1: one neighbour each.
    itemknn_fit(&k, &tr, KSUP, 5, 1.0, 0.5, 1, 1);
    for (int i = 0; i < 5; i++) cr_assert_eq(k.off[i + 1] - k.off[i], 1);
    cr_assert_eq(k.item[k.off[4]], 3);
    itemknn_free(&k);
}

// ---- random data ------------------------------------------------------------------------

typedef struct {
    int64_t n_sessions;
    int64_t *off;
    int32_t *items;
} owned_csr;

// Sessions of length 1..maxlen; each session draws from one of n_clusters blocks of items
// (block c = items c·N/n_clusters ...), Zipf-ish inside it, with repeats.
static owned_csr random_sessions(uint64_t seed, int64_t S, int maxlen, int32_t N, int n_clusters) {
    owned_csr c;
    c.n_sessions = S;
    c.off = malloc((size_t)(S + 1) * sizeof *c.off);
    c.items = malloc((size_t)S * (size_t)maxlen * sizeof *c.items);
    c.off[0] = 0;
    uint64_t ctr = 0;
    int32_t block = N / n_clusters;
    for (int64_t s = 0; s < S; s++) {
        int len = 1 + (int)(rng_uniform(seed, 0, ctr++) * (float)maxlen);
        int cl = (int)(rng_uniform(seed, 0, ctr++) * (float)n_clusters);
        for (int e = 0; e < len; e++) {
            float u = rng_uniform(seed, 0, ctr++);
            c.items[c.off[s] + e] = cl * block + (int32_t)(u * u * (float)block);
        }
        c.off[s + 1] = c.off[s] + len;
    }
    return c;
}

static void support_of(const owned_csr *c, int32_t N, int64_t *support) {
    memset(support, 0, (size_t)N * sizeof *support);
    for (int64_t e = 0; e < c->off[c->n_sessions]; e++) support[c->items[e]]++;
}

static void owned_free(owned_csr *c) {
    free(c->off);
    free(c->items);
}

Test(itemknn, threads_do_not_change_the_fit) {
    enum { N = 300 };
    owned_csr tr = random_sessions(7, 2000, 12, N, 5);
    int64_t support[N];
    support_of(&tr, N, support);
    csr_sessions c = {tr.n_sessions, tr.off, tr.items};
    itemknn_model a, b;
    itemknn_fit(&a, &c, support, N, 20, 0.5, 10, 1);
    itemknn_fit(&b, &c, support, N, 20, 0.5, 10, 3);
    cr_assert_eq(memcmp(a.off, b.off, (N + 1) * sizeof *a.off), 0);
    int64_t T = a.off[N];
    cr_assert_gt(T, N);
    cr_assert_eq(memcmp(a.item, b.item, (size_t)T * sizeof *a.item), 0);
    cr_assert_eq(memcmp(a.sim, b.sim, (size_t)T * sizeof *a.sim), 0);
    cr_assert_eq(memcmp(a.code, b.code, (size_t)T * sizeof *a.code), 0);
    itemknn_free(&a);
    itemknn_free(&b);
    owned_free(&tr);
}

// ---- BPR-MF -----------------------------------------------------------------------------

Test(bprmf, loss_falls_and_clusters_are_learnt) {
    enum { N = 40, EPOCHS = 30 };
    owned_csr tr = random_sessions(11, 800, 6, N, 4), te = random_sessions(12, 200, 6, N, 4);
    csr_sessions trc = {tr.n_sessions, tr.off, tr.items}, tec = {te.n_sessions, te.off, te.items};
    bprmf_options o;
    bprmf_defaults(&o);
    o.factors = 8;
    o.epochs = EPOCHS;
    bprmf_model mf;
    double loss[EPOCHS];
    bprmf_fit(&mf, &trc, N, &o, loss);
    cr_log_info("bprmf toy: loss %.4f (epoch 1) %.4f (5) %.4f (%d)", loss[0], loss[4], loss[EPOCHS - 1], EPOCHS);
    cr_assert(fabs(loss[0] - log(2.0)) < 0.02, "starts near ln 2 (small factors): %g", loss[0]);
    for (int e = 5; e < EPOCHS; e += 5) cr_assert_lt(loss[e], loss[e - 5], "epoch %d: %g vs %g", e, loss[e], loss[e - 5]);
    cr_assert_lt(loss[EPOCHS - 1], 0.5, "learns: %g", loss[EPOCHS - 1]);
    // Held-out sessions: the next item is in the session's block, 10 of the 40 items.
    int64_t support[N];
    support_of(&tr, N, support);
    baseline_scorer b;
    baseline_scorer_init(&b, BASELINE_BPRMF, support, N, NULL, &mf);
    const int cut[1] = {10};
    metrics met;
    metrics_init(&met, cut, 1);
    baseline_evaluate(&b, &tec, TIES_CONSERVATIVE, 1, &met);
    cr_log_info("bprmf toy: held-out recall@10 %.3f (chance 0.25)", metrics_recall(&met, 0));
    cr_assert_gt(metrics_recall(&met, 0), 0.6);
    baseline_scorer_free(&b);
    bprmf_free(&mf);
    owned_free(&tr);
    owned_free(&te);
}

Test(bprmf, deterministic_by_seed) {
    enum { N = 50 };
    owned_csr tr = random_sessions(3, 300, 8, N, 5);
    csr_sessions c = {tr.n_sessions, tr.off, tr.items};
    bprmf_options o;
    bprmf_defaults(&o);
    o.factors = 12;
    o.epochs = 3;
    bprmf_model a, b, d;
    double la[3], lb[3];
    bprmf_fit(&a, &c, N, &o, la);
    bprmf_fit(&b, &c, N, &o, lb);
    o.seed = 43;
    bprmf_fit(&d, &c, N, &o, NULL);
    size_t q = (size_t)N * 12 * sizeof(float), p = (size_t)tr.n_sessions * 12 * sizeof(float);
    cr_assert_eq(memcmp(a.Q, b.Q, q), 0, "same seed, same item factors");
    cr_assert_eq(memcmp(a.P, b.P, p), 0, "same seed, same session factors");
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    cr_assert_neq(memcmp(a.Q, d.Q, q), 0, "another seed, other factors");
    bprmf_free(&a);
    bprmf_free(&b);
    bprmf_free(&d);
    owned_free(&tr);
}

// ---- evaluation -------------------------------------------------------------------------

// Every kind: baseline_evaluate = the rows of baseline_score_prefix ranked one by one
// (hits and the count exactly, the reciprocal-rank sums to rounding), the count is
// Σ(len-1) (sessions of length 0 and 1 give nothing), threads change nothing.
Test(evaluate, matches_prefix_scoring_and_counts) {
    enum { N = 120 };
    owned_csr tr = random_sessions(21, 600, 10, N, 6), te = random_sessions(22, 300, 9, N, 6);
    // Insert an empty session at index 5 (the events stay where they are).
    int64_t *off2 = malloc((size_t)(te.n_sessions + 2) * sizeof *off2);
    for (int64_t s = 0, t = 0; s <= te.n_sessions; s++) {
        off2[t++] = te.off[s];
        if (s == 5) off2[t++] = te.off[s];
    }
    free(te.off);
    te.off = off2;
    te.n_sessions++;
    int64_t support[N];
    support_of(&tr, N, support);
    csr_sessions trc = {tr.n_sessions, tr.off, tr.items}, tec = {te.n_sessions, te.off, te.items};
    int n_short = 0;
    int64_t want_n = 0;
    for (int64_t s = 0; s < te.n_sessions; s++) {
        int64_t len = te.off[s + 1] - te.off[s];
        cr_assert_geq(len, 0);
        if (len > 1) want_n += len - 1;
        n_short += len < 2;
    }
    cr_assert_geq(n_short, 2, "the data hold sessions of length 0 and 1");
    itemknn_model knn;
    itemknn_fit(&knn, &trc, support, N, 20, 0.5, 15, 2);
    bprmf_options o;
    bprmf_defaults(&o);
    o.factors = 16;
    o.epochs = 2;
    bprmf_model mf;
    bprmf_fit(&mf, &trc, N, &o, NULL);
    const int cut[4] = {1, 5, 10, 20};
    float *row = malloc(N * sizeof *row);
    for (int kind = 0; kind < 4; kind++) {
        baseline_scorer b;
        baseline_scorer_init(&b, (baseline_kind)kind, support, N, &knn, &mf);
        for (int m = 0; m < 3; m++) {
            metrics got, got4, want;
            metrics_init(&got, cut, 4);
            metrics_init(&got4, cut, 4);
            metrics_init(&want, cut, 4);
            baseline_evaluate(&b, &tec, MODES[m], 1, &got);
            baseline_evaluate(&b, &tec, MODES[m], 4, &got4);
            for (int64_t s = 0; s < te.n_sessions; s++)
                for (int64_t p = te.off[s]; p + 1 < te.off[s + 1]; p++) {
                    baseline_score_prefix(&b, te.items + te.off[s], p - te.off[s] + 1, row);
                    metrics_add_rows(&want, row, 1, N, te.items + p + 1, MODES[m]);
                }
            cr_assert_eq(got.n, want_n, "%s: %lld predictions, want %lld", baseline_name(kind), (long long)got.n,
                         (long long)want_n);
            cr_assert_eq(want.n, want_n);
            cr_assert_eq(memcmp(&got, &got4, sizeof got), 0, "%s: threads change nothing", baseline_name(kind));
            for (int c = 0; c < 4; c++) {
                cr_assert_eq(got.hits[c], want.hits[c], "%s mode %d cutoff %d", baseline_name(kind), m, cut[c]);
                cr_assert(fabs(got.rr[c] - want.rr[c]) <= 1e-9 * (1 + want.rr[c]), "%s mode %d cutoff %d",
                          baseline_name(kind), m, cut[c]);
                cr_assert(fabs(got.dcg[c] - want.dcg[c]) <= 1e-9 * (1 + want.dcg[c]), "%s mode %d cutoff %d: dcg",
                          baseline_name(kind), m, cut[c]);
            }
        }
        baseline_scorer_free(&b);
    }
    free(row);
    itemknn_free(&knn);
    bprmf_free(&mf);
    owned_free(&tr);
    owned_free(&te);
}

// POP on support {5, 0, 5, 9, 1}; sessions 4→0 (rank of 0: 1 above, 2 equal), 1→3→1
// (ranks 1 and 5), a one-event session: 3 predictions.
Test(evaluate, tie_modes_pass_through) {
    const int64_t support[5] = {5, 0, 5, 9, 1};
    const int64_t off[4] = {0, 2, 5, 6};
    const int32_t items[6] = {4, 0, 1, 3, 1, 2};
    const csr_sessions te = {3, off, items};
    baseline_scorer b;
    baseline_scorer_init(&b, BASELINE_POP, support, 5, NULL, NULL);
    const int cut[3] = {1, 3, 5};
    const double rank0[3] = {3, 2, 2.5};  // conservative, standard, median
    for (int m = 0; m < 3; m++) {
        metrics met;
        metrics_init(&met, cut, 3);
        baseline_evaluate(&b, &te, MODES[m], 2, &met);
        cr_assert_eq(met.n, 3);
        cr_assert_eq(met.hits[0], 1);  // target 3 at rank 1
        cr_assert_eq(met.hits[1], 2);
        cr_assert_eq(met.hits[2], 3);
        double want = (1 + 1.0 / rank0[m] + 1.0 / 5) / 3;
        cr_assert(fabs(metrics_mrr(&met, 2) - want) < 1e-12, "mode %d: MRR@5 %.12g, want %.12g", m, metrics_mrr(&met, 2),
                  want);
        cr_assert(fabs(metrics_mrr(&met, 1) - (1 + 1.0 / rank0[m]) / 3) < 1e-12);
        // NDCG@5: the ranks 1, rank0 and 5 -> (1/log2(2) + 1/log2(rank0 + 1) + 1/log2(6)) / 3.
        double want_ndcg = (1 + 1.0 / log2(rank0[m] + 1) + 1.0 / log2(6.0)) / 3;
        cr_assert(fabs(metrics_ndcg(&met, 2) - want_ndcg) < 1e-12, "mode %d: NDCG@5 %.12g, want %.12g", m,
                  metrics_ndcg(&met, 2), want_ndcg);
    }
    baseline_scorer_free(&b);
}

Test(evaluate, parse_names) {
    baseline_kind k;
    const char *n[4] = {"pop", "spop", "itemknn", "bprmf"};
    for (int i = 0; i < 4; i++) {
        cr_assert(baseline_parse(n[i], &k));
        cr_assert_eq((int)k, i);
        cr_assert_str_eq(baseline_name(k), n[i]);
    }
    cr_assert_not(baseline_parse("knn", &k));
    cr_assert_not(baseline_parse(NULL, &k));
}
