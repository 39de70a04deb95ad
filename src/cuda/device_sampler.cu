// The GPU's alias draws (device_sampler.h): one thread per negative, alias_draw's formula.
#include "device_sampler.h"

#include <stdlib.h>

extern "C" {
#include "util/check.h"
}
#include "cuda_check.h"
#include "kernels.h"

struct device_sampler {
    int32_t n, max_k;
    float *prob;
    int32_t *alias, *out;
};

extern "C" device_sampler *device_sampler_create(const alias_table *t, int32_t max_k) {
    CHECK(t->n > 0 && t->prob && t->alias, "device_sampler_create: table not built");
    CHECK(max_k >= 0 && max_k <= SAMPLER_MAX_K, "device_sampler_create: %d negatives", (int)max_k);
    device_sampler *ds = (device_sampler *)xcalloc(1, sizeof *ds);
    ds->n = t->n;
    ds->max_k = max_k;
    CUDA_CHECK(cudaMalloc(&ds->prob, (size_t)t->n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&ds->alias, (size_t)t->n * sizeof(int32_t)));
    CUDA_CHECK(cudaMalloc(&ds->out, (size_t)(max_k ? max_k : 1) * sizeof(int32_t)));
    CUDA_CHECK(cudaMemcpy(ds->prob, t->prob, (size_t)t->n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(ds->alias, t->alias, (size_t)t->n * sizeof(int32_t), cudaMemcpyHostToDevice));
    return ds;
}

extern "C" void device_sampler_free(device_sampler *ds) {
    if (!ds) return;
    CUDA_CHECK(cudaFree(ds->prob));
    CUDA_CHECK(cudaFree(ds->alias));
    CUDA_CHECK(cudaFree(ds->out));
    free(ds);
}

extern "C" step_draws device_sampler_step(const device_sampler *ds, uint64_t seed, uint64_t step) {
    const step_draws d = {ds->prob, ds->alias, ds->n, seed, step, NULL};
    return d;
}

extern "C" int32_t *device_sampler_draw(device_sampler *ds, cudaStream_t st, uint64_t seed, uint64_t step, int32_t K,
                                        int32_t *out) {
    CHECK(K >= 0 && K <= ds->max_k, "device_sampler_draw: %d negatives, room for %d", (int)K, (int)ds->max_k);
    if (!out) out = ds->out;
    k_alias_draws(st, ds->prob, ds->alias, ds->n, seed, step, K, out);
    return out;
}
