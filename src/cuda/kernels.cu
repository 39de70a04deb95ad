// Kernels of the CUDA backend (kernels.h says what each computes). Elementwise kernels
// use grid-stride loops over size_t indices; reductions give one thread its whole sum,
// in the CPU loop's order, so results are deterministic and match the CPU bits. The
// exception is the loss (loss_rows_block): a block per row, whose row sums combine the
// lanes' partials in a fixed tree (deterministic, not the CPU's order; loss_block.h).
#include "kernels.h"

#include <math.h>

extern "C" {
#include "model/adagrad_math.h"
#include "model/gru_math.h"
#include "model/loss_block.h"
#include "model/loss_rows.h"
#include "data/rng.h"
#include "data/sampler.h"
}
#include "cuda_check.h"
#include "launch.h"

namespace {

const int THREADS = 256;
// k_step_lists sorts its keys in shared memory up to this many (32 KB, within the 48 KB a
// block gets without opting in): up to 4,096 columns, i.e. about 4,000 negatives.
const int STEP_KEYS_SHARED = 4096;

unsigned blocks_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b < 65535u * 16u ? b : 65535u * 16u);  // grid-stride beyond this
}

#define GRID_STRIDE(e, n) \
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < (n); e += (size_t)gridDim.x * blockDim.x)

__global__ void gather_rows(float *dst, const float *table, const int32_t *ids, int n, int w) {
    GRID_STRIDE(e, (size_t)n * w) {
        size_t i = e / w, k = e % w;
        dst[e] = ids[i] < 0 ? 0.0f : table[(size_t)ids[i] * w + k];  // (-1: a padding row)
    }
}

__global__ void gather_rows64(float *dst, const float *src, const int64_t *pos, int n, int w) {
    GRID_STRIDE(e, (size_t)n * w) {
        size_t i = e / w, k = e % w;
        dst[e] = pos[i] < 0 ? 0.0f : src[(size_t)pos[i] * w + k];
    }
}

__global__ void scatter_rows64(float *dst, const int64_t *pos, const float *src, int n, int w) {
    GRID_STRIDE(e, (size_t)n * w) {
        size_t i = e / w, k = e % w;
        dst[(size_t)pos[i] * w + k] = src[e];
    }
}

// A step number from device memory (two int32, low first) where AT is given: a graph's
// kernels are launched once with their arguments, the step changes every launch.
__device__ uint64_t step_of(const int32_t *at, uint64_t step) {
    return at ? (uint64_t)(uint32_t)at[0] | (uint64_t)(uint32_t)at[1] << 32 : step;
}

__global__ void dropout(float *x, float *mask, size_t n, float p, uint64_t seed, int rank, int64_t step_arg,
                        const int32_t *step_at, int slot) {
    const int64_t step = (int64_t)step_of(step_at, (uint64_t)step_arg);
    GRID_STRIDE(e, n) {
        float m = dropout_multiplier(seed, rank, step, slot, e, p);
        mask[e] = m;
        x[e] *= m;
    }
}

__global__ void mul(float *x, const float *m, size_t n) {
    GRID_STRIDE(e, n) x[e] *= m[e];
}

// Thread (i, k), k < H, does the three gate columns k, H + k, 2H + k of row i.
__global__ void gru_fwd_gates(int M, int H, float *xw, const float *b, float *gates, const float *h_prev, float *rh) {
    GRID_STRIDE(e, (size_t)M * H) {
        size_t i = e / H, k = e % H, row = i * 3 * H;
        float *a = xw + row, *g = gates + row;
        a[k] += b[k];
        a[H + k] += b[H + k];
        a[2 * H + k] += b[2 * H + k];
        float r = gru_gate(g[k], a[k]);
        g[k] = r;
        g[H + k] = gru_gate(g[H + k], a[H + k]);
        rh[e] = gru_reset_h(r, h_prev[e]);
    }
}

__global__ void gru_fwd_out(int M, int H, const float *xw, float *gates, const float *h_prev, float *h_new) {
    GRID_STRIDE(e, (size_t)M * H) {
        size_t i = e / H, k = e % H, row = i * 3 * H;
        float *g = gates + row;
        float c = gru_candidate(g[2 * H + k], xw[row + 2 * H + k]);
        g[2 * H + k] = c;
        h_new[e] = gru_h_new(h_prev[e], g[H + k], c);
    }
}

__global__ void gru_bwd_cz(int M, int H, const float *gates, const float *h_prev, const float *dh, float *dxw) {
    GRID_STRIDE(e, (size_t)M * H) {
        size_t i = e / H, k = e % H, row = i * 3 * H;
        float z = gates[row + H + k], c = gates[row + 2 * H + k];
        dxw[row + 2 * H + k] = gru_d_candidate(dh[e], z, c);
        dxw[row + H + k] = gru_d_update(dh[e], c, h_prev[e], z);
    }
}

__global__ void gru_bwd_r(int M, int H, const float *gates, const float *h_prev, const float *drh, float *dxw) {
    GRID_STRIDE(e, (size_t)M * H) {
        size_t i = e / H, k = e % H, row = i * 3 * H;
        dxw[row + k] = gru_d_reset(drh[e], h_prev[e], gates[row + k]);
    }
}

__global__ void col_sums(const float *A, int M, int n, int lda, float *out) {
    GRID_STRIDE(k, (size_t)n) {
        float s = 0.0f;
        for (int i = 0; i < M; i++) s += A[(size_t)i * lda + k];
        out[k] = s;
    }
}

__global__ void broadcast_rows(float *dst, const float *row, int M, int n) {
    GRID_STRIDE(e, (size_t)M * n) dst[e] = row[e % n];
}

// The gather of the rows' entries and their broadcast in one (byu's values, no byu).
__global__ void broadcast_gather(float *dst, const float *table, const int32_t *ids, int M, int n) {
    GRID_STRIDE(e, (size_t)M * n) {
        const int32_t id = ids[e % n];
        dst[e] = id < 0 ? 0.0f : table[id];
    }
}

__global__ void gather_cols(float *R, const float *Ru, const int32_t *col_slot, int M, int C, int U) {
    GRID_STRIDE(e, (size_t)M * C) {
        size_t i = e / C, j = e % C;
        R[e] = Ru[i * U + col_slot[j]];
    }
}

// Threads per row of loss_rows_block. Rows are about as many as multiprocessors (~128),
// so one block is about all an SM gets: 8 warps to hide the latencies; with C ~ 2200,
// ~9 columns per lane.
const int LOSS_BLOCK_THREADS = 256;

// Block i does row i, thread t is lane t of loss_block.h: the same phase functions that
// loss_row_block runs on the CPU, each phase's tree levels separated by barriers.
// part: the lanes' partials, LB_NP x blockDim.x doubles (dynamic shared memory).
__global__ void loss_rows_block(loss_config cfg, const float *R, int C, const float *log_q, float scale, float *dR,
                                float *scratch, double *row_loss) {
    CUDA_DYNAMIC_SHARED(double, part);
    const int i = blockIdx.x, t = threadIdx.x, T = blockDim.x;
    const size_t n = (size_t)C, at = (size_t)i * n;
    const lb_row row = lb_setup(&cfg, R + at, log_q, C, i, scale, dR + at, scratch + 4 * at);
    lb_scalars sc = lb_scalars_init(&row);
    const int np = lb_phases(&row);  // the same in every thread: the barriers below are uniform
    for (int p = 0; p < np; p++) {
        const lb_phase ph = lb_phase_of(&row, p);
        lb_lane(p, t, T, &row, &sc, part);
        __syncthreads();
        for (int m = T; m > 1; m = lb_tree_half(m)) {
            const int h = lb_tree_half(m);
            if (t < m - h) lb_tree_fold(t, h, T, ph, part);
            __syncthreads();
        }
        lb_finish(p, &row, part, T, &sc);
        __syncthreads();  // every thread has read the result before the next phase overwrites part
    }
    lb_final(t, T, &row, &sc);
    if (t == 0) row_loss[i] = sc.k.L;
}

__global__ void segment_sum_cols(float *dRu, const float *dR, const int32_t *off, const int32_t *list, int M, int C,
                                 int U) {
    GRID_STRIDE(e, (size_t)M * U) {
        size_t i = e / U, u = e % U;
        float s = 0.0f;
        for (int q = off[u]; q < off[u + 1]; q++) s += dR[i * C + list[q]];
        dRu[e] = s;
    }
}

__global__ void segment_add_rows(float *grad, int base, const int32_t *seg_slot, const int32_t *seg_off,
                                 const int32_t *seg_rows, int nseg, const int32_t *counts, const float *src, int w) {
    const int live = counts ? counts[SL_NSEG] : nseg;
    if (counts) base = counts[SL_BASE];
    GRID_STRIDE(e, (size_t)nseg * w) {
        size_t s = e / w, k = e % w;
        if ((int)s >= live) continue;
        size_t at = (size_t)seg_slot[s] * w + k;
        float acc = seg_slot[s] < base ? grad[at] : 0.0f;
        for (int q = seg_off[s]; q < seg_off[s + 1]; q++) acc += src[(size_t)seg_rows[q] * w + k];
        grad[at] = acc;
    }
}

// Element E of one part of k_adagrad_parts (ROWS NULL: a dense part, one row of W).
__device__ void adagrad_part(size_t e, float *p, float *acc, float *v, const int32_t *rows, const float *g,
                             int live, size_t w, float lr, float mu) {
    const size_t k = e / w, c = e % w;
    if ((int)k >= live) return;
    const size_t at = rows ? (size_t)rows[k] * w + c : e;
    if (v && mu > 0) adagrad_elem(p + at, g[e], acc + at, v + at, lr, mu);
    else adagrad_elem_nomom(p + at, g[e], acc + at, lr);
}

// A dense update: one part, one row of N.
__global__ void adagrad(float *p, const float *g, float *acc, float *v, size_t n, float lr, float mu) {
    GRID_STRIDE(e, n) adagrad_part(e, p, acc, v, NULL, g, 1, n, lr, mu);
}

__global__ void adagrad_rows(float *p, float *acc, float *v, const int32_t *rows, const float *g, int n,
                             const int32_t *live_n, int w, float lr, float mu) {
    const int live = live_n ? *live_n : n;
    GRID_STRIDE(e, (size_t)n * w) adagrad_part(e, p, acc, v, rows, g, live, (size_t)w, lr, mu);
}

#define ADAGRAD_PART_PARAMS(k) \
    float *p##k, float *a##k, float *v##k, const int32_t *r##k, const float *g##k, int n##k, const int32_t *l##k, size_t w##k
#define ADAGRAD_PART_AT(k, e)                                                                      \
    if (e < (size_t)n##k * w##k) {                                                                 \
        adagrad_part(e, p##k, a##k, v##k, r##k, g##k, l##k ? *l##k : n##k, w##k, lr, mu);        \
        continue;                                                                                  \
    }                                                                                              \
    e -= (size_t)n##k * w##k;

// Up to four updates in one launch: the elements of part 0, then part 1's, ...
__global__ void adagrad_parts(float lr, float mu, size_t total, ADAGRAD_PART_PARAMS(0), ADAGRAD_PART_PARAMS(1),
                              ADAGRAD_PART_PARAMS(2), ADAGRAD_PART_PARAMS(3)) {
    GRID_STRIDE(e0, total) {
        size_t e = e0;
        ADAGRAD_PART_AT(0, e)
        ADAGRAD_PART_AT(1, e)
        ADAGRAD_PART_AT(2, e)
        ADAGRAD_PART_AT(3, e)
    }
}

__global__ void move_rows(float *dst, const float *src_rows, const int32_t *src, int M, int w) {
    GRID_STRIDE(e, (size_t)M * w) {
        size_t k = e / w, c = e % w;
        dst[e] = src[k] < 0 ? 0.0f : src_rows[(size_t)src[k] * w + c];
    }
}

// The carry and the row move in one pass, all R rows: state row k = out row SRC[k] (zeros
// where SRC[k] < 0) for k < ctl[0], out row k beyond; nothing unless ctl[1].
__global__ void carry_move(float *state, const float *out, const int32_t *src, const int32_t *ctl, int R, int w) {
    if (!ctl[1]) return;
    const int M = ctl[0];
    GRID_STRIDE(e, (size_t)R * w) {
        size_t k = e / w, c = e % w;
        state[e] = (int)k >= M ? out[e] : src[k] < 0 ? 0.0f : out[(size_t)src[k] * w + c];
    }
}

// One block per row; integer counts, so the order of the additions does not matter.
__global__ void rank_counts(const float *scores, int64_t N, const int32_t *targets, unsigned long long *gt,
                            unsigned long long *eq, int *nan) {
    __shared__ unsigned long long sg[THREADS], se[THREADS];
    const float *s = scores + (size_t)blockIdx.x * N;
    const float t = s[targets[blockIdx.x]];
    unsigned long long g = 0, q = 0;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
        g += s[j] > t;
        q += s[j] == t;
    }
    sg[threadIdx.x] = g;
    se[threadIdx.x] = q;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) {
            sg[threadIdx.x] += sg[threadIdx.x + half];
            se[threadIdx.x] += se[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        gt[blockIdx.x] = sg[0];
        eq[blockIdx.x] = se[0];
        nan[blockIdx.x] = isnan(t);
    }
}

__global__ void alias_draws(const float *prob, const int32_t *alias, int32_t n, uint64_t seed, uint64_t step,
                            int32_t K, int32_t *out) {
    GRID_STRIDE(k, (size_t)K) out[k] = alias_draw(prob, alias, n, seed, step, (int32_t)k);
}

__global__ void sum_doubles(const double *v, int n, double *out) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    *out = s;
}

// ---- the step's index lists (k_step_lists): one block ----

// Exclusive prefix sums of v[0..n) in place; returns the total. Every thread of the block
// calls it (it has barriers); each sums a contiguous chunk, the chunks' sums are scanned
// in shared memory. Integers: exact, whatever the order.
__device__ int32_t block_scan(int32_t *v, int n, int32_t *part) {
    const int t = threadIdx.x, T = blockDim.x, ch = (n + T - 1) / T;
    const int lo = t * ch < n ? t * ch : n, hi = lo + ch < n ? lo + ch : n;
    __syncthreads();  // v is written by other threads before the call
    int32_t sum = 0;
    for (int i = lo; i < hi; i++) sum += v[i];
    part[t] = sum;
    __syncthreads();
    for (int d = 1; d < T; d <<= 1) {
        const int32_t add = t >= d ? part[t - d] : 0;
        __syncthreads();
        part[t] += add;
        __syncthreads();
    }
    int32_t run = part[t] - sum;
    const int32_t total = part[T - 1];
    for (int i = lo; i < hi; i++) {
        const int32_t x = v[i];
        v[i] = run;
        run += x;
    }
    __syncthreads();
    return total;
}

// Bitonic sort of k[0..n), n a power of two, ascending (one block).
__device__ void block_sort(unsigned long long *k, int n) {
    for (int size = 2; size <= n; size <<= 1)
        for (int half = size >> 1; half > 0; half >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                const int j = i ^ half;
                if (j <= i) continue;
                const unsigned long long a = k[i], b = k[j];
                if ((a > b) == ((i & size) == 0)) k[i] = b, k[j] = a;
            }
            __syncthreads();
        }
}

__device__ int32_t low_of(unsigned long long key) { return (int32_t)(key & 0xffffffffu); }
__device__ int32_t item_of(unsigned long long key) { return (int32_t)(key >> 32); }

// The CPU's prepare_step_ids on the GPU (kernels.h). Columns sorted by (item, column): a
// group per item, its columns ascending (stable by construction); MAP[item] = the group's
// first sorted position, so every column finds its group's first column, whose order
// among the first columns is the item's slot (first appearance, as row_grads_slot).
__global__ void step_lists(int32_t *cols, const float *prob, const int32_t *alias, int32_t n_table, uint64_t seed,
                           uint64_t step_arg, const int32_t *step_at, int C, int M, const int32_t *x, int shared_in,
                           const float *log_support, float alpha, float *log_q, int32_t *map,
                           unsigned long long *keys_global, int P2, int keys_shared, int32_t *tmp, int32_t *cslot, int32_t *rows,
                           int32_t *coff, int32_t *clist, int32_t *erows, int32_t *sslot, int32_t *soff,
                           int32_t *srows, int32_t *counts) {
    __shared__ int32_t part[THREADS];
    CUDA_DYNAMIC_SHARED(unsigned long long, keys_here);
    // the sort's keys in shared memory where they fit (its 78 passes over 4,096 keys stay
    // on the SM), else in global memory
    unsigned long long *keys = keys_shared ? keys_here : keys_global;
    const int t = threadIdx.x, T = blockDim.x;
    int32_t *A = tmp, *F = tmp + C, *S = F + M, *N = S + M, *CS = N + M;
    if (prob) {  // the negatives drawn here: one launch less a step
        const uint64_t step = step_of(step_at, step_arg);
        for (int j = M + t; j < C; j += T) cols[j] = alias_draw(prob, alias, n_table, seed, step, j - M);
        __syncthreads();
    }
    for (int j = t; j < P2; j += T)
        keys[j] = j < C ? ((unsigned long long)(uint32_t)cols[j] << 32) | (uint32_t)j : ~0ull;
    __syncthreads();
    block_sort(keys, P2);
    for (int p = t; p < C; p += T)
        if (p == 0 || item_of(keys[p - 1]) != item_of(keys[p])) map[item_of(keys[p])] = p;
    __syncthreads();
    for (int j = t; j < C; j += T) A[j] = low_of(keys[map[cols[j]]]) == j;
    const int32_t U = block_scan(A, C, part);  // A[first column] = its item's slot
    for (int j = t; j < C; j += T) {
        const int32_t first = low_of(keys[map[cols[j]]]), slot = A[first];
        cslot[j] = slot;
        if (first == j) rows[slot] = cols[j];
        if (log_q) log_q[j] = log_support[cols[j]] * (j < M ? 1.0f : alpha);
    }
    for (int u = U + t; u < C; u += T) rows[u] = -1;  // padding: gathers zeros
    for (int u = t; u < C; u += T) coff[u] = 0;
    __syncthreads();
    for (int p = t; p < C; p += T)  // a group's last column writes its size
        if (p == C - 1 || item_of(keys[p + 1]) != item_of(keys[p])) {
            const int32_t p0 = map[item_of(keys[p])];
            coff[A[low_of(keys[p0])]] = p - p0 + 1;
        }
    block_scan(coff, C, part);
    if (t == 0) coff[C] = C;
    for (int p = t; p < C; p += T) {
        const int32_t p0 = map[item_of(keys[p])];
        clist[coff[A[low_of(keys[p0])]] + (p - p0)] = low_of(keys[p]);
    }
    // The inputs: F[i] = the first row with row i's item; its slot is a column's (shared
    // table, an item among the columns) or a new one after them (shared) or its segment's.
    for (int i = t; i < M; i += T) {
        int32_t f = i;
        for (int k = 0; k < i; k++)
            if (x[k] == x[i]) {
                f = k;
                break;
            }
        F[i] = f;
        S[i] = f == i;
        CS[i] = shared_in && map[x[i]] >= 0 ? A[low_of(keys[map[x[i]]])] : -1;
        N[i] = f == i && CS[i] < 0;
    }
    const int32_t nseg = block_scan(S, M, part);
    const int32_t fresh = block_scan(N, M, part);
    for (int i = t; i < M; i += T) {
        if (F[i] != i) continue;
        const int32_t seg = S[i];
        sslot[seg] = !shared_in ? seg : CS[i] >= 0 ? CS[i] : U + N[i];
        if (shared_in && CS[i] < 0) rows[U + N[i]] = x[i];
        if (!shared_in) erows[seg] = x[i];
        int32_t n = 0;
        for (int k = i; k < M; k++) n += F[k] == i;
        soff[seg] = n;
    }
    block_scan(soff, nseg, part);
    if (t == 0) {
        soff[nseg] = M;
        counts[SL_U] = U;
        counts[SL_NWY] = U + (shared_in ? fresh : 0);
        counts[SL_NSEG] = nseg;
        counts[SL_BASE] = shared_in ? U : 0;
        counts[SL_NE] = shared_in ? 0 : nseg;
    }
    for (int i = t; i < M; i += T) {
        int32_t r = 0;
        for (int k = F[i]; k < i; k++) r += F[k] == F[i];
        srows[soff[S[F[i]]] + r] = i;
    }
    __syncthreads();  // every read of MAP done: clear it for the next step
    for (int p = t; p < C; p += T)
        if (p == 0 || item_of(keys[p - 1]) != item_of(keys[p])) map[item_of(keys[p])] = -1;
}

long long g_launches;  // k_launch_count

}  // namespace

long long k_launch_count(void) { return g_launches; }

// Every launch goes through here or LAUNCH: checked and counted.
#define LAUNCH_CFG(kernel, grid, threads, shared, st, ...)               \
    do {                                                                \
        CUDA_LAUNCH(kernel, grid, threads, shared, st, __VA_ARGS__);     \
        KERNEL_CHECK();                                                 \
        g_launches++;                                                   \
    } while (0)
#define LAUNCH(kernel, n, st, ...)                                          \
    do {                                                                    \
        if ((n) == 0) return;                                               \
        LAUNCH_CFG(kernel, blocks_for(n), THREADS, 0, st, __VA_ARGS__);     \
    } while (0)

void k_gather_rows(cudaStream_t st, float *dst, const float *table, const int32_t *ids, int n, int w) {
    LAUNCH(gather_rows, (size_t)n * w, st, dst, table, ids, n, w);
}
void k_gather_rows64(cudaStream_t st, float *dst, const float *src, const int64_t *pos, int n, int w) {
    LAUNCH(gather_rows64, (size_t)n * w, st, dst, src, pos, n, w);
}
void k_scatter_rows64(cudaStream_t st, float *dst, const int64_t *pos, const float *src, int n, int w) {
    LAUNCH(scatter_rows64, (size_t)n * w, st, dst, pos, src, n, w);
}
void k_dropout(cudaStream_t st, float *x, float *mask, size_t n, float p, uint64_t seed, int rank, int64_t step,
               const int32_t *step_at, int slot) {
    LAUNCH(dropout, n, st, x, mask, n, p, seed, rank, step, step_at, slot);
}
void k_mul(cudaStream_t st, float *x, const float *m, size_t n) { LAUNCH(mul, n, st, x, m, n); }
void k_gru_fwd_gates(cudaStream_t st, int M, int H, float *xw, const float *b, float *gates, const float *h_prev,
                     float *rh) {
    LAUNCH(gru_fwd_gates, (size_t)M * H, st, M, H, xw, b, gates, h_prev, rh);
}
void k_gru_fwd_out(cudaStream_t st, int M, int H, const float *xw, float *gates, const float *h_prev, float *h_new) {
    LAUNCH(gru_fwd_out, (size_t)M * H, st, M, H, xw, gates, h_prev, h_new);
}
void k_gru_bwd_cz(cudaStream_t st, int M, int H, const float *gates, const float *h_prev, const float *dh, float *dxw) {
    LAUNCH(gru_bwd_cz, (size_t)M * H, st, M, H, gates, h_prev, dh, dxw);
}
void k_gru_bwd_r(cudaStream_t st, int M, int H, const float *gates, const float *h_prev, const float *drh, float *dxw) {
    LAUNCH(gru_bwd_r, (size_t)M * H, st, M, H, gates, h_prev, drh, dxw);
}
void k_col_sums(cudaStream_t st, const float *A, int M, int n, int lda, float *out) {
    LAUNCH(col_sums, (size_t)n, st, A, M, n, lda, out);
}
void k_broadcast_rows(cudaStream_t st, float *dst, const float *row, int M, int n) {
    LAUNCH(broadcast_rows, (size_t)M * n, st, dst, row, M, n);
}
void k_broadcast_gather(cudaStream_t st, float *dst, const float *table, const int32_t *ids, int M, int n) {
    LAUNCH(broadcast_gather, (size_t)M * n, st, dst, table, ids, M, n);
}
void k_gather_cols(cudaStream_t st, float *R, const float *Ru, const int32_t *col_slot, int M, int C, int U) {
    LAUNCH(gather_cols, (size_t)M * C, st, R, Ru, col_slot, M, C, U);
}
void k_loss_rows(cudaStream_t st, loss_config cfg, const float *R, int M, int C, const float *log_q, float scale,
                 float *dR, float *scratch, double *row_loss) {
    if (M == 0) return;
    const size_t shared = LB_NP * LOSS_BLOCK_THREADS * sizeof(double);
    LAUNCH_CFG(loss_rows_block, M, LOSS_BLOCK_THREADS, shared, st, cfg, R, C, log_q, scale, dR, scratch, row_loss);
}
void k_segment_sum_cols(cudaStream_t st, float *dRu, const float *dR, const int32_t *off, const int32_t *list,
                        int M, int C, int U) {
    LAUNCH(segment_sum_cols, (size_t)M * U, st, dRu, dR, off, list, M, C, U);
}
void k_segment_add_rows(cudaStream_t st, float *grad, int base, const int32_t *seg_slot, const int32_t *seg_off,
                        const int32_t *seg_rows, int nseg, const int32_t *counts, const float *src, int w) {
    LAUNCH(segment_add_rows, (size_t)nseg * w, st, grad, base, seg_slot, seg_off, seg_rows, nseg, counts, src, w);
}
void k_alias_draws(cudaStream_t st, const float *prob, const int32_t *alias, int32_t n, uint64_t seed, uint64_t step,
                   int32_t K, int32_t *out) {
    LAUNCH(alias_draws, (size_t)K, st, prob, alias, n, seed, step, K, out);
}
static int g_keys_in_shared = 1;
extern "C" void k_step_lists_keys_in_shared(int on) { g_keys_in_shared = on; }
void k_step_lists(cudaStream_t st, int32_t *cols, const step_draws *d, int C, int M, const int32_t *x, int shared_in,
                  const float *log_support, float alpha, float *log_q, int32_t *map, unsigned long long *keys,
                  int32_t *tmp, const step_lists_out *o) {
    int P2 = 1;
    while (P2 < C) P2 *= 2;
    const step_draws none = {NULL, NULL, 0, 0, 0, NULL};
    if (!d) d = &none;
    const int in_shared = g_keys_in_shared && P2 <= STEP_KEYS_SHARED;
    const size_t shmem = in_shared ? (size_t)P2 * sizeof(unsigned long long) : 0;
    LAUNCH_CFG(step_lists, 1, THREADS, shmem, st, cols, d->prob, d->alias, d->n, d->seed, d->step, d->step_at, C, M, x,
               shared_in, log_support, alpha, log_q, map, keys, P2, in_shared, tmp,
               o->cslot, o->rows, o->coff, o->clist, o->erows, o->sslot, o->soff, o->srows, o->counts);
}
void k_sum_doubles(cudaStream_t st, const double *v, int n, double *out) {
    LAUNCH_CFG(sum_doubles, 1, 1, 0, st, v, n, out);
}
void k_adagrad(cudaStream_t st, float *p, const float *g, float *acc, float *v, size_t n, float lr, float mu) {
    LAUNCH(adagrad, n, st, p, g, acc, v, n, lr, mu);
}
void k_adagrad_parts(cudaStream_t st, const adagrad_part_t *q, int n, float lr, float mu) {
    adagrad_part_t x[4] = {};
    size_t total = 0;
    for (int k = 0; k < n && k < 4; k++) x[k] = q[k], total += (size_t)x[k].n * x[k].w;
    for (int k = 0; k < 4; k++) if (x[k].w == 0) x[k].w = 1;  // (an empty part: no division by 0)
#define PART(k) x[k].p, x[k].acc, x[k].v, x[k].rows, x[k].g, x[k].n, x[k].live_n, x[k].w
    LAUNCH(adagrad_parts, total, st, lr, mu, total, PART(0), PART(1), PART(2), PART(3));
#undef PART
}
void k_adagrad_rows(cudaStream_t st, float *p, float *acc, float *v, const int32_t *rows, const float *g, int n,
                    const int32_t *live_n, int w, float lr, float mu) {
    LAUNCH(adagrad_rows, (size_t)n * w, st, p, acc, v, rows, g, n, live_n, w, lr, mu);
}
void k_move_rows(cudaStream_t st, float *dst, const float *src_rows, const int32_t *src, int M, int w) {
    LAUNCH(move_rows, (size_t)M * w, st, dst, src_rows, src, M, w);
}
void k_carry_move(cudaStream_t st, float *state, const float *out, const int32_t *src, const int32_t *ctl, int R, int w) {
    LAUNCH(carry_move, (size_t)R * w, st, state, out, src, ctl, R, w);
}
void k_rank_counts(cudaStream_t st, const float *scores, int M, int64_t N, const int32_t *targets,
                   unsigned long long *gt, unsigned long long *eq, int *nan) {
    if (M == 0) return;
    LAUNCH_CFG(rank_counts, M, THREADS, 0, st, scores, N, targets, gt, eq, nan);
}
