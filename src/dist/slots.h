// The step's gradients read in place (docs/distributed.md): ranks of one machine that keep
// one copy of the item tables each write their gradients (header, row counts, dense
// values, row ids and rows) into their own slot of a segment that every rank maps. A step
// then needs one barrier where the all-reduce needed an all-gather and two waits; each
// rank sums, for its part of each union and its range of the dense values, the other
// ranks' gradients where they lie, in rank order (zeros where a rank has no such row: the
// bits of the all-reduce). The dense update is split by range too, and the ranges are
// traded through the slots around the step's second barrier.
#ifndef GRUREC_SLOTS_H
#define GRUREC_SLOTS_H

#include "dist/exchange.h"

typedef struct {
    comm *c;
    int n_tables;
    size_t n_dense;
    int width[3], cap[3];  // per table: row width, rows of one rank
    // rank q's slot, at these offsets (floats; the ids and counts are int32 in float-sized places)
    size_t off_dense, off_new, off_ids[3], off_rows[3];
    const float **slot;         // [P]
    size_t *dense_at;           // [P + 1]: rank q updates the dense values dense_at[q] to dense_at[q + 1] − 1
    const float **dense_parts;  // [P] every rank's dense gradients of this rank's range, for the update to sum
    row_grads u[3];             // per table: the union of the ranks' rows (ids only)
    const float **srcs[3];      // [part rows × P] each rank's row of each row of this rank's part
    row_grads part[3];          // this rank's part of each union (its rows' gradients: srcs)
    exchange_stats st;
} slots;

// Collective: 1 with the slots mapped; 0 on every rank where the segment cannot be had.
// WIDTHS and CAPS per table as exchange_init's (CAPS: one rank's rows).
int slots_init(slots *sl, comm *c, size_t n_dense, int64_t n_items, const int *widths, const int *caps, int n_tables);
void slots_free(slots *sl);
// Where this rank's backend writes its gradients (backend_grad_buffers): the dense
// values, and ROWS[t] the rows of table t.
float *slots_dense(const slots *sl);
void slots_rows(const slots *sl, float **rows);
// This rank's range of the dense values, and the ranks' gradients of it (P arrays from LO on).
size_t slots_dense_lo(const slots *sl);
size_t slots_dense_hi(const slots *sl);
const float *const *slots_dense_parts(const slots *sl);
// One step: adds HEADER (HDR_N floats, summed in place over the ranks) and the row ids of
// G (whose gradients are in this rank's slot already), passes one comm_node_barrier, and
// sets PART[t] to this rank's part of table t's union (row_grads_part), each row's
// gradient the ranks' rows (srcs) for the update to sum. No slot may be written again
// until every rank has passed the caller's second comm_node_barrier.
void slots_step(slots *sl, float *header, const row_grads *const *g, const row_grads **part);
// Around that second barrier: PUBLISH (before it) puts this rank's updated range of DENSE
// in its slot, FETCH (after it) copies the other ranks' ranges into DENSE, whole again.
void slots_publish_dense(slots *sl, const float *dense);
void slots_fetch_dense(slots *sl, float *dense);
// Completes A (n_dense values whose range of this rank is current: its optimizer state)
// with the other ranks' ranges (collective, by messages: for checkpoints).
void slots_gather_dense(slots *sl, float *a);

#endif
