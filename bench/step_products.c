// The matrix products of one training step of a one-layer model, exactly the calls
// (shapes, transposes, leading dimensions, β) that the CPU backend makes, run back to
// back through the same sgemm_rm (src/backend/sgemm.c: our kernel where it applies, OpenBLAS
// for the rest; GRUREC_GEMM=openblas for OpenBLAS alone) on one thread with nothing else
// between them. Their GFLOP/s is the ceiling of the trainer's products for that
// configuration: bench/train_bench.sh prints it beside the trainer's own figure.
// usage: grurec-step-products M H U [STEPS]  (M rows, H units, U distinct output columns;
//        the input is H wide: a shared embedding, as the benchmark's 512- and 1000-unit runs)
#include <stdio.h>
#include <stdlib.h>

#include "backend/blas_setup.h"
#include "util/check.h"
#include "util/clock.h"
#include "backend/sgemm.h"

static double flops;

static void gemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_rm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    flops += 2.0 * m * n * k;
}

static float *filled(size_t n, float step) {
    float *a = xcalloc_huge(n * sizeof *a);  // as the trainer's buffers: huge pages where granted
    for (size_t i = 0; i < n; i++) a[i] = (float)(i % 13) * step - 0.06f;  // no subnormals, no overflow
    return a;
}

int main(int argc, char **argv) {
    set_program_name("grurec-step-products");
    blas_select_core(argv);
    sgemm_set_threads(1);
    CHECK(argc >= 4, "usage: grurec-step-products M H U [STEPS]");
    const int M = atoi(argv[1]), H = atoi(argv[2]), U = atoi(argv[3]), steps = argc > 4 ? atoi(argv[4]) : 50;
    CHECK(M > 0 && H > 0 && U > 0 && steps > 0, "M, H, U and STEPS must be positive");
    const int H3 = 3 * H;
    const size_t MH = (size_t)M * H, MH3 = (size_t)M * H3, HH3 = (size_t)H * H3;
    float *x = filled(MH, 0.01f), *W = filled(HH3, 0.001f), *Uw = filled(HH3, 0.001f), *xw = filled(MH3, 0.01f);
    float *h_prev = filled(MH, 0.01f), *gates = filled(MH3, 0.01f), *rh = filled(MH, 0.01f), *h = filled(MH, 0.01f);
    float *Wyu = filled((size_t)U * H, 0.001f), *Ru = filled((size_t)M * U, 0.01f), *dRu = filled((size_t)M * U, 0.001f);
    float *dWy = filled((size_t)U * H, 0), *dh = filled(MH, 0), *dxw = filled(MH3, 0.001f), *drh = filled(MH, 0);
    float *dU = filled(HH3, 0), *dW = filled(HH3, 0), *dx = filled(MH, 0);
    double best = 0;
    for (int round = 0; round < 3; round++) {  // the best of three: the machine's capability, not its noise
        flops = 0;
        double t0 = now_s();
        for (int s = 0; s < steps; s++) {
            // forward: input product, GRU (r, z on h_prev; n on r⊙h), scores over the U columns
            gemm(CblasNoTrans, CblasNoTrans, M, H3, H, x, H, W, H3, 0.0f, xw, H3);
            gemm(CblasNoTrans, CblasNoTrans, M, 2 * H, H, h_prev, H, Uw, H3, 0.0f, gates, H3);
            gemm(CblasNoTrans, CblasNoTrans, M, H, H, rh, H, Uw + 2 * H, H3, 0.0f, gates + 2 * H, H3);
            gemm(CblasNoTrans, CblasTrans, M, U, H, h, H, Wyu, H, 1.0f, Ru, U);
            // backward: output layer, GRU, input product
            gemm(CblasTrans, CblasNoTrans, U, H, M, dRu, U, h, H, 0.0f, dWy, H);
            gemm(CblasNoTrans, CblasNoTrans, M, H, U, dRu, U, Wyu, H, 0.0f, dh, H);
            gemm(CblasNoTrans, CblasTrans, M, H, H, dxw + 2 * H, H3, Uw + 2 * H, H3, 0.0f, drh, H);
            gemm(CblasTrans, CblasNoTrans, H, 2 * H, M, h_prev, H, dxw, H3, 0.0f, dU, H3);
            gemm(CblasTrans, CblasNoTrans, H, H, M, rh, H, dxw + 2 * H, H3, 0.0f, dU + 2 * H, H3);
            gemm(CblasTrans, CblasNoTrans, H, H3, M, x, H, dxw, H3, 0.0f, dW, H3);
            gemm(CblasNoTrans, CblasTrans, M, H, H3, dxw, H3, W, H3, 0.0f, dx, H);
        }
        double g = flops / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    printf("products of one step (M %d, H %d, U %d), kernels %s, OpenBLAS core %s, alone: %.1f GFLOP/s\n", M, H,
           U, sgemm_kernels(), blas_core_name(), best);
    float *all[] = {x, W, Uw, xw, h_prev, gates, rh, h, Wyu, Ru, dRu, dWy, dh, dxw, drh, dU, dW, dx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    return 0;
}
