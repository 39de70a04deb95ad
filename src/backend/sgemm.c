// The step's matrix products (sgemm.h): an AVX-512 kernel for the weight gradients,
// OpenBLAS for the rest.
//
// C = Aᵀ·B with a short inner dimension k (the batch), C as large as a weight matrix.
// A register tile of MR rows of C by 32 columns (two zmm, 28 accumulators) runs over the
// k steps, each one row of a 32-wide tile of B (two loads) and MR broadcasts of a row of
// A (Aᵀ's column block, contiguous in A: A is not copied). B (k×n, in L2) is first copied
// tile by tile. The tiles walk C row block by row block and each writes its part of C
// once, straight (beta 0) or added (beta 1): OpenBLAS, for beta 0, first zeroes C in a
// pass of its own. Each element is summed over p in order, as OpenBLAS does for these
// shapes: the bits are the same (tests/train_cli_test.sh compares trained parameters).
// Measured inside the step on the 2-core machine class (50-row batch, 1000 units), the
// four such products ran at 86-93 GFLOP/s with OpenBLAS and at 101-126 with this.
// Products of the forward shape (A·B, few rows) were tried the same way and were slower
// than OpenBLAS inside the step (docs/decisions.md).
#include "backend/sgemm.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"

void openblas_set_num_threads(int);

// The kernel's range: inner dimension up to a batch, C large enough that OpenBLAS's
// zeroing pass and packing cost more than copying B here (below, on the small models'
// gradients, OpenBLAS was faster: 100-unit layers, C of 10-30 thousand values).
enum { MR = 14, NR = 32, MAX_K = 512, MIN_C = 1 << 18 };

static int blas_threads = 1;
// GRUREC_GEMM: openblas (never our kernel), own (wherever it handles the shape: the
// tests), unset (where it is the faster). Read at the first product.
enum { OWN_UNSET = -1, OWN_NEVER, OWN_FASTER, OWN_ALWAYS };
static int own_kernel = OWN_UNSET;

static int own_mode(void) {
    if (own_kernel == OWN_UNSET) {
        const char *want = getenv("GRUREC_GEMM");
        CHECK(!want || !strcmp(want, "openblas") || !strcmp(want, "own"),
              "GRUREC_GEMM=%s: expected openblas or own", want);
        own_kernel = !__builtin_cpu_supports("avx512f") || (want && !strcmp(want, "openblas")) ? OWN_NEVER
                     : want                                                                     ? OWN_ALWAYS
                                                                                                : OWN_FASTER;
    }
    return blas_threads == 1 ? own_kernel : OWN_NEVER;
}

void sgemm_set_threads(int threads) {
    blas_threads = threads;
    openblas_set_num_threads(threads);
    own_mode();  // a bad GRUREC_GEMM stops the command here, before it writes anything
}

const char *sgemm_kernels(void) {
    static const char *names[] = {"openblas", "own", "own (every shape it handles)"};
    return names[own_mode()];
}

// One MR×32 tile (mr rows) over k steps: C[r][:] (=|+=) Σ_p a[p·a_ps + r] · B[p][:], B a
// zero-padded 32-wide tile; m0/m1 mask the columns of C a partial tile covers.
__attribute__((always_inline, target("avx512f"))) static inline void tile(const int mr, int k, const float *a,
                                                                            size_t a_ps, const float *B,
                                                                            float *C, size_t ldc, __mmask16 m0,
                                                                            __mmask16 m1, int add) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++)
        if (r < mr) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += a_ps, B += NR) {
        const __m512 b0 = _mm512_loadu_ps(B), b1 = _mm512_loadu_ps(B + 16);
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++)
            if (r < mr) {
                const __m512 x = _mm512_set1_ps(a[r]);
                c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
                c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
            }
    }
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++)
        if (r < mr) {
            float *cr = C + (size_t)r * ldc;
            if (add) {
                c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
                c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
            }
            _mm512_mask_storeu_ps(cr, m0, c0[r]);
            _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
        }
}

// The tile for a run-time height: one instance per height keeps the accumulators in
// registers.
#define TILE_CASE(R) \
    case R: tile(R, k, a, a_ps, B, C, ldc, m0, m1, add); break;

__attribute__((target("avx512f"))) static void tile_any(int mr, int k, const float *a, size_t a_ps, const float *B,
                                                        float *C, size_t ldc, int width, int add) {
    const __mmask16 m0 = width >= 16 ? 0xFFFF : (__mmask16)((1u << width) - 1);
    const __mmask16 m1 = width >= 32 ? 0xFFFF : width <= 16 ? 0 : (__mmask16)((1u << (width - 16)) - 1);
    switch (mr) {
        TILE_CASE(14) TILE_CASE(13) TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8)
        TILE_CASE(7) TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2) TILE_CASE(1)
    }
}

// Row blocks of at most MR rows, as even as possible (50 rows: 13, 13, 12, 12).
static int block_rows(int m, int b) {
    const int nb = (m + MR - 1) / MR;
    return m / nb + (b < m % nb);
}

// B, copied tile by tile: tile t holds B[0..k)[32t..32t+32) contiguously (zeros past n).
// Read in place, a tile's rows lie ldb apart, and for ldb a multiple of 512 floats (512
// or 1536 units) they fall into a few L1 sets and evict each other.
static _Thread_local float *b_tiles;
static _Thread_local size_t b_tiles_cap;

// C = Aᵀ·B (+C), A k×m, B k×n.
static void gemm_tn(int m, int n, int k, const float *A, int lda, const float *B, int ldb, int add, float *C,
                    int ldc) {
    const int tiles = (n + NR - 1) / NR;
    const size_t need = (size_t)tiles * k * NR;
    if (need > b_tiles_cap) {  // grows in the first steps only; the step loop then allocates nothing
        free(b_tiles);
        b_tiles = xmalloc(need * sizeof *b_tiles);
        b_tiles_cap = need;
    }
    for (int t = 0; t < tiles; t++) {
        const int j = t * NR, w = n - j < NR ? n - j : NR;
        float *bt = b_tiles + (size_t)t * k * NR;
        for (int p = 0; p < k; p++, bt += NR) {
            memcpy(bt, B + (size_t)p * ldb + j, (size_t)w * sizeof *bt);
            if (w < NR) memset(bt + w, 0, (size_t)(NR - w) * sizeof *bt);
        }
    }
    for (int b = 0, i0 = 0; i0 < m; i0 += block_rows(m, b), b++)
        for (int t = 0; t < tiles; t++)
            tile_any(block_rows(m, b), k, A + i0, (size_t)lda, b_tiles + (size_t)t * k * NR,
                     C + (size_t)i0 * ldc + t * NR, (size_t)ldc, n - t * NR, add);
}

void sgemm_rm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (m <= 0 || n <= 0) return;
    const int beta01 = beta == 0.0f || beta == 1.0f;
    const int mode = own_mode();
    if (mode != OWN_NEVER && ta == CblasTrans && tb == CblasNoTrans && beta01 && k > 0 && k <= MAX_K &&
        (mode == OWN_ALWAYS || (size_t)m * n >= MIN_C))
        return gemm_tn(m, n, k, A, lda, B, ldb, beta != 0.0f, C, ldc);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
}
