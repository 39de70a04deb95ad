// The CUDA backend's kernels, each behind a launcher on the backend's stream. The math
// of every element (gates, losses, dropout, Adagrad) is the CPU code's own inline
// functions (gru_math.h, loss_rows.h, loss_block.h, rng.h, adagrad_math.h), compiled for
// the device. No atomics: every sum has a fixed order, so the kernels are deterministic.
// Every sum but the loss's row sums runs in the CPU loop's order and gives the CPU
// backend's bits; the loss (a block per row) combines its partial sums in a fixed tree
// and agrees with the CPU to the rounding of its row sums. The cuBLAS products differ
// from OpenBLAS in the order of their additions.
#ifndef GRUREC_CUDA_KERNELS_H
#define GRUREC_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "model/loss.h"
}
#include "device_sampler.h"  // step_draws

// Kernels launched so far by this process (a backend counts its own by difference).
long long k_launch_count(void);

// dst[i] = table[ids[i]] (rows of W floats; zeros where ids[i] < 0), i < n.
void k_gather_rows(cudaStream_t st, float *dst, const float *table, const int32_t *ids, int n, int w);
// dst[i] = src[pos[i]] / dst[pos[i]] = src[i] (rows of W floats; 64-bit positions), i < n.
void k_gather_rows64(cudaStream_t st, float *dst, const float *src, const int64_t *pos, int n, int w);
void k_scatter_rows64(cudaStream_t st, float *dst, const int64_t *pos, const float *src, int n, int w);
// Inverted dropout: mask[e] = dropout_multiplier(seed, rank, step, slot, e, p); x[e] *= mask[e].
// STEP_AT (or NULL: STEP): the step in device memory, two int32 low first (a graph's launches).
void k_dropout(cudaStream_t st, float *x, float *mask, size_t n, float p, uint64_t seed, int rank, int64_t step,
               const int32_t *step_at, int slot);
// x[e] *= m[e].
void k_mul(cudaStream_t st, float *x, const float *m, size_t n);
// GRU forward, after gates[:, 0:2H] = h·[U_r U_z]: a = xw + b (in place), r and z, r ⊙ h.
void k_gru_fwd_gates(cudaStream_t st, int M, int H, float *xw, const float *b, float *gates, const float *h_prev,
                     float *rh);
// After gates[:, 2H:3H] = (r ⊙ h)·U_c: the candidate (into gates) and h'.
void k_gru_fwd_out(cudaStream_t st, int M, int H, const float *xw, float *gates, const float *h_prev, float *h_new);
// GRU backward: d(candidate) and d(z) pre-activations from dh'.
void k_gru_bwd_cz(cudaStream_t st, int M, int H, const float *gates, const float *h_prev, const float *dh, float *dxw);
// d(r) pre-activation from drh = d(r ⊙ h).
void k_gru_bwd_r(cudaStream_t st, int M, int H, const float *gates, const float *h_prev, const float *drh, float *dxw);
// out[k] = Σ_i A[i·lda + k] (i ascending, from 0), k < n.
void k_col_sums(cudaStream_t st, const float *A, int M, int n, int lda, float *out);
// dst[i·n + k] = row[k].
void k_broadcast_rows(cudaStream_t st, float *dst, const float *row, int M, int n);
// dst[i·n + k] = table[ids[k]] (0 where ids[k] < 0): a gather of single entries and its broadcast.
void k_broadcast_gather(cudaStream_t st, float *dst, const float *table, const int32_t *ids, int M, int n);
// R[i·C + j] = Ru[i·U + col_slot[j]].
void k_gather_cols(cudaStream_t st, float *R, const float *Ru, const int32_t *col_slot, int M, int C, int U);
// The losses of the M × C scores: row_loss[i] = L_i, dR = scale · dL/dR (loss.h).
// scratch: M × 4C floats. log_q may be NULL. A block of 256 threads per row running
// loss_block.h's phases: loss_row_block's bits for T = 256 (L_i up to the last bit of
// the device's log()); loss_row's results to ~1e-7.
void k_loss_rows(cudaStream_t st, loss_config cfg, const float *R, int M, int C, const float *log_q, float scale,
                 float *dR, float *scratch, double *row_loss);
// dRu[i·U + u] = Σ dR[i·C + j] over the columns j of item u (list[off[u] .. off[u+1]),
// ascending), u < U.
void k_segment_sum_cols(cudaStream_t st, float *dRu, const float *dR, const int32_t *off, const int32_t *list,
                        int M, int C, int U);
// Row gradients of the inputs: for segment s, slot = seg_slot[s]:
// grad[slot] = (slot < base ? grad[slot] : 0) + Σ src[i] over i in seg_rows[seg_off[s] ..
// seg_off[s+1]) ascending (rows of W floats).
// COUNTS (k_step_lists', or NULL): base and the live segments read on the device (NSEG
// then bounds them).
void k_segment_add_rows(cudaStream_t st, float *grad, int base, const int32_t *seg_slot, const int32_t *seg_off,
                        const int32_t *seg_rows, int nseg, const int32_t *counts, const float *src, int w);
// out[k] = alias_draw(prob, alias, n, seed, step, k), k < K (sampler.h).
void k_alias_draws(cudaStream_t st, const float *prob, const int32_t *alias, int32_t n, uint64_t seed, uint64_t step,
                   int32_t K, int32_t *out);
// *out = Σ v[i], i ascending from 0 (0 for n = 0): one thread, the CPU loop's order.
void k_sum_doubles(cudaStream_t st, const double *v, int n, double *out);
// Adagrad (+ momentum when v != NULL and mu > 0) on N values / on the rows ROWS of a table
// (the first *LIVE_N of N when LIVE_N is not NULL: a count on the device).
void k_adagrad(cudaStream_t st, float *p, const float *g, float *acc, float *v, size_t n, float lr, float mu);
void k_adagrad_rows(cudaStream_t st, float *p, float *acc, float *v, const int32_t *rows, const float *g, int n,
                    const int32_t *live_n, int w, float lr, float mu);
// Several of those in one launch (up to 4 parts; the same bits as one launch each): a part
// is k_adagrad_rows' arguments, or a dense one (ROWS NULL, N = 1 row of W values).
typedef struct {
    float *p, *acc, *v;
    const int32_t *rows;
    const float *g;
    int n;
    const int32_t *live_n;
    size_t w;
} adagrad_part_t;
void k_adagrad_parts(cudaStream_t st, const adagrad_part_t *parts, int n_parts, float lr, float mu);
// The step's index lists built on the GPU, as the CPU backend builds them on the host
// (cuda_backend.cu, prepare_step_ids; the same slots, orders and CSR lists):
// COLS[0..C) (targets, then negatives) → the distinct items in order of first appearance
// (ROWS[0..U), padded with -1 up to C), each column's slot CSLOT, each slot's columns
// ascending (COFF[0..C], padded slots empty, CLIST); the inputs X[0..M) → segments in
// order of first appearance (SSLOT, SOFF, SROWS ascending), their slots among the
// columns' or after them (SHARED_IN: ROWS[U..]) or their own (EROWS). COUNTS[SL_*] holds
// the sizes. LOG_Q (may be NULL): log q of each column. MAP: one int per item, all -1
// (left so); KEYS: the next power of two >= C; TMP: C + 4M ints.
enum { SL_U, SL_NWY, SL_NSEG, SL_BASE, SL_NE, SL_N };
typedef struct {
    int32_t *cslot, *rows, *coff, *clist, *erows, *sslot, *soff, *srows, *counts;
} step_lists_out;
// D (or NULL: the columns are given): the kernel first draws cols[M + k] =
// alias_draw(prob, alias, n, seed, step, k), k < C - M (as k_alias_draws).
void k_step_lists(cudaStream_t st, int32_t *cols, const step_draws *d, int C, int M, const int32_t *x, int shared_in,
                  const float *log_support, float alpha, float *log_q, int32_t *map, unsigned long long *keys,
                  int32_t *tmp, const step_lists_out *o);
// dst row k = src row SRC[k], or zeros where SRC[k] < 0 (lanes_step's plan), k < M.
void k_move_rows(cudaStream_t st, float *dst, const float *src_rows, const int32_t *src, int M, int w);
// The state carried and moved in one pass (a full step's end, then lanes_step's plan):
// state row k = out row SRC[k] (zeros where SRC[k] < 0) for k < CTL[0], out row k for
// CTL[0] <= k < R; does nothing unless CTL[1] (CTL: device memory, read when it runs).
void k_carry_move(cudaStream_t st, float *state, const float *out, const int32_t *src, const int32_t *ctl, int R, int w);
// For row i of the [M × N] scores: gt[i] = #(s > t), eq[i] = #(s == t), nan[i] = isnan(t),
// t = scores[i·N + targets[i]].
void k_rank_counts(cudaStream_t st, const float *scores, int M, int64_t N, const int32_t *targets,
                   unsigned long long *gt, unsigned long long *eq, int *nan);

#endif
