// grurec's host emulation of the CUDA runtime (-DGRUREC_CUDA_EMU=ON): the few calls, types
// and device-code words that src/cuda/ and src/comm/comm_nccl.c use, so that those files
// compile with the host C++ compiler and their kernels run on the CPU (docs/cuda.md, "The
// CUDA emulation"). A test instrument, not a device: it proves indexing, sizes, copies and
// call sequences; speed, races between threads and the real libraries' bits need a GPU.
//
// What it keeps of CUDA (emu.h has the internals):
//  - Device memory is an arena of its own, inaccessible to host code: each allocation is
//    opened (mprotect) only while a kernel, copy, memset, product or all-reduce given a
//    pointer into it runs, and ends at a guard page, so that a host dereference or an
//    overrun faults at once. New allocations are filled with 0xff bytes (NaN floats).
//  - Work runs in issue order per stream and only when the host synchronises (stream and
//    device synchronisation, D2H copies, cudaFree, cudaStreamQuery); the legacy default
//    stream is ordered with blocking streams only, as on a GPU. No race detection.
//  - Kernels run every block and thread of the grid (one fiber per thread where the block
//    meets a barrier); __syncthreads() is a real barrier, and a block whose threads do not
//    all reach the same one is reported. __shared__ memory is per block and poisoned (0xff)
//    when a block starts.
//  - Environment: GRUREC_EMU_GPUS (device count; default one per local rank), of which
//    CUDA_VISIBLE_DEVICES shows as many as it lists; GRUREC_EMU_GPU_MEMORY (bytes with
//    K/M/G, the memory of the process's device(s); default 2G).
#ifndef GRUREC_EMU_CUDA_RUNTIME_H
#define GRUREC_EMU_CUDA_RUNTIME_H

#include <stddef.h>

#define GRUREC_CUDA_EMULATION 1
#define CUDART_VERSION 13000

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureWrongThread = 908,
} cudaError_t;

typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
#define cudaEventDefault 0x00u
#define cudaEventDisableTiming 0x02u
#define cudaStreamDefault 0x00u
#define cudaStreamNonBlocking 0x01u

// Graphs (emu_graph.c): a stream's captured work, replayed by cudaGraphLaunch.
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
typedef struct CUgraphNode_st *cudaGraphNode_t;
typedef enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
} cudaStreamCaptureMode;
typedef enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
} cudaStreamCaptureStatus;

typedef struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int maxThreadsPerBlock;
    int warpSize;
    int multiProcessorCount;
    int major, minor;
} cudaDeviceProp;

// The thread and block coordinates of device code (kernels read .x only).
typedef struct uint3 {
    unsigned x, y, z;
} uint3;

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize(void);

cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t st);
cudaError_t cudaMemset(void *ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t st);
cudaError_t cudaMemset2DAsync(void *ptr, size_t pitch, int value, size_t width, size_t height, cudaStream_t st);

cudaError_t cudaStreamCreate(cudaStream_t *st);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t st);
cudaError_t cudaStreamSynchronize(cudaStream_t st);
cudaError_t cudaStreamQuery(cudaStream_t st);

// Events and pinned host memory (emu_event.c).
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t ev);
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t st);
cudaError_t cudaEventQuery(cudaEvent_t ev);
cudaError_t cudaEventSynchronize(cudaEvent_t ev);
cudaError_t cudaMallocHost(void **ptr, size_t bytes);
cudaError_t cudaFreeHost(void *ptr);

// Stream capture and graphs (emu_graph.c). While a stream captures, its kernels, copies,
// memsets and cuBLAS products are recorded, not run (kernel arguments by value, as CUDA
// does); a call that would wait for the device (or allocate) is refused and invalidates
// the capture, as on a GPU.
cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t st, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *n);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);

// ---- for device code (emu_grid.c) ----
extern uint3 emu_thread_idx, emu_block_idx, emu_block_dim, emu_grid_dim;
void emu_syncthreads(const char *file, int line);
void *emu_dynamic_shared(void);

#ifdef __cplusplus
}  // extern "C"

// ---- device code: compiled by the host C++ compiler ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
// Static shared memory: one copy, used by one block at a time (blocks run one after the
// other), in a section of its own that emu_grid.c poisons when each block starts.
#define __shared__ static __attribute__((section("grurec_emu_shared")))
#define threadIdx (static_cast<const uint3 &>(emu_thread_idx))
#define blockIdx (static_cast<const uint3 &>(emu_block_idx))
#define blockDim (static_cast<const uint3 &>(emu_block_dim))
#define gridDim (static_cast<const uint3 &>(emu_grid_dim))
#define __syncthreads() emu_syncthreads(__FILE__, __LINE__)

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// C++ overloads of the real cuda_runtime.h.
template <class T>
static inline cudaError_t cudaMalloc(T **ptr, size_t bytes) {
    return cudaMalloc((void **)ptr, bytes);
}

#include "emu_launch.h"
#endif

#endif
