// Negative sampling: items drawn with probability proportional to support^alpha
// (DESIGN §3, REFERENCE §A.7), by Vose's alias method.
//
// Weights: w_i = support_i^alpha for support_i > 0, and w_i = 0 for support_i == 0,
// whatever alpha is (alpha == 0 is therefore uniform over the items WITH support; an
// item never seen in training is never drawn). q_i = w_i / sum(w), in double.
//
// The draws of one training step are a deterministic function of (table, seed, step, k),
// identical on every rank and on the CPU and GPU backends (the CUDA code must mirror
// alias_pick exactly):
//   bits = rng_bits(seed, RNG_STREAM_NEGATIVES, step * 2^20 + k)
//   col  = ((bits >> 32) * n) >> 32                         (multiply-shift, no modulo)
//   coin = (float)((uint32_t)bits >> 8) * 2^-24             (24 bits of the low word; exact)
//   item = coin < prob[col] ? col : alias[col]
// so at most 2^20 negatives per step (CHECKed).
#ifndef GRUREC_SAMPLER_H
#define GRUREC_SAMPLER_H

#include <stdint.h>

#include "data/rng.h"

enum { SAMPLER_MAX_K = 1 << 20 };  // counters per step: step * 2^20 + k

typedef struct {
    int32_t n;       // items
    float *prob;     // [n] keep column i if coin < prob[i] (1 = always; 0 = never)
    int32_t *alias;  // [n] otherwise draw alias[i] (always an item with w > 0)
    double *q;       // [n] normalised probability of item i (sums to 1; 0 for support 0)
} alias_table;

// Builds the table in O(n). CHECKs n > 0, support >= 0, alpha finite, and that some
// weight is positive and the sum finite.
void alias_build(alias_table *t, const int64_t *support, int32_t n, double alpha);
void alias_free(alias_table *t);

// One draw from 64 random bits (the formula above). Host and device code (the CUDA
// backend's draws, src/cuda/device_sampler.cu, call these two).
static inline GRUREC_HD int32_t alias_pick(const float *prob, const int32_t *alias, int32_t n, uint64_t bits) {
    int32_t col = (int32_t)(((bits >> 32) * (uint64_t)(uint32_t)n) >> 32);
    float coin = (float)((uint32_t)bits >> 8) * 0x1.0p-24f;
    return coin < prob[col] ? col : alias[col];
}

// Negative K of STEP.
static inline GRUREC_HD int32_t alias_draw(const float *prob, const int32_t *alias, int32_t n, uint64_t seed,
                                           uint64_t step, int32_t k) {
    return alias_pick(prob, alias, n, rng_bits(seed, RNG_STREAM_NEGATIVES, (step << 20) + (uint64_t)k));
}

// The K negatives of one training step into out[0..K-1]; 0 <= K <= SAMPLER_MAX_K.
void alias_draw_step(const alias_table *t, uint64_t seed, uint64_t step, int32_t K, int32_t *out);

#endif
