// The step's matrix products (src/backend/sgemm.c) against a double-precision reference, with
// GRUREC_GEMM=own so that our kernel (on AVX-512 machines) runs every shape it handles.
//
//  - every transpose pair, over shapes that cross the kernels' edges: row blocks of up
//    to 14 (m or, for Aᵀ·B, the rows of C: 1, 13-15, 29, 50, 128), 32-wide column tiles
//    with partial tails (n: 1, 15-17, 31-33, 100), inner dimensions that are one, short,
//    and longer than a 256-row chunk (k: 1, 7, 256, 257, 600);
//  - leading dimensions wider than the matrices; beta 0 overwrites C (even NaN in it),
//    beta 1 adds to it; C's padding columns are never written;
//  - tolerance |got - want| <= 1e-5 · Σ|a·b| + 1e-30 per element (fp32 sums of k terms);
//  - the same call twice gives the same bits (the trainer's replicas rely on it).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sgemm.h"

static float value(unsigned i, unsigned salt) {  // reproducible, mixed signs, no subnormals
    unsigned h = (i + 1) * 2654435761u ^ salt * 40503u;
    h ^= h >> 13;
    return (float)((int)(h % 2001) - 1000) / 997.0f;
}

// One product checked element by element; returns the number of failures.
static int check_product(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, float beta) {
    const int ta_ = ta == CblasTrans, tb_ = tb == CblasTrans;
    const int lda = (ta_ ? m : k) + 3, ldb = (tb_ ? k : n) + 5, ldc = n + 2;
    const size_t na = (size_t)(ta_ ? k : m) * lda, nb = (size_t)(tb_ ? n : k) * ldb, nc = (size_t)m * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    float *C0 = malloc(nc * sizeof *C0), *C2 = malloc(nc * sizeof *C2);
    for (size_t i = 0; i < na; i++) A[i] = value((unsigned)i, 1);
    for (size_t i = 0; i < nb; i++) B[i] = value((unsigned)i, 2);
    for (size_t i = 0; i < nc; i++) C0[i] = beta == 0.0f && i % 7 == 0 ? NAN : value((unsigned)i, 3);
    memcpy(C, C0, nc * sizeof *C);
    sgemm_rm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    memcpy(C2, C0, nc * sizeof *C2);
    sgemm_rm(ta, tb, m, n, k, A, lda, B, ldb, beta, C2, ldc);
    int bad = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double want = beta != 0.0f ? C0[(size_t)i * ldc + j] : 0.0, mag = fabs(want);
            for (int p = 0; p < k; p++) {
                const double a = ta_ ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                const double b = tb_ ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                want += a * b;
                mag += fabs(a * b);
            }
            const float got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= 1e-5 * mag + 1e-30) && bad++ < 3)
                cr_log_error("%c%c m %d n %d k %d beta %g: C[%d][%d] = %.9g, expected %.9g", ta_ ? 'T' : 'N',
                             tb_ ? 'T' : 'N', m, n, k, beta, i, j, got, want);
        }
        for (int j = n; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float)) && bad++ < 3)
                cr_log_error("m %d n %d k %d: padding C[%d][%d] written", m, n, k, i, j);
    }
    if (memcmp(C, C2, nc * sizeof *C) && bad++ < 3)
        cr_log_error("m %d n %d k %d: two identical calls gave different bits", m, n, k);
    free(A), free(B), free(C), free(C0), free(C2);
    return bad;
}

static void sweep(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb) {
    setenv("GRUREC_GEMM", "own", 1);  // our kernel for every shape it handles, small ones too
    static const int ms[] = {1, 13, 14, 15, 29, 50, 128}, ns[] = {1, 15, 16, 17, 31, 32, 33, 100},
                     ks[] = {1, 7, 256, 257, 600};
    int bad = 0, runs = 0;
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
            for (size_t c = 0; c < sizeof ks / sizeof *ks; c++)
                for (int beta = 0; beta <= 1; beta++, runs++)
                    bad += check_product(ta, tb, ms[a], ns[b], ks[c], (float)beta);
    cr_log_info("%d products (kernels: %s)", runs, sgemm_kernels());
    cr_expect_eq(bad, 0, "%d wrong elements", bad);
}

Test(sgemm, a_b) { sweep(CblasNoTrans, CblasNoTrans); }
Test(sgemm, at_b) { sweep(CblasTrans, CblasNoTrans); }
Test(sgemm, a_bt) { sweep(CblasNoTrans, CblasTrans); }
Test(sgemm, at_bt) { sweep(CblasTrans, CblasTrans); }

// An empty product leaves C alone; k = 0 scales it by beta (here: clears it).
Test(sgemm, empty_shapes) {
    float A[1] = {1}, B[1] = {1}, C[4] = {1, 2, 3, 4};
    sgemm_rm(CblasNoTrans, CblasNoTrans, 0, 2, 3, A, 3, B, 2, 0.0f, C, 2);
    sgemm_rm(CblasTrans, CblasNoTrans, 2, 0, 3, A, 2, B, 1, 0.0f, C, 2);
    cr_expect(C[0] == 1 && C[3] == 4, "an empty product wrote C");
    sgemm_rm(CblasNoTrans, CblasNoTrans, 2, 2, 0, A, 1, B, 2, 0.0f, C, 2);
    cr_expect(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0, "k = 0 with beta 0 must clear C");
}
