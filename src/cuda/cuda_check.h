// Error checks for CUDA runtime and cuBLAS calls: through the project's one error path
// (check.h), naming the file, line, call and the library's own message.
#ifndef GRUREC_CUDA_CHECK_H
#define GRUREC_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "util/check.h"

#define CUDA_CHECK(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) fail_at(__FILE__, __LINE__, "CUDA: %s: %s (error %d)", #call,             \
                                       cudaGetErrorString(e_), (int)e_);                                   \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                 \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) fail_at(__FILE__, __LINE__, "cuBLAS: %s: %s (status %d)", #call, \
                                                 cublasGetStatusString(s_), (int)s_);                      \
    } while (0)

// A kernel launch's configuration errors surface at once; its execution errors at the
// next synchronising call, which is checked too.
#define KERNEL_CHECK() CUDA_CHECK(cudaGetLastError())

#endif
