// cuBLAS on OpenBLAS. cublasSgemm checks what cuBLAS checks (sizes, leading dimensions,
// operations) and, beyond it, that each matrix as its op and leading dimension lay it
// out lies inside one device allocation (a GPU would read or write past it); then it
// queues cblas_sgemm in column-major order on the handle's stream: cuBLAS's semantics,
// transposes, leading dimensions and beta (0: C is not read) included. k = 0 gives
// C = beta C. The bits are OpenBLAS's, not cuBLAS's.
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "cublas_v2.h"
#include "emu.h"

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t mode;
};

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    int n = 0;
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = calloc(1, sizeof **handle);
    return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    emu_device_drain();  // cublasDestroy waits for the device
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!emu_stream_valid(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    char why[256];
    if (bytes && !emu_device_range(workspace, bytes, why, sizeof why)) {
        emu_report("cublasSetWorkspace: %zu bytes at %p: %s", bytes, workspace, why);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((unsigned)mode > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    handle->mode = mode;  // no effect: the emulated products are FP32
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    *mode = handle->mode;
    return CUBLAS_STATUS_SUCCESS;
}

typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} sgemm_op;

static int run_sgemm(void *ctx, int wait) {
    (void)wait;
    const sgemm_op *g = ctx;
    const void *ptrs[3] = {g->k ? g->A : NULL, g->k ? g->B : NULL, g->C};
    emu_access_begin("cublasSgemm", ptrs, 3);
    if (g->k == 0 || g->alpha == 0.0f) {  // C = beta C (beta 0: C is not read)
        for (int j = 0; j < g->n; j++)
            for (int i = 0; i < g->m; i++) {
                float *c = &g->C[(size_t)j * g->ldc + i];
                *c = g->beta == 0.0f ? 0.0f : g->beta * *c;
            }
    } else {
        cblas_sgemm(CblasColMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->m, g->n,
                    g->k, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, g->C, g->ldc);
    }
    emu_access_end();
    return 1;
}

// Matrix NAME, ROWS x COLS stored column-major with leading dimension LD, lies in one
// device allocation.
static int matrix_ok(const char *name, const float *p, int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return 1;
    const size_t floats = (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
    char why[256];
    if (emu_device_range(p, floats * sizeof(float), why, sizeof why)) return 1;
    emu_report("cublasSgemm: %s (%d x %d, leading dimension %d: %zu floats from %p) is not inside one device "
               "allocation: %s",
               name, rows, cols, ld, floats, (const void *)p, why);
    return 0;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (emu_sticky_error()) return CUBLAS_STATUS_EXECUTION_FAILED;
    const int ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int rows_a = ta ? k : m, rows_b = tb ? n : k;
    if ((unsigned)transa > CUBLAS_OP_C || (unsigned)transb > CUBLAS_OP_C || m < 0 || n < 0 || k < 0 ||
        lda < (rows_a > 1 ? rows_a : 1) || ldb < (rows_b > 1 ? rows_b : 1) || ldc < (m > 1 ? m : 1) || !alpha || !beta) {
        emu_report("cublasSgemm(op %d, op %d, m %d, n %d, k %d, lda %d, ldb %d, ldc %d): invalid sizes or leading "
                   "dimensions",
                   (int)transa, (int)transb, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    if (emu_in_arena(alpha) || emu_in_arena(beta)) {
        emu_report("cublasSgemm: alpha and beta are host pointers here (CUBLAS_POINTER_MODE_HOST)");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if ((k > 0 && (!matrix_ok("A", A, rows_a, ta ? m : k, lda) || !matrix_ok("B", B, rows_b, tb ? k : n, ldb))) ||
        !matrix_ok("C", C, m, n, ldc))
        return CUBLAS_STATUS_EXECUTION_FAILED;  // (cuBLAS would not know; a GPU would fault)
    sgemm_op *g = malloc(sizeof *g);
    if (!g) return CUBLAS_STATUS_ALLOC_FAILED;
    *g = (sgemm_op){ta, tb, m, n, k, lda, ldb, ldc, *alpha, *beta, A, B, C};
    emu_enqueue(handle->stream, run_sgemm, g, free);
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
        case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the feature required is not supported";
    }
    return "unknown error";
}
