// The data-parallel step exchange (DESIGN §5): one fused all-reduce of the step header
// and the dense gradients, then, per item table, the rows the step touched: every rank's
// row ids are all-gathered, the same sorted union is built on every rank, and one
// compact [U × width] buffer is all-reduced, so bytes grow with touched rows × width,
// never with items × width. --sparse-exchange off all-reduces whole tables instead
// (the baseline the benchmark compares against); both give the same bits.
#ifndef GRUREC_EXCHANGE_H
#define GRUREC_EXCHANGE_H

#include <stdint.h>

#include "comm/comm.h"
#include "optim.h"

enum { HDR_LOSS, HDR_PAIRS, HDR_ACTIVE_NEXT, HDR_STOP, HDR_N };

typedef struct {
    comm *c;
    int sparse;
    float *fused;        // [HDR_N + n_dense]
    size_t n_dense;
    row_grads u[3];      // unions for Wy, by, E
    float *full;         // sparse off: [n_items × max width]
    int64_t n_items;
    // statistics since the last exchange_stats_reset
    uint64_t bytes_dense, bytes_sparse;
    double seconds;
    int64_t union_rows, steps;
} exchange;

void exchange_init(exchange *x, comm *c, int sparse, size_t n_dense, int64_t n_items, const int *widths,
                   const int *caps, int n_tables);
void exchange_free(exchange *x);
// HEADER (HDR_N floats) and DENSE are summed across ranks in place.
void exchange_dense(exchange *x, float *header, float *dense);
// Sums table T's row gradients G across ranks: returns the union with the sums.
const row_grads *exchange_rows(exchange *x, int t, const row_grads *g);
void exchange_stats_reset(exchange *x);

#endif
