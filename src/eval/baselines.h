// The baselines of the ICLR 2016 paper (§4.1): POP, S-POP, item-KNN and BPR-MF, scored
// over ALL items by the GRU's protocol and metrics code (DESIGN §7, REFERENCE §B): for
// every test session, at every event but the last, every item gets one float score and
// the true next item is ranked with metrics_add_rows (so Recall@K / MRR@K / NDCG@K / the
// three tie modes / the prediction count Σ(len-1) are exactly those of `grurec eval`).
//
// Scores are EXACT encodings of lexicographic keys, so that a tie-break never overrides
// the primary key and float rounding never creates or hides a tie:
//   popularity level  level[i] = dense rank of support[i] among the distinct support
//                     values, 1..D (equal support, equal level). D <= sqrt(2 Σ support).
//   POP       score = level.
//   S-POP     items of the session so far: score = D + dense rank of (count in the
//             session up to and including the current event, level) among them;
//             other items: level. (= the official count + pop/(pop+1), without rounding)
//   item-KNN  the current item i's top-M neighbours j: score = D + dense rank of
//             (sim(i,j), level[j]) among them; every other item (sim 0, i itself
//             included): level. Only the current item counts, as in the paper.
//   BPR-MF    score = (mean of the item factors of the session's events so far) · Q_j.
// All integer codes stay below 2^24, so they are exact in float (CHECKed).
#ifndef GRUREC_BASELINES_H
#define GRUREC_BASELINES_H

#include <stdint.h>

#include "comm/comm.h"
#include "eval/metrics.h"

// Sessions as CSR: session s's events are items[off[s] .. off[s+1]-1], in time order.
typedef struct {
    int64_t n_sessions;
    const int64_t *off;    // [n_sessions + 1], off[0] = 0
    const int32_t *items;  // [off[n_sessions]], each in 0..n_items-1
} csr_sessions;

typedef enum { BASELINE_POP, BASELINE_SPOP, BASELINE_ITEMKNN, BASELINE_BPRMF } baseline_kind;

// "pop" | "spop" | "itemknn" | "bprmf" -> *out; returns 1, or 0 (out untouched).
int baseline_parse(const char *s, baseline_kind *out);
const char *baseline_name(baseline_kind k);

// level[i] as above (support >= 0); returns D (0 when n_items == 0).
int64_t popularity_levels(const int64_t *support, int64_t n_items, int32_t *level);

// ---- item-KNN ---------------------------------------------------------------------------
// sim(i,j) = Σ_s count_s(i) count_s(j) / ((supp_i + λ)^α (supp_j + λ)^(1-α)), j != i,
// over the training sessions s (count_s = events of the item in s), computed in double.
// Item i keeps its top `neighbors` items by (sim desc, level desc, id asc) among those
// with sim > 0. Exact (no cap on session length): each item's row is accumulated in a
// dense per-thread array from an inverted index of the sessions' distinct items, so
// memory is O(events + neighbors·n_items + threads·n_items) and time O(Σ_s distinct_s²).
// Rows are computed in parallel over items (threads >= 1); the result does not depend on
// the number of threads.
typedef struct {
    int64_t n_items, n_levels;  // n_levels: D of the support the model was fitted with
    int neighbors;
    int64_t *off;    // [n_items + 1]: item i's neighbours are [off[i], off[i+1])
    int32_t *item;   // best first
    double *sim;     // their similarities (> 0)
    float *code;     // their scores: D + dense rank of (sim, level), exact in float
} itemknn_model;

void itemknn_fit(itemknn_model *k, const csr_sessions *train, const int64_t *support, int64_t n_items,
                 double lambda, double alpha, int neighbors, int threads);
void itemknn_free(itemknn_model *k);

// ---- BPR-MF -----------------------------------------------------------------------------
// Rendle et al. 2009 (x_ui = p_u · q_i, no bias): every training session is a user; its
// positives are its distinct items. Each epoch visits every (session, item) positive once
// in a seeded random order; the negative j is uniform over the items, redrawn (up to 16
// times) while it is one of the session's items. SGD on ln σ(p_u·(q_i - q_j)) with L2
// `reg` on the three touched rows. Factors start uniform in ±init_scale. Single-threaded
// and bitwise deterministic for a seed (src/data/rng.h, stream RNG_STREAM_BPRMF).
// No item bias: the session vector at test time is a mean of item factors, not a trained
// p_u, so a bias learnt beside p_u is on another scale and swamps the dot product (on
// Diginetica, scoring with a trained bias gave Recall@20 0.010, i.e. POP).
typedef struct {
    int factors, epochs;
    float learning_rate, reg, init_scale;
    uint64_t seed;
} bprmf_options;

void bprmf_defaults(bprmf_options *o);  // 100 factors, lr 0.05, reg 0.01, 10 epochs, seed 42, init 0.1

typedef struct {
    int64_t n_items, n_sessions;
    int factors;
    float *Q;  // [n_items x factors] item factors
    float *P;  // [n_sessions x factors] the training sessions' factors (not used to score)
} bprmf_model;

// epoch_loss (may be NULL): [epochs], the mean of -ln σ(x) over each epoch's samples,
// each taken before its update.
void bprmf_fit(bprmf_model *m, const csr_sessions *train, int64_t n_items, const bprmf_options *o,
               double *epoch_loss);
void bprmf_free(bprmf_model *m);

// ---- scoring and evaluation -------------------------------------------------------------
typedef struct {
    baseline_kind kind;
    int64_t n_items, n_levels;
    int32_t *level;            // [n_items], owned
    float *level_f;            // the same as floats, owned
    const itemknn_model *knn;  // ITEMKNN only (not owned)
    const bprmf_model *mf;     // BPRMF only (not owned)
} baseline_scorer;

// support: [n_items] training events per item (meta.h5 /item_support). knn / mf: the
// fitted model for those kinds, NULL otherwise.
void baseline_scorer_init(baseline_scorer *b, baseline_kind kind, const int64_t *support, int64_t n_items,
                          const itemknn_model *knn, const bprmf_model *mf);
void baseline_scorer_free(baseline_scorer *b);

// Scores of all items (out[n_items]) for the prediction after the events prefix[0..len-1]
// of one session (len >= 1). Straightforward, for tests and single queries; evaluation
// computes the same scores incrementally.
void baseline_score_prefix(const baseline_scorer *b, const int32_t *prefix, int64_t len, float *out);

// Adds every prediction of `test` to met (initialised by the caller): Σ over sessions of
// max(len - 1, 0). Sessions are cut into units of about 1024 predictions, scored in
// batches of up to 256 rows by `threads` threads; the units' sums are added in unit order,
// so the result does not depend on the number of threads.
void baseline_evaluate(const baseline_scorer *b, const csr_sessions *test, tie_mode ties, int threads,
                       metrics *met);

int cmd_baseline(int argc, char **argv, comm *cm);

#endif
