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

// What a step's exchange cost, since the last reset (metrics.jsonl's epoch lines). Bytes
// are counted as the message exchange sends them: this rank's ids, the sums all-reduced.
typedef struct {
    uint64_t bytes_dense, bytes_sparse;
    double seconds;       // in the exchange, all of it
    double wait_seconds;  // in its first collective: mostly waiting for the slowest rank
    double sum_seconds;   // in the all-reduce of the fused buffer (the rest: building and reading it);
                          // in place (dist/slots.h): the header's sum and the unions
    int64_t union_rows, steps;
} exchange_stats;

typedef struct {
    comm *c;
    int sparse, n_tables;
    size_t n_dense;
    int64_t n_items;
    int width[3];
    row_grads u[3];      // per table: the union of the ranks' rows and their summed gradients
    float *u_grad[3];    // the unions' own gradient buffers (sparse: u[t].grad points into fused)
    int hdr_ids;         // HDR_N where the header travels with the ids (device memory), else 0
    int32_t *ids;        // [header bits |] this rank's row ids, prefixed by their count per table
    int64_t *counts;     // [P] ids from each rank
    int64_t *pos;        // where each of this rank's rows goes in the fused buffer (or back)
    const exchange_mem *mem;
    float *fused;        // header | dense | the unions' (or whole tables') gradients, in MEM
                         // (NULL while the comm's shared segment serves instead)
    size_t fused_cap;
    exchange_stats st;
} exchange;

// MEM: where the gradients given to exchange_step live (NULL: host memory, MPI sums).
// Host ranks that share a machine build the fused buffer in the comm's shared segment,
// sized here once (collective): the transport is settled at init.
void exchange_init(exchange *x, comm *c, int sparse, size_t n_dense, int64_t n_items, const int *widths,
                   const int *caps, int n_tables, const exchange_mem *mem);
void exchange_free(exchange *x);
// One step's exchange in two collectives: an all-gather of every table's touched row ids,
// then one all-reduce of HEADER (HDR_N floats, host), DENSE and the unions' rows (in the
// exchange's memory). HEADER and DENSE are summed in place; U[t] points at table t's
// union (ids on the host) with the summed gradients (in the exchange's memory), valid
// until the next exchange_step.
void exchange_step(exchange *x, float *header, float *dense, const row_grads *const *g, const row_grads **u);
void exchange_stats_reset(exchange_stats *st);
// Adds to the union U of table T the N ids that it does not hold yet, in order: called for
// every rank's ids in rank order, it gives the order of first appearance, the same on
// every rank, in linear time through the accumulator's slot array (no sort; the caller
// resets the slots of U's rows before the next union).
void row_union_add(row_grads *u, int t, const int32_t *ids, int n);

#endif
