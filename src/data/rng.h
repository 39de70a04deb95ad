// Random numbers for grurec (header-only).
//
// 1. Counter-based: rng_bits(seed, stream, counter) is a pure function of its three
//    arguments, so a result never depends on the order or grouping of draws, on the
//    number of threads, or on CPU vs GPU: the CUDA backend computes the same value per
//    element. Use it for everything that must be reproducible (init, negatives,
//    dropout masks): pick a stream below and a counter that names the element.
// 2. Sequential: rng_state (xoshiro256**), for CPU-only uses where order is fixed
//    anyway (e.g. a tool's own shuffling). Its state is 4 words, easy to checkpoint.
//
// COMPATIBILITY: the mixing functions, the constants in them, the conversions to
// float/double and the stream numbers below must NEVER change. Checkpoints (resume
// bitwise identical), published results and cross-backend tests depend on them.
#ifndef GRUREC_RNG_H
#define GRUREC_RNG_H

#include <stdint.h>

#include "util/hd.h"

// Streams: one per purpose, so that e.g. the dropout masks do not shift when the number
// of negatives changes. Never renumber; add new streams at the end.
enum {
    RNG_STREAM_INIT = 1,       // parameter initialisation
    RNG_STREAM_NEGATIVES = 2,  // negative samples (sampler.h: counter = step * 2^20 + k)
    RNG_STREAM_DROPOUT = 3,    // dropout masks
    RNG_STREAM_BPRMF = 4,      // the BPR-MF baseline
};

#define RNG_GOLDEN UINT64_C(0x9E3779B97F4A7C15)  // 2^64 / phi, odd

// splitmix64's finalizer (Stafford variant 13): a bijection on 64-bit words with full
// avalanche.
static inline GRUREC_HD uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

// 64 random bits for (seed, stream, counter).
//   key = mix(mix(seed ^ C) + stream * golden)      injective in seed (stream fixed) and
//                                                    in stream (seed fixed)
//   out = mix(mix(key + counter * golden) ^ key)    injective in counter (key fixed)
// Changing any single field therefore changes the input of a bijective mixer, and every
// field passes through at least two full mixing rounds before the output. The final
// "^ key" keeps two keys whose counter sequences overlap (key1 + c1*g == key2 + c2*g)
// from producing the same outputs.
static inline GRUREC_HD uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint64_t key = rng_mix64(rng_mix64(seed ^ UINT64_C(0x6A09E667F3BCC909)) + stream * RNG_GOLDEN);
    return rng_mix64(rng_mix64(key + counter * RNG_GOLDEN) ^ key);
}

// Uniform float in [0, 1): the top 24 bits, exactly representable (max 1 - 2^-24).
static inline GRUREC_HD float rng_bits_to_float(uint64_t bits) { return (float)(bits >> 40) * 0x1.0p-24f; }

// Uniform double in [0, 1): the top 53 bits (max 1 - 2^-53).
static inline GRUREC_HD double rng_bits_to_double(uint64_t bits) { return (double)(bits >> 11) * 0x1.0p-53; }

static inline GRUREC_HD float rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
    return rng_bits_to_float(rng_bits(seed, stream, counter));
}

static inline GRUREC_HD double rng_uniform_double(uint64_t seed, uint64_t stream, uint64_t counter) {
    return rng_bits_to_double(rng_bits(seed, stream, counter));
}

// Inverted dropout: the multiplier of element I of the mask of (rank, step, slot), 0 with
// probability p, else 1/(1 - p). Slot 0 is the embedding, 1 + l the output of layer l;
// counters 0..2^32-1 are the elements. Both backends call this, so their masks agree.
static inline GRUREC_HD float dropout_multiplier(uint64_t seed, int rank, int64_t step, int slot, uint64_t i,
                                                 float p) {
    const float keep = 1.0f / (1.0f - p);
    const uint64_t stream = RNG_STREAM_DROPOUT + ((uint64_t)rank << 16);
    const uint64_t base = ((uint64_t)step * 64 + (uint64_t)slot) << 32;
    return rng_uniform(seed, stream, base + i) < p ? 0.0f : keep;
}

// ---- sequential: xoshiro256** (Blackman & Vigna), seeded by splitmix64 ----------------

typedef struct { uint64_t s[4]; } rng_state;

static inline void rng_state_seed(rng_state *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        seed += RNG_GOLDEN;
        r->s[i] = rng_mix64(seed);  // the four words are distinct: never all zero
    }
}

static inline uint64_t rng_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next_u64(rng_state *r) {
    uint64_t *s = r->s;
    uint64_t out = rng_rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl64(s[3], 45);
    return out;
}

// Uniform float in [0, 1) from the top 24 bits.
static inline float rng_next_float(rng_state *r) { return rng_bits_to_float(rng_next_u64(r)); }

// Uniform double in [0, 1) from the top 53 bits.
static inline double rng_next_double(rng_state *r) { return rng_bits_to_double(rng_next_u64(r)); }

#endif
