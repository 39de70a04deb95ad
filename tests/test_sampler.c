// Unit tests: src/data/rng.h (counter-based and sequential generators) and src/sampler.{h,c}
// (alias-method negative sampling). Every test is deterministic (fixed seeds), so the
// statistical tolerances below can never flake; they are set at >= 5 standard deviations.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "data/sampler.h"

// ---- rng ------------------------------------------------------------------------------

// Pinned outputs: rng_bits must never change (checkpoints, reproducibility, CUDA parity).
// If one of these fails, the generator was changed: revert it.
Test(rng, pinned_values) {
    cr_assert_eq(rng_bits(0, 0, 0), UINT64_C(0xBD2EC0CB177BC749));
    cr_assert_eq(rng_bits(42, RNG_STREAM_NEGATIVES, 7), UINT64_C(0xF2AC004942C595C4));
    cr_assert_eq(rng_bits(UINT64_MAX, RNG_STREAM_DROPOUT, UINT64_C(1) << 40),
                 UINT64_C(0x8784AA69471F9DBF));
    rng_state r;
    rng_state_seed(&r, 1234);
    cr_assert_eq(rng_next_u64(&r), UINT64_C(0x0BAB45D9A0E3AE53));
}

Test(rng, stream_constants_fixed) {
    cr_assert_eq(RNG_STREAM_INIT, 1);
    cr_assert_eq(RNG_STREAM_NEGATIVES, 2);
    cr_assert_eq(RNG_STREAM_DROPOUT, 3);
    cr_assert_eq(RNG_STREAM_BPRMF, 4);
}

Test(rng, same_inputs_same_output_and_fields_matter) {
    for (uint64_t c = 0; c < 1000; c++) {
        uint64_t x = rng_bits(7, 2, c);
        cr_assert_eq(x, rng_bits(7, 2, c));
        cr_assert_neq(x, rng_bits(8, 2, c));
        cr_assert_neq(x, rng_bits(7, 3, c));
        cr_assert_neq(x, rng_bits(7, 2, c + 1));
        // Swapping fields must not give the same value either.
        cr_assert_neq(x, rng_bits(2, 7, c));
        if (c != 7)
            cr_assert_neq(rng_bits(c, 2, 7), rng_bits(7, 2, c), "c=%llu", (unsigned long long)c);
    }
}

static int popcount64(uint64_t x) {
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

// Changing one field by one flips half of the output bits on average (avalanche), and
// each output bit is set half of the time.
Test(rng, one_field_changes_look_independent) {
    const int n = 20000;
    double ham_seed = 0, ham_stream = 0, ham_counter = 0;
    int64_t bitcount[64] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t s = (uint64_t)i * 3, st = (uint64_t)(i % 5), c = (uint64_t)i;
        uint64_t x = rng_bits(s, st, c);
        ham_seed += popcount64(x ^ rng_bits(s + 1, st, c));
        ham_stream += popcount64(x ^ rng_bits(s, st + 1, c));
        ham_counter += popcount64(x ^ rng_bits(s, st, c + 1));
        for (int b = 0; b < 64; b++) bitcount[b] += (int64_t)((x >> b) & 1);
    }
    // Mean of n binomial(64, 1/2) draws: sd = 4 / sqrt(n) = 0.028.
    cr_assert(fabs(ham_seed / n - 32) < 0.2, "seed: %g", ham_seed / n);
    cr_assert(fabs(ham_stream / n - 32) < 0.2, "stream: %g", ham_stream / n);
    cr_assert(fabs(ham_counter / n - 32) < 0.2, "counter: %g", ham_counter / n);
    // Each bit: sd = sqrt(n)/2 = 71 -> 5 sd = 354.
    for (int b = 0; b < 64; b++)
        cr_assert(llabs(bitcount[b] - n / 2) < 400, "bit %d set %lld times", b,
                  (long long)bitcount[b]);
}

// Chi-square over 16 buckets (15 degrees of freedom: mean 15, sd 5.5); 50 is p < 1e-5.
static double chi2_16(const int64_t *count, int64_t n) {
    double e = (double)n / 16, chi2 = 0;
    for (int b = 0; b < 16; b++) chi2 += ((double)count[b] - e) * ((double)count[b] - e) / e;
    return chi2;
}

Test(rng, uniform_float_range_mean_buckets) {
    const int64_t n = 1000000;
    double sum = 0;
    int64_t count[16] = {0};
    for (int64_t i = 0; i < n; i++) {
        float u = rng_uniform(99, RNG_STREAM_DROPOUT, (uint64_t)i);
        cr_assert(u >= 0.0f && u < 1.0f, "u = %g", u);
        sum += u;
        count[(int)(u * 16)]++;
    }
    // Mean of n uniforms: sd = 1/sqrt(12 n) = 2.9e-4.
    cr_assert(fabs(sum / n - 0.5) < 2e-3, "mean %g", sum / n);
    double chi2 = chi2_16(count, n);
    cr_assert(chi2 < 50, "chi2 = %g", chi2);
}

Test(rng, uniform_double_range_mean_buckets) {
    const int64_t n = 1000000;
    double sum = 0;
    int64_t count[16] = {0};
    for (int64_t i = 0; i < n; i++) {
        double u = rng_uniform_double(5, RNG_STREAM_INIT, (uint64_t)i);
        cr_assert(u >= 0.0 && u < 1.0);
        sum += u;
        count[(int)(u * 16)]++;
    }
    cr_assert(fabs(sum / n - 0.5) < 2e-3, "mean %g", sum / n);
    cr_assert(chi2_16(count, n) < 50);
}

Test(rng, conversions_extremes) {
    cr_assert_eq(rng_bits_to_float(0), 0.0f);
    cr_assert(rng_bits_to_float(UINT64_MAX) < 1.0f);
    cr_assert_eq(rng_bits_to_float(UINT64_MAX), 1.0f - 0x1.0p-24f);
    cr_assert_eq(rng_bits_to_double(0), 0.0);
    cr_assert_eq(rng_bits_to_double(UINT64_MAX), 1.0 - 0x1.0p-53);
}

Test(rng, sequential_generator) {
    rng_state a, b, c;
    rng_state_seed(&a, 1);
    rng_state_seed(&b, 1);
    rng_state_seed(&c, 2);
    cr_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    int same_c = 0;
    const int n = 1000000;
    double sum = 0;
    int64_t count[16] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t x = rng_next_u64(&a);
        cr_assert_eq(x, rng_next_u64(&b));
        same_c += x == rng_next_u64(&c);
        float u = rng_next_float(&a);
        cr_assert(u >= 0.0f && u < 1.0f);
        sum += u;
        count[(int)(u * 16)]++;
        (void)rng_next_float(&b);
        (void)rng_next_u64(&c);
    }
    cr_assert_eq(same_c, 0);
    cr_assert(fabs(sum / n - 0.5) < 2e-3, "mean %g", sum / n);
    cr_assert(chi2_16(count, n) < 50);
    double d = rng_next_double(&a);
    cr_assert(d >= 0.0 && d < 1.0);
}

// ---- sampler --------------------------------------------------------------------------

// The distribution the table actually encodes: column i is picked with probability 1/n,
// then kept with probability prob[i] or replaced by alias[i].
static void implied_distribution(const alias_table *t, double *out) {
    memset(out, 0, (size_t)t->n * sizeof *out);
    for (int32_t i = 0; i < t->n; i++) {
        cr_assert(t->prob[i] >= 0.0f && t->prob[i] <= 1.0f);
        cr_assert(t->alias[i] >= 0 && t->alias[i] < t->n);
        out[i] += (double)t->prob[i] / t->n;
        out[t->alias[i]] += (1.0 - (double)t->prob[i]) / t->n;
    }
}

static void check_table(const alias_table *t, const int64_t *support, double alpha) {
    double wsum = 0, qsum = 0;
    for (int32_t i = 0; i < t->n; i++) wsum += support[i] > 0 ? pow((double)support[i], alpha) : 0;
    double *implied = malloc((size_t)t->n * sizeof *implied);
    implied_distribution(t, implied);
    for (int32_t i = 0; i < t->n; i++) {
        double expect = support[i] > 0 ? pow((double)support[i], alpha) / wsum : 0;
        cr_assert(fabs(t->q[i] - expect) <= 1e-12 * (expect + 1e-300) + 1e-300,
                  "q[%d] = %.17g, expected %.17g", (int)i, t->q[i], expect);
        // prob is a float: 2^-24 relative error per column.
        cr_assert(fabs(implied[i] - expect) <= 1e-7, "item %d: table encodes %.10g, q %.10g",
                  (int)i, implied[i], expect);
        if (support[i] == 0) cr_assert_eq(implied[i], 0.0, "item %d has support 0", (int)i);
        qsum += t->q[i];
    }
    cr_assert(fabs(qsum - 1) < 1e-12, "sum q = %.17g", qsum);
    free(implied);
}

// Draws n_draws negatives in steps of K and checks the frequencies against q: each within
// 5 standard deviations of a binomial (sd = sqrt(q (1-q) / n)); zero-q items never drawn.
static void check_frequencies(const alias_table *t, uint64_t seed, int64_t n_draws, int32_t K) {
    int64_t *count = calloc((size_t)t->n, sizeof *count);
    int32_t *out = malloc((size_t)K * sizeof *out);
    for (int64_t step = 0; step * K < n_draws; step++) {
        alias_draw_step(t, seed, (uint64_t)step, K, out);
        for (int32_t k = 0; k < K; k++) {
            cr_assert(out[k] >= 0 && out[k] < t->n);
            count[out[k]]++;
        }
    }
    int64_t total = (n_draws + K - 1) / K * K;
    for (int32_t i = 0; i < t->n; i++) {
        double q = t->q[i], f = (double)count[i] / (double)total;
        if (q == 0) {
            cr_assert_eq(count[i], 0, "item %d (q = 0) drawn %lld times", (int)i,
                         (long long)count[i]);
            continue;
        }
        double sd = sqrt(q * (1 - q) / (double)total);
        cr_assert(fabs(f - q) <= 5 * sd, "item %d: frequency %.6f, q %.6f (5 sd = %.6f)", (int)i,
                  f, q, 5 * sd);
    }
    free(out);
    free(count);
}

Test(sampler, alpha1_small) {
    const int64_t support[5] = {1, 2, 3, 4, 0};
    alias_table t;
    alias_build(&t, support, 5, 1.0);
    cr_assert_eq(t.n, 5);
    // By hand: weights 1,2,3,4,0 / 10.
    const double q[5] = {0.1, 0.2, 0.3, 0.4, 0.0};
    for (int i = 0; i < 5; i++) cr_assert(fabs(t.q[i] - q[i]) < 1e-15, "q[%d] = %g", i, t.q[i]);
    check_table(&t, support, 1.0);
    check_frequencies(&t, 12345, 1000000, 2048);
    alias_free(&t);
    cr_assert_null(t.q);
}

Test(sampler, alpha_half_small) {
    const int64_t support[5] = {1, 2, 3, 4, 0};
    alias_table t;
    alias_build(&t, support, 5, 0.5);
    // By hand: weights 1, 1.41421, 1.73205, 2, 0; sum 6.14626.
    const double q[5] = {0.16270, 0.23009, 0.28181, 0.32540, 0.0};
    for (int i = 0; i < 5; i++) cr_assert(fabs(t.q[i] - q[i]) < 1e-5, "q[%d] = %g", i, t.q[i]);
    check_table(&t, support, 0.5);
    check_frequencies(&t, 777, 1000000, 1000);
    alias_free(&t);
}

// alpha == 0: uniform over the items with support > 0; support 0 still never drawn.
Test(sampler, alpha0_uniform_over_supported) {
    const int64_t support[5] = {1, 2, 3, 4, 0};
    alias_table t;
    alias_build(&t, support, 5, 0.0);
    for (int i = 0; i < 4; i++) cr_assert(fabs(t.q[i] - 0.25) < 1e-15);
    cr_assert_eq(t.q[4], 0.0);
    check_table(&t, support, 0.0);
    check_frequencies(&t, 31337, 1000000, 4096);
    alias_free(&t);
}

// Many zero-support items, including at the start and end, and a dominant item.
Test(sampler, zero_support_never_drawn) {
    const int64_t support[10] = {0, 0, 1000, 0, 1, 1, 0, 50, 3, 0};
    alias_table t;
    alias_build(&t, support, 10, 0.75);
    check_table(&t, support, 0.75);
    for (int i = 0; i < 10; i++)
        if (support[i] == 0) cr_assert_eq(t.prob[i], 0.0f, "item %d", i);
    check_frequencies(&t, 5, 1000000, 256);
    alias_free(&t);
}

Test(sampler, single_item) {
    const int64_t support[1] = {7};
    alias_table t;
    alias_build(&t, support, 1, 1.0);
    int32_t out[100];
    alias_draw_step(&t, 1, 2, 100, out);
    for (int k = 0; k < 100; k++) cr_assert_eq(out[k], 0);
    alias_free(&t);
}

// A Zipf-like support over many items: the table encodes q exactly (up to float prob),
// and a chi-square over the draws is consistent with q.
Test(sampler, large_zipf_table_chi_square) {
    const int32_t n = 1000;
    int64_t *support = malloc((size_t)n * sizeof *support);
    rng_state r;
    rng_state_seed(&r, 2024);
    for (int32_t i = 0; i < n; i++)
        support[i] = (rng_next_u64(&r) % 10 == 0) ? 0 : (int64_t)(100000.0 / (1 + i % 97)) + 1;
    alias_table t;
    alias_build(&t, support, n, 0.75);
    check_table(&t, support, 0.75);

    const int32_t K = 2048;
    const int64_t steps = 500;
    int64_t *count = calloc((size_t)n, sizeof *count);
    int32_t *out = malloc((size_t)K * sizeof *out);
    for (int64_t s = 0; s < steps; s++) {
        alias_draw_step(&t, 9, (uint64_t)s, K, out);
        for (int32_t k = 0; k < K; k++) count[out[k]]++;
    }
    double total = (double)(steps * K), chi2 = 0;
    int dof = -1;
    for (int32_t i = 0; i < n; i++) {
        if (t.q[i] == 0) {
            cr_assert_eq(count[i], 0);
            continue;
        }
        double e = t.q[i] * total;
        chi2 += ((double)count[i] - e) * ((double)count[i] - e) / e;
        dof++;
    }
    // chi2 with ~900 dof: mean dof, sd sqrt(2 dof) ~ 42; allow 6 sd.
    cr_assert(chi2 < dof + 6 * sqrt(2.0 * dof), "chi2 = %g with %d dof", chi2, dof);
    free(out);
    free(count);
    alias_free(&t);
    free(support);
}

Test(sampler, deterministic_per_seed_and_step) {
    const int64_t support[8] = {5, 1, 9, 2, 2, 7, 3, 1};
    alias_table t;
    alias_build(&t, support, 8, 1.0);
    enum { K = 64 };
    int32_t a[K], b[K], c[K], d[K];
    alias_draw_step(&t, 42, 1000, K, a);
    alias_draw_step(&t, 42, 1000, K, b);
    alias_draw_step(&t, 42, 1001, K, c);
    alias_draw_step(&t, 43, 1000, K, d);
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert(memcmp(a, c, sizeof a) != 0, "different step, same draws");
    cr_assert(memcmp(a, d, sizeof a) != 0, "different seed, same draws");
    // Draw k does not depend on K: a prefix of a longer step is the shorter step.
    int32_t e[K / 2];
    alias_draw_step(&t, 42, 1000, K / 2, e);
    cr_assert_arr_eq(a, e, sizeof e);
    // ... and is exactly the documented formula.
    for (int k = 0; k < K; k++) {
        uint64_t bits = rng_bits(42, RNG_STREAM_NEGATIVES, (UINT64_C(1000) << 20) + (uint64_t)k);
        uint32_t col = (uint32_t)(((bits >> 32) * 8) >> 32);
        float coin = (float)((uint32_t)bits >> 8) * 0x1.0p-24f;
        int32_t expect = coin < t.prob[col] ? (int32_t)col : t.alias[col];
        cr_assert_eq(a[k], expect, "draw %d", k);
    }
    // Building again from the same input gives the same table.
    alias_table t2;
    alias_build(&t2, support, 8, 1.0);
    cr_assert_arr_eq(t.prob, t2.prob, 8 * sizeof(float));
    cr_assert_arr_eq(t.alias, t2.alias, 8 * sizeof(int32_t));
    alias_draw_step(&t, 1, 2, 0, a);  // K = 0 is allowed
    alias_free(&t2);
    alias_free(&t);
}

Test(sampler, rejects_n_zero, .exit_code = 1) {
    alias_table t;
    const int64_t support[1] = {1};
    alias_build(&t, support, 0, 1.0);
}

Test(sampler, rejects_all_zero_weights, .exit_code = 1) {
    alias_table t;
    const int64_t support[3] = {0, 0, 0};
    alias_build(&t, support, 3, 0.0);
}

Test(sampler, rejects_negative_support, .exit_code = 1) {
    alias_table t;
    const int64_t support[3] = {1, -1, 2};
    alias_build(&t, support, 3, 1.0);
}

Test(sampler, rejects_too_many_negatives, .exit_code = 1) {
    alias_table t;
    const int64_t support[2] = {1, 2};
    alias_build(&t, support, 2, 1.0);
    int32_t out[1];
    alias_draw_step(&t, 1, 1, SAMPLER_MAX_K + 1, out);
}
