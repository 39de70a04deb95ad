// Exact ranking evaluation over all items (DESIGN §7, REFERENCE §B).
//
// The target's rank among N scores (the target's own score included in the N):
//   standard:      1 + #(s > t)
//   conservative:  #(s >= t)                              (the default; ties ranked ahead)
//   median:        #(s > t) + 0.5 * (#(s == t) - 1) + 1
// A NaN target score ranks last (rank N); a NaN score of another item never counts as
// greater than or equal to the target.
// Recall@K = mean of [rank <= K]; MRR@K = mean of [rank <= K] / rank;
// NDCG@K = mean of [rank <= K] / log2(rank + 1), over predictions. One relevant item per
// prediction, so the ideal DCG is 1 and NDCG is the DCG. Every tie mode's rank goes into
// the same formulas (as MRR takes 1/rank of the median's fractional rank, NDCG takes
// 1/log2(rank + 1) of it); the conservative rank is the default.
#ifndef GRUREC_METRICS_H
#define GRUREC_METRICS_H

#include <stdint.h>

typedef enum { TIES_CONSERVATIVE, TIES_STANDARD, TIES_MEDIAN } tie_mode;

enum { METRICS_MAX_CUTOFFS = 16 };

typedef struct {
    int n_cutoffs;
    int cutoffs[METRICS_MAX_CUTOFFS];  // ascending, distinct, >= 1
    double hits[METRICS_MAX_CUTOFFS];  // count of predictions with rank <= cutoff
    double rr[METRICS_MAX_CUTOFFS];    // sum of 1/rank for rank <= cutoff
    double dcg[METRICS_MAX_CUTOFFS];   // sum of 1/log2(rank + 1) for rank <= cutoff
    int64_t n;                         // predictions
} metrics;

// Zeroed sums; the cutoffs are copied, sorted ascending and deduplicated. CHECKs
// 1 <= n_cutoffs <= METRICS_MAX_CUTOFFS and every cutoff >= 1.
void metrics_init(metrics *m, const int *cutoffs, int n_cutoffs);

// "1,5,10,20" -> the distinct cutoffs, sorted ascending, into cutoffs[0..count-1];
// returns count, or 0 on error: empty string or item, anything but decimal digits and
// commas (no spaces, no signs), a value < 1 or > 1000000000, more than max items.
int metrics_parse_cutoffs(const char *s, int *cutoffs, int max);

// "conservative" | "standard" | "median" -> *out; returns 1, or 0 (out untouched) on error.
int tie_mode_parse(const char *s, tie_mode *out);
const char *tie_mode_name(tie_mode t);

// Rank of scores[target] among scores[0..N-1] (one pass, no sorting). CHECKs 0 <= target < N.
double rank_of(const float *scores, int64_t N, int32_t target, tie_mode ties);

// The rank from #(s > t) and #(s == t) (the target included) over N scores; N when the
// target's score is NaN. (The GPU evaluator counts on the device and ranks here.)
double rank_from_counts(int64_t gt, int64_t eq, int64_t N, int target_nan, tie_mode ties);
// #(s > t) and #(s == t) over S[0..N-1] (NaNs count nowhere): rank_of's counts, for
// scores held in parts (sharded item tables add the parts' counts).
void metrics_count_gt_eq(const float *s, int64_t N, float t, int64_t *gt, int64_t *eq);
// Adds one prediction of rank RANK to the sums.
void metrics_add_rank(metrics *m, double rank);

// scores: M rows x N items, row-major; targets[M]. Adds every row's rank to m.
void metrics_add_rows(metrics *m, const float *scores, int M, int64_t N, const int32_t *targets,
                      tie_mode ties);

// into += from (for summing across ranks / threads). CHECKs identical cutoffs. hits and
// n are exact; rr and dcg may differ from a single sequential pass in the last bits (order of
// floating-point additions).
void metrics_merge(metrics *into, const metrics *from);

// hits / n, rr / n and dcg / n for cutoffs[k_index]; 0 when n == 0. CHECKs the index.
double metrics_recall(const metrics *m, int k_index);
double metrics_mrr(const metrics *m, int k_index);
double metrics_ndcg(const metrics *m, int k_index);

#endif
