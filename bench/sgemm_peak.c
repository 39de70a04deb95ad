// Measures OpenBLAS single-precision GEMM throughput on one thread: the "peak" that
// bench/train_bench.sh compares the trainer's achieved GFLOP/s against.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/blas_setup.h"
#include "util/check.h"
#include "util/clock.h"

void openblas_set_num_threads(int);

int main(int argc, char **argv) {
    set_program_name("grurec-sgemm-peak");
    blas_select_core(argv);
    openblas_set_num_threads(1);
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    CHECK(n > 0 && n <= 8192, "size must be 1..8192");
    float *a = xmalloc(sizeof(float) * n * n), *b = xmalloc(sizeof(float) * n * n), *c = xmalloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.2f;
    }
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {  // the best of five: the machine's capability, not its noise
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = 2.0 * n * n * (double)n / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    printf("sgemm %dx%dx%d, 1 thread, OpenBLAS core %s: %.1f GFLOP/s\n", n, n, n, blas_core_name(), best);
    free(a);
    free(b);
    free(c);
    return 0;
}
