// BPR-MF (Rendle et al. 2009) on sessions as users: see baselines.h.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/baselines.h"
#include "util/check.h"
#include "data/rng.h"

// Counter ranges of RNG_STREAM_BPRMF (disjoint): negatives count from 0.
#define CTR_INIT_Q (UINT64_C(1) << 62)
#define CTR_INIT_P ((UINT64_C(1) << 62) + (UINT64_C(1) << 61))
#define CTR_EPOCH (UINT64_C(1) << 63)
enum { NEG_TRIES = 16 };

void bprmf_defaults(bprmf_options *o) {
    *o = (bprmf_options){.factors = 100, .epochs = 10, .learning_rate = 0.05f, .reg = 0.01f, .init_scale = 0.1f,
                         .seed = 42};
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int sorted_has(const int32_t *v, int64_t n, int32_t x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo] == x;
}

// p · (a - b) with 8 partial sums (vectorises; fixed order, so deterministic).
static float dot_diff(const float *restrict p, const float *restrict a, const float *restrict b, int F) {
    float acc[8] = {0};
    int f = 0;
    for (; f + 8 <= F; f += 8)
        for (int k = 0; k < 8; k++) acc[k] += p[f + k] * (a[f + k] - b[f + k]);
    float x = 0;
    for (; f < F; f++) x += p[f] * (a[f] - b[f]);
    return x + (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

// One BPR step on ln σ(p·(qi - qj)) with gradient factor g = σ(-x); the rows are distinct.
static void sgd_step(float *restrict p, float *restrict qi, float *restrict qj, int F, float g, float lr, float reg) {
    for (int f = 0; f < F; f++) {
        float a = p[f], bi = qi[f], bj = qj[f];
        p[f] = a + lr * (g * (bi - bj) - reg * a);
        qi[f] = bi + lr * (g * a - reg * bi);
        qj[f] = bj + lr * (-g * a - reg * bj);
    }
}

// -ln σ(x) without overflow.
static double neg_log_sigmoid(double x) { return x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }

void bprmf_fit(bprmf_model *m, const csr_sessions *tr, int64_t N, const bprmf_options *o, double *epoch_loss) {
    CHECK(N >= 1, "bprmf_fit: %lld items", (long long)N);
    CHECK(o->factors >= 1 && o->epochs >= 0, "bprmf_fit: %d factors, %d epochs", o->factors, o->epochs);
    const int F = o->factors;
    const int64_t S = tr->n_sessions, E = tr->off[S];
    CHECK(S < ((int64_t)1 << 31), "bprmf_fit: %lld sessions", (long long)S);
    memset(m, 0, sizeof *m);
    m->n_items = N;
    m->n_sessions = S;
    m->factors = F;
    m->Q = xmalloc((size_t)N * (size_t)F * sizeof *m->Q);
    m->P = xmalloc((size_t)(S ? S : 1) * (size_t)F * sizeof *m->P);
    for (size_t k = 0; k < (size_t)N * (size_t)F; k++)
        m->Q[k] = o->init_scale * (2.0f * rng_uniform(o->seed, RNG_STREAM_BPRMF, CTR_INIT_Q + k) - 1.0f);
    for (size_t k = 0; k < (size_t)S * (size_t)F; k++)
        m->P[k] = o->init_scale * (2.0f * rng_uniform(o->seed, RNG_STREAM_BPRMF, CTR_INIT_P + k) - 1.0f);

    // Positives: each session's distinct items, sorted (CSR); pair k belongs to pair_user[k].
    int64_t *p_off = xmalloc((size_t)(S + 1) * sizeof *p_off);
    int32_t *p_item = xmalloc((size_t)(E ? E : 1) * sizeof *p_item);
    p_off[0] = 0;
    int64_t np = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t a = tr->off[s], len = tr->off[s + 1] - a;
        int32_t *dst = p_item + np;
        memcpy(dst, tr->items + a, (size_t)len * sizeof *dst);
        qsort(dst, (size_t)len, sizeof *dst, cmp_i32);
        int64_t w = 0;
        for (int64_t e = 0; e < len; e++) {
            CHECK(dst[e] >= 0 && dst[e] < N, "bprmf_fit: item %d outside 0..%lld", (int)dst[e], (long long)N - 1);
            if (w == 0 || dst[w - 1] != dst[e]) dst[w++] = dst[e];
        }
        np += w;
        p_off[s + 1] = np;
    }
    int32_t *pair_user = xmalloc((size_t)(np ? np : 1) * sizeof *pair_user);
    for (int64_t s = 0; s < S; s++)
        for (int64_t e = p_off[s]; e < p_off[s + 1]; e++) pair_user[e] = (int32_t)s;
    int64_t *order = xmalloc((size_t)(np ? np : 1) * sizeof *order);

    const float lr = o->learning_rate, reg = o->reg;
    uint64_t ctr = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        rng_state r;
        rng_state_seed(&r, rng_bits(o->seed, RNG_STREAM_BPRMF, CTR_EPOCH + (uint64_t)ep));
        for (int64_t k = 0; k < np; k++) order[k] = k;
        for (int64_t k = np - 1; k > 0; k--) {  // Fisher-Yates
            int64_t z = (int64_t)(rng_next_u64(&r) % (uint64_t)(k + 1));
            int64_t t = order[k];
            order[k] = order[z];
            order[z] = t;
        }
        double loss = 0;
        int64_t n_loss = 0;
        for (int64_t k = 0; k < np && N >= 2; k++) {
            int64_t pr = order[k];
            int32_t u = pair_user[pr], i = p_item[pr];
            const int32_t *pos = p_item + p_off[u];
            int64_t npos = p_off[u + 1] - p_off[u];
            int32_t j = i;
            for (int t = 0; t < NEG_TRIES && (t == 0 || sorted_has(pos, npos, j)); t++)
                j = (int32_t)(rng_bits(o->seed, RNG_STREAM_BPRMF, ctr++) % (uint64_t)N);
            if (j == i) continue;  // only the positive itself was drawn: no signal
            float *pu = m->P + (size_t)u * F, *qi = m->Q + (size_t)i * F, *qj = m->Q + (size_t)j * F;
            float x = dot_diff(pu, qi, qj, F);
            loss += neg_log_sigmoid((double)x);
            n_loss++;
            sgd_step(pu, qi, qj, F, 1.0f / (1.0f + expf(x)), lr, reg);  // g = σ(-x)
        }
        if (epoch_loss) epoch_loss[ep] = n_loss ? loss / (double)n_loss : 0.0;
    }
    free(order);
    free(pair_user);
    free(p_off);
    free(p_item);
}

void bprmf_free(bprmf_model *m) {
    free(m->Q);
    free(m->P);
    memset(m, 0, sizeof *m);
}
