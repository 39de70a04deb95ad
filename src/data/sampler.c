// Vose's alias method over support^alpha (see sampler.h for the exact draw formula).
#include "data/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "util/check.h"

void alias_build(alias_table *t, const int64_t *support, int32_t n, double alpha) {
    CHECK(n > 0, "alias_build: n = %d items (must be > 0)", (int)n);
    CHECK(isfinite(alpha), "alias_build: sample alpha %g is not finite", alpha);
    double *q = xmalloc((size_t)n * sizeof *q);
    // Weights, summed with Neumaier's compensation (n may be millions).
    double sum = 0, comp = 0;
    int32_t heaviest = -1;
    for (int32_t i = 0; i < n; i++) {
        CHECK(support[i] >= 0, "alias_build: item %d has negative support %lld", (int)i,
              (long long)support[i]);
        double w = support[i] > 0 ? pow((double)support[i], alpha) : 0.0;
        q[i] = w;
        if (w > 0 && (heaviest < 0 || w > q[heaviest])) heaviest = i;
        double s = sum + w;
        comp += fabs(sum) >= fabs(w) ? (sum - s) + w : (w - s) + sum;
        sum = s;
    }
    sum += comp;
    CHECK(heaviest >= 0, "alias_build: every item has weight 0 (no item has support > 0)");
    CHECK(isfinite(sum) && sum > 0, "alias_build: sum of support^%g is not a finite positive "
          "number (%g)", alpha, sum);

    double *p = xmalloc((size_t)n * sizeof *p);
    for (int32_t i = 0; i < n; i++) {
        q[i] /= sum;
        p[i] = q[i] * (double)n;  // mean 1: the alias invariant
    }

    t->n = n;
    t->q = q;
    t->prob = xmalloc((size_t)n * sizeof *t->prob);
    t->alias = xmalloc((size_t)n * sizeof *t->alias);

    // Vose: "small" (p < 1) grows from the front of work[], "large" from the back; the
    // two lists never hold more than n items together.
    int32_t *work = xmalloc((size_t)n * sizeof *work);
    int32_t ns = 0, nl = 0;
    for (int32_t i = 0; i < n; i++) {
        if (p[i] < 1) work[ns++] = i;
        else work[n - 1 - nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        int32_t s = work[--ns], l = work[n - nl--];
        t->prob[s] = (float)p[s];
        t->alias[s] = l;  // l started large, so w_l > 0
        p[l] = (p[l] + p[s]) - 1;
        if (p[l] < 1) work[ns++] = l;
        else work[n - 1 - nl++] = l;
    }
    // Leftovers hold 1 up to rounding: keep them always. The one exception is an item of
    // weight 0, which must never be drawn: send all of its column to the heaviest item.
    while (nl > 0) {
        int32_t i = work[n - nl--];
        t->prob[i] = 1.0f;
        t->alias[i] = i;
    }
    while (ns > 0) {
        int32_t i = work[--ns];
        int zero = q[i] == 0;
        t->prob[i] = zero ? 0.0f : 1.0f;
        t->alias[i] = zero ? heaviest : i;
    }
    free(work);
    free(p);
}

void alias_free(alias_table *t) {
    free(t->prob);
    free(t->alias);
    free(t->q);
    t->prob = NULL;
    t->alias = NULL;
    t->q = NULL;
    t->n = 0;
}

void alias_draw_step(const alias_table *t, uint64_t seed, uint64_t step, int32_t K, int32_t *out) {
    CHECK(t->n > 0 && t->prob && t->alias, "alias_draw_step: table not built");
    CHECK(K >= 0 && K <= SAMPLER_MAX_K, "alias_draw_step: K = %d negatives (must be 0..%d)",
          (int)K, (int)SAMPLER_MAX_K);
    for (int32_t k = 0; k < K; k++) out[k] = alias_draw(t->prob, t->alias, t->n, seed, step, k);
}
