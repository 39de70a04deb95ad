// Adagrad with optional (heavy-ball) momentum, as the official GRU4Rec
// (REFERENCE §A.5): acc += g²; step = lr·g/√(acc + 1e-6); v = μ·v − step; p += v
// (p −= step when μ = 0). The accumulator starts at 0; there is no decay.
#ifndef GRUREC_OPTIM_H
#define GRUREC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

// Dense tensor of N values. V may be NULL when mu == 0.
void adagrad_dense(float *p, const float *g, float *acc, float *v, size_t n, float lr, float mu);
// The same with the gradient the sum of N_PARTS >= 2 arrays (the ranks' gradients, read
// where they are), added in part order as the all-reduce adds them: the same bits.
void adagrad_dense_sum(float *p, const float *const *parts, int n_parts, float *acc, float *v, size_t n, float lr,
                       float mu);

// Gradients of rows of a table: one gradient row per distinct table row (duplicates
// summed before). Only these rows' parameters, accumulators and momenta change.
typedef struct {
    int64_t n_items;
    int width;
    int32_t *slot;  // [n_items]: index into rows/grad, −1 when untouched this step
    int32_t *rows;  // [cap] table rows in order of first touch
    float *grad;    // [cap × width]
    int n, cap;
    // Instead of grad (for an update that reads the ranks' gradients where they lie): row
    // k's gradient is the sum of srcs[k·n_srcs + q] over q in order, NULL counting as a
    // row of zeros, as an all-reduce adds them (n_srcs >= 2; 0: grad holds the rows).
    const float *const *srcs;
    int n_srcs;
} row_grads;

void row_grads_init(row_grads *g, int64_t n_items, int width, int cap);
void row_grads_free(row_grads *g);
// The gradient row of table row ITEM (zeroed the first time it is touched this step).
float *row_grads_row(row_grads *g, int32_t item);
// The slot of table row ITEM, assigned if new but NOT zeroed: for a caller that then
// writes every new slot's gradient row whole (e.g. with a matrix product).
int32_t row_grads_slot(row_grads *g, int32_t item);
// Forgets this step's rows (cost proportional to the rows touched, not to the table).
void row_grads_clear(row_grads *g);
void adagrad_rows(float *p, float *acc, float *v, const row_grads *g, float lr, float mu);

// A view of part PART of PARTS of G's rows, a balanced slice in G's order over the same
// rows[], grad[] and slot[] memory (for ranks that update one shared table).
row_grads row_grads_part(const row_grads *g, int part, int parts);

#endif
