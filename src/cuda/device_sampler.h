// The step's negatives drawn on the GPU: the CPU's counter-based alias sampler
// (src/data/sampler.h, alias_draw: shared source), so the GPU draws exactly the host's
// negatives (tests/test_cuda_backend.c checks it) without the host drawing or uploading
// them.
#ifndef GRUREC_DEVICE_SAMPLER_H
#define GRUREC_DEVICE_SAMPLER_H

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "data/sampler.h"

typedef struct device_sampler device_sampler;
// The draws of a step, for a kernel to make (k_step_lists): alias_draw(prob, alias, n, seed, step, k).
typedef struct {
    const float *prob;
    const int32_t *alias;
    int32_t n;
    uint64_t seed, step;
    const int32_t *step_at;  // or NULL: the step in device memory, two int32 low first (replaces STEP)
} step_draws;

// T's table copied to the device (T may be freed after), with room for MAX_K draws.
device_sampler *device_sampler_create(const alias_table *t, int32_t max_k);
void device_sampler_free(device_sampler *ds);
// Queues the K negatives of STEP on ST into OUT (device memory), or NULL: its own array
// (overwritten by the next draw); returns where they will be. As alias_draw_step(T,
// SEED, STEP, K, out).
int32_t *device_sampler_draw(device_sampler *ds, cudaStream_t st, uint64_t seed, uint64_t step, int32_t K,
                             int32_t *out);
// The same draws for k_step_lists to make inside its own launch (kernels.h).
step_draws device_sampler_step(const device_sampler *ds, uint64_t seed, uint64_t step);
// Whether k_step_lists sorts the step's columns in shared memory where they fit (1, the
// default) or always in global memory (0): for the tests, which run both (kernels.cu).
void k_step_lists_keys_in_shared(int on);

#ifdef __cplusplus
}
#endif

#endif
