// The data-parallel step exchange (DESIGN §5): one fused all-reduce of the step header
// and the dense gradients, then, per item table, the rows the step touched: every rank's
// row ids are all-gathered, the same union (rank order, first appearance) is built on
// every rank, and one compact [U × width] buffer is all-reduced, so bytes grow with touched rows × width,
// never with items × width. --sparse-exchange off all-reduces whole tables instead
// (the baseline the benchmark compares against); both give the same bits.
#ifndef GRUREC_EXCHANGE_H
#define GRUREC_EXCHANGE_H

#include <stdint.h>

#include "comm/comm.h"
#include "model/optim.h"

// Where the gradients live and how the fused buffer is summed: host memory and the MPI
// comm layer (exchange_init with MEM = NULL), or a backend's device memory and NCCL
// (src/cuda). Positions are host arrays; CTX is the implementation's.
struct exchange_mem {
    void *ctx;
    float *(*alloc)(void *ctx, size_t n);  // zeroed
    void (*release)(void *ctx, float *p);
    void (*zero)(void *ctx, float *p, size_t n);
    void (*copy)(void *ctx, float *dst, const float *src, size_t n);
    void (*put)(void *ctx, float *dst, const float *host, size_t n);  // host → memory
    void (*get)(void *ctx, float *host, const float *src, size_t n);  // memory → host
    // dst rows POS[k] = src rows k, for k < N rows of W floats
    void (*scatter_rows)(void *ctx, float *dst, const int64_t *pos, const float *src, int n, int w);
    // dst rows k = src rows POS[k] (zeros where POS[k] < 0)
    void (*gather_rows)(void *ctx, float *dst, const float *src, const int64_t *pos, int n, int w);
    // bitwise-identical sum over all ranks, in place
    void (*allreduce)(void *ctx, comm *c, float *buf, size_t n);
};
typedef struct exchange_mem exchange_mem;

enum { HDR_LOSS, HDR_PAIRS, HDR_ACTIVE_NEXT, HDR_STOP, HDR_CHECKPOINT, HDR_N };

typedef struct {
    comm *c;
    int sparse, n_tables;
    size_t n_dense;
    int64_t n_items;
    int width[3];
    row_grads u[3];      // per table: the union of the ranks' rows and their summed gradients
    float *u_grad[3];    // the unions' own gradient buffers (sparse: u[t].grad points into fused)
    int32_t *ids;        // this rank's row ids, prefixed by their count per table
    int64_t *counts;     // [P] ids from each rank
    int64_t *pos;        // where each of this rank's rows goes in the fused buffer (or back)
    const exchange_mem *mem;
    float *fused;        // header | dense | the unions' (or whole tables') gradients, in MEM
                         // (NULL while the comm's shared segment serves instead)
    size_t fused_cap;
    // Ranks sharing the tables (exchange_read_in_place): rank q's slot of a segment they
    // all map holds its header, row counts, dense gradients, row ids and rows,
    // at these offsets (floats; the ids and counts are int32 in float-sized places)
    int in_place;
    size_t off_dense, off_new, off_ids[3], off_rows[3];
    size_t *dense_at;           // [P + 1] rank q updates the dense values dense_at[q] to dense_at[q + 1] − 1
    const float **slots;        // [P] the ranks' slots
    const float **dense_parts;  // [P] the ranks' dense gradients of this rank's range, for the update to sum
    const float **srcs[3];      // [part rows × P] each rank's row of each row of this rank's part
    row_grads part[3];          // this rank's part of each union (its rows' gradients: srcs)
    // statistics since the last exchange_stats_reset
    uint64_t bytes_dense, bytes_sparse;
    double seconds;       // in exchange_step, all of it
    double wait_seconds;  // in its first collective: mostly waiting for the slowest rank
    double sum_seconds;   // in the all-reduce of the fused buffer (the rest: building and reading it);
                          // in place: the header's sum and the unions
    int64_t union_rows, steps;
} exchange;

// MEM: where the gradients given to exchange_step live (NULL: host memory, MPI sums).
void exchange_init(exchange *x, comm *c, int sparse, size_t n_dense, int64_t n_items, const int *widths,
                   const int *caps, int n_tables, const exchange_mem *mem);
// Ranks on one machine that keep one copy of the tables, each updating its part of every
// union (collective, after exchange_init): the step then reads the other ranks' gradients
// where they were made instead of all-reducing copies. Each rank's backend writes its
// gradients to its slot of a segment every rank maps (AT: where, for
// backend_place_grads); exchange_step adds the row ids, passes one comm_node_barrier, sums
// the header, and hands the update, for its part of each union (row_grads_part), the rows
// of the ranks that touched them (row_grads' srcs) and every rank's dense gradients
// (AT->dense_parts). The update sums them in rank order with zeros where a rank has no
// such row: the bits of the all-reduce. The caller updates and passes a second
// comm_node_barrier before the next step (no slot is written while another rank reads it),
// with exchange_publish_dense before it and exchange_fetch_dense after it.
// 1: in use; 0 (on every rank): not possible (messages, whole tables, device memory).
typedef struct {
    float *dense, *rows[3];          // where the backend writes its gradients
    const float *const *dense_parts;  // [n_parts] every rank's dense gradients from dense_lo on, in rank order
    int n_parts;
    size_t dense_lo, dense_hi;        // the dense values this rank updates (exchange_publish_dense)
} exchange_places;
int exchange_read_in_place(exchange *x, exchange_places *at);
// In place, the dense update is split too: each rank updates its range of the dense
// values (AT's dense_lo..dense_hi) in its own copy, then, around the caller's second
// comm_node_barrier, the ranks trade their ranges through the slots: PUBLISH (before the
// barrier) puts this rank's updated range of DENSE there, FETCH (after it) copies the
// others' ranges into DENSE, so that every copy is whole again, bit for bit.
void exchange_publish_dense(exchange *x, const float *dense);
void exchange_fetch_dense(exchange *x, float *dense);
// Completes A (n_dense values, this rank's range valid: its optimizer state) with the
// other ranks' ranges (collective, by messages: for checkpoints).
void exchange_gather_dense(exchange *x, float *a);
void exchange_free(exchange *x);
// One step's exchange in two collectives: an all-gather of every table's touched row ids,
// then one all-reduce of HEADER (HDR_N floats, host), DENSE and the unions' rows (in the
// exchange's memory). HEADER and DENSE are summed in place; U[t] points at table t's
// union (ids on the host) with the summed gradients (in the exchange's memory), valid
// until the next exchange_step. In place (exchange_read_in_place): one comm_node_barrier,
// DENSE stays as it is (the update sums the ranks' own), and U[t] holds this rank's part
// of the union only.
void exchange_step(exchange *x, float *header, float *dense, const row_grads *const *g, const row_grads **u);
void exchange_stats_reset(exchange *x);

#endif
