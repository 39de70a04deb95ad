// Row-major single-precision matrix products for the training step:
//   C = op(A)·op(B) + beta·C  (alpha 1).
// The weight gradients are Aᵀ·B with an inner dimension as short as the batch (tens to
// a few hundred) and C as large as a weight matrix. On one thread with AVX-512 our own
// kernel runs them (beta 0 or 1, k <= 512, C of at least 2^18 values) without OpenBLAS's
// separate pass that zeroes C for beta 0, with the same bits (tests/train_cli_test.sh
// checks them; GRUREC_GEMM=openblas turns ours off, e.g. to time bench/step_products.c
// both ways); every other product, and every product on other CPUs or with several
// BLAS threads, goes to OpenBLAS's cblas_sgemm.
// Results are deterministic: the same shapes take the same path and summation order.
#ifndef GRUREC_SGEMM_H
#define GRUREC_SGEMM_H

#include <cblas.h>

void sgemm_rm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

// BLAS threads for the products (also sets OpenBLAS's). Above 1, every product goes to
// OpenBLAS, whose threads then share it.
void sgemm_set_threads(int threads);

// Which implementation sgemm_rm uses for the products our kernel handles: "own" (AVX-512;
// GRUREC_GEMM=own: for every shape it handles, not only the large ones: the tests) or
// "openblas" (no AVX-512, several threads, or GRUREC_GEMM=openblas).
const char *sgemm_kernels(void);

#endif
