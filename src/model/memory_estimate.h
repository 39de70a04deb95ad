// What a training run will allocate, worked out before it allocates anything, so that a
// run that cannot fit (e.g. --batch-size 1000000: a B × (B + n_sample) score matrix of
// 4 TB) is refused with the figure instead of failing late with "out of memory".
#ifndef GRUREC_MEMORY_ESTIMATE_H
#define GRUREC_MEMORY_ESTIMATE_H

#include <stddef.h>

#include "model/model.h"

typedef struct {
    size_t tables;       // Wy, by, E and their Adagrad accumulators (and momenta)
    size_t dense;        // the GRU weights, their gradient, accumulator (and momentum)
    size_t activations;  // the training backend's per-lane buffers and score blocks
    size_t sampler;      // the negative sampler's alias table (at its peak while built)
    size_t eval;         // the evaluation scorer: per-lane buffers and eval_batch × n_items scores
    size_t steps;        // lanes and the step's index arrays
    size_t total;
} memory_estimate;

// Bytes one rank of a CPU training run of shape S and config C allocates on its heap
// for the model, the optimizer, the backend (training and evaluation) and the sampler:
// an upper bound, mirroring tensors_alloc, the CPU backend, alias_build and lanes_init
// (the dataset's own arrays are not counted). tests/test_memory.c holds it to the
// allocations these make.
void memory_estimate_cpu(const model_shape *s, const train_config *c, memory_estimate *e);

// Memory this process can still get: MemAvailable (/proc/meminfo), or less under an
// address-space limit (RLIMIT_AS, less what is mapped now). *SOURCE names which one.
// 0 when neither can be read (then nothing is refused).
size_t memory_available(const char **source);

// Refuses (exit 2, one line with the figures, printed by rank 0) a CPU run whose
// estimate exceeds memory_available().
void memory_check_fits(const model_shape *s, const train_config *c);

#endif
