// grurec's host emulation of CUDA (src/cuda/emu/, -DGRUREC_CUDA_EMU=ON) keeps the CUDA
// semantics the GPU code relies on, and reports what a GPU would get wrong silently or
// crash on. CUDA C, compiled by the host C++ compiler in the emulated build only:
//
//  - kernels: every block and thread runs once with its coordinates; __syncthreads() is
//    a real barrier (a shared-memory tree sum gives the reference's bits); __shared__
//    memory (static and dynamic) is per block; a divergent barrier is reported;
//  - memory: host code dereferencing device memory faults, a kernel running past its
//    allocation faults, a host pointer given to one of grurec's kernels is reported and
//    ends grurec through its CUDA error path, copies of the wrong kind or size and
//    GRUREC_EMU_GPU_MEMORY's out-of-memory are errors;
//  - streams: work runs when the host synchronises, the legacy stream ordered with
//    blocking streams and not with non-blocking ones;
//  - graphs: a captured stream's work (copies, kernels, products) replays at each launch
//    with the values in memory then; waiting or allocating during a capture is refused;
//  - cuBLAS: cublasSgemm's column-major semantics (transposes, leading dimensions, beta,
//    k = 0) against a plain loop, and its checks;
//  - devices: GRUREC_EMU_GPUS.
// Failures that end a process run in a child (forked), whose stderr and status are checked.
#include <criterion/criterion.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels.h"
#include "launch.h"

#define OK(call) cr_assert_eq((call), cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

// Runs FN in a child process, its stderr into ERR; returns the wait status.
static int in_child(void (*fn)(void), char *err, size_t size) {
    char path[] = "/tmp/grurec-emu-test-XXXXXX";
    const int fd = mkstemp(path);
    cr_assert(fd >= 0);
    fflush(stderr);
    const pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        fn();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const ssize_t n = pread(fd, err, size - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return status;
}

// The child died of SIG (or, under ASan, which reports a SEGV itself, exited non-zero).
static void expect_died(int status, int sig, const char *err, const char *what) {
    const int by_signal = WIFSIGNALED(status) && WTERMSIG(status) == sig;
    const int asan = WIFEXITED(status) && WEXITSTATUS(status) != 0 && sig == SIGSEGV && strstr(err, "SEGV");
    cr_expect(by_signal || asan, "%s: the child ended with status %#x, not signal %d; its stderr:\n%s", what, status,
              sig, err);
}

static void expect_said(const char *err, const char *text, const char *what) {
    cr_expect(strstr(err, text) != NULL, "%s: stderr lacks \"%s\":\n%s", what, text, err);
}

template <class T>
static T *device_copy(const T *h, size_t n) {
    T *d = NULL;
    OK(cudaMalloc(&d, n * sizeof(T)));
    OK(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <class T>
static void host_copy(T *h, const T *d, size_t n) {
    OK(cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
}

// ---------------------------------------------------------------------------------------
// Kernels

__global__ void coords(unsigned *out) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = (out[i] == 0xffffffffu ? 0 : 1u << 31) | gridDim.x << 20 | blockDim.x << 10 | i;  // once each
}

Test(emu_kernel, every_thread_once_with_its_coordinates) {
    const unsigned grid = 37, block = 96, n = grid * block;
    unsigned *d = NULL;
    OK(cudaMalloc(&d, n * sizeof *d));  // fresh memory holds 0xff bytes
    CUDA_LAUNCH(coords, grid, block, 0, (cudaStream_t)0, d);
    OK(cudaGetLastError());
    unsigned *h = (unsigned *)malloc(n * sizeof *h);
    host_copy(h, d, n);
    for (unsigned i = 0; i < n; i++) cr_assert_eq(h[i], grid << 20 | block << 10 | i, "thread %u: %#x", i, h[i]);
    free(h);
    OK(cudaFree(d));
}

// A tree sum in shared memory, as grurec's reductions: right only if each level's
// barrier holds every thread back until all have written.
__global__ void block_sum(const float *x, float *out) {
    __shared__ float s[256];
    const unsigned t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

Test(emu_kernel, syncthreads_is_a_barrier) {
    enum { B = 5, T = 256 };
    float x[B * T], want[B], got[B];
    for (int i = 0; i < B * T; i++) x[i] = (float)((i * 7919) % 1000) / 7.0f - 60.0f;
    for (int b = 0; b < B; b++) {  // the same tree on the host
        float s[T];
        memcpy(s, x + b * T, sizeof s);
        for (int h = T / 2; h > 0; h /= 2)
            for (int t = 0; t < h; t++) s[t] += s[t + h];
        want[b] = s[0];
    }
    float *dx = device_copy(x, B * T), *dout = NULL;
    OK(cudaMalloc(&dout, sizeof got));
    CUDA_LAUNCH(block_sum, B, T, 0, (cudaStream_t)0, (const float *)dx, dout);
    OK(cudaGetLastError());
    host_copy(got, dout, B);
    for (int b = 0; b < B; b++) cr_expect(got[b] == want[b], "block %d: %.9g, want %.9g", b, got[b], want[b]);
}

// Shared memory starts poisoned (0xff) in every block: block 1 does not see block 0's value.
__global__ void shared_per_block(int *out) {
    __shared__ int v;
    if (blockIdx.x == 0 && threadIdx.x == 0) v = 7;
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// Dynamic shared memory: thread t reads what thread T-1-t wrote.
__global__ void dynamic_reverse(int *out) {
    CUDA_DYNAMIC_SHARED(int, buf);
    buf[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

Test(emu_kernel, shared_memory_is_per_block) {
    int *d = NULL, h[2 * 64];
    OK(cudaMalloc(&d, sizeof h));
    CUDA_LAUNCH(shared_per_block, 2, 32, 0, (cudaStream_t)0, d);
    host_copy(h, d, 2);
    cr_expect_eq(h[0], 7);
    cr_expect_eq(h[1], -1, "block 1 saw %d in a variable only block 0 wrote", h[1]);
    CUDA_LAUNCH(dynamic_reverse, 2, 64, 64 * sizeof(int), (cudaStream_t)0, d);
    OK(cudaGetLastError());
    host_copy(h, d, 2 * 64);
    for (int i = 0; i < 2 * 64; i++) cr_expect_eq(h[i], 63 - i % 64, "thread %d read %d", i, h[i]);
    CUDA_LAUNCH(dynamic_reverse, 1, 32, 64 << 10, (cudaStream_t)0, d);  // more than 48 KiB
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
    CUDA_LAUNCH(dynamic_reverse, 1, 2048, 0, (cudaStream_t)0, d);  // more than 1024 threads
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidConfiguration);
}

__global__ void barrier_in_half(int *out) {
    if (threadIdx.x < 16) __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void two_barriers(int *out) {
    if (threadIdx.x % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

__global__ void barrier_but_thread_0(int *out) {
    if (threadIdx.x > 0) __syncthreads();
    out[threadIdx.x] = 1;
}

#define LAUNCH_AND_SYNC(kernel)                                 \
    do {                                                        \
        int *d = NULL;                                          \
        cudaMalloc(&d, 64 * sizeof(int));                       \
        CUDA_LAUNCH(kernel, 1, 32, 0, (cudaStream_t)0, d);      \
        cudaDeviceSynchronize();                                \
    } while (0)

Test(emu_kernel, divergent_barriers_are_reported) {
    char err[4096];
    int st = in_child(+[] { LAUNCH_AND_SYNC(barrier_in_half); }, err, sizeof err);
    expect_died(st, SIGABRT, err, "a barrier half the block skips");
    expect_said(err, "kernel barrier_in_half, block 0: thread 16 returned while thread 0 waits at the barrier", "");
    st = in_child(+[] { LAUNCH_AND_SYNC(two_barriers); }, err, sizeof err);
    expect_died(st, SIGABRT, err, "two barriers");
    expect_said(err, "kernel two_barriers, block 0: thread 0 waits at the barrier at", "");
    st = in_child(+[] { LAUNCH_AND_SYNC(barrier_but_thread_0); }, err, sizeof err);
    expect_died(st, SIGABRT, err, "a barrier thread 0 skips");
    expect_said(err, "thread 1 reached __syncthreads()", "");
}

// ---------------------------------------------------------------------------------------
// Memory

Test(emu_memory, host_dereference_of_device_memory_faults) {
    char err[4096];
    const int st = in_child(
        +[] {
            float *d = NULL;
            cudaMalloc(&d, 100 * sizeof(float));
            volatile float x = d[10];  // a GPU pointer read by the CPU
            (void)x;
        },
        err, sizeof err);
    expect_died(st, SIGSEGV, err, "host read of device memory");
    expect_said(err, "grurec CUDA emulation: host code touched device memory at", "");
    expect_said(err, "40 bytes into a device allocation of 400 bytes", "");
}

__global__ void write_one_past(float *x, int n) {
    if (threadIdx.x == 0) x[n] = 1.0f;
}

Test(emu_memory, a_kernel_past_its_allocation_faults) {
    char err[4096];
    const int st = in_child(
        +[] {
            float *d = NULL;
            cudaMalloc(&d, 100 * sizeof(float));
            CUDA_LAUNCH(write_one_past, 1, 32, 0, (cudaStream_t)0, d, 100);
            cudaDeviceSynchronize();
        },
        err, sizeof err);
    expect_died(st, SIGSEGV, err, "a kernel writing one past its allocation");
    expect_said(err, "kernel write_one_past (block 0, thread 0) touched device memory at", "");
    expect_said(err, "0 bytes past the end of a device allocation of 400 bytes", "");
}

// grurec's own kernel given a host pointer: the emulation names the kernel and argument,
// and grurec stops through its CUDA error path (KERNEL_CHECK: exit 1) as after the
// illegal address a GPU would report.
Test(emu_memory, a_host_pointer_given_to_a_kernel_is_reported) {
    char err[4096];
    const int st = in_child(
        +[] {
            static float host[64];
            float *d = NULL;
            cudaMalloc(&d, sizeof host);
            k_mul((cudaStream_t)0, host, d, 64);
        },
        err, sizeof err);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x; stderr:\n%s", st, err);
    expect_said(err, "grurec CUDA emulation: kernel mul: argument 1 is", "");
    expect_said(err, "not device memory (a host pointer?): a kernel can only use device memory", "");
    expect_said(err, "an illegal memory access was encountered (error 700)", "");
}

Test(emu_memory, copies_must_match_their_kind_and_size) {
    char err[4096];
    const int st = in_child(
        +[] {
            float h[8] = {0}, h2[8] = {0}, *d = NULL, *d2 = NULL;
            cudaMalloc(&d, sizeof h);
            cudaMalloc(&d2, sizeof h);
            if (cudaMemcpy(d, d2, sizeof h, cudaMemcpyHostToDevice) != cudaErrorInvalidValue) _exit(3);
            if (cudaMemcpy(h2, h, sizeof h, cudaMemcpyHostToDevice) != cudaErrorInvalidValue) _exit(4);
            if (cudaMemcpy(h, d, 2 * sizeof h, cudaMemcpyDeviceToHost) != cudaErrorInvalidValue) _exit(5);
            if (cudaMemsetAsync(d + 4, 0, sizeof h, 0) != cudaErrorInvalidValue) _exit(6);
            if (cudaMemcpy(d, d2, sizeof h, cudaMemcpyDefault) != cudaSuccess) _exit(7);  // inferred: D2D
            if (cudaFree(d + 1) != cudaErrorInvalidValue) _exit(8);
            _exit(0);
        },
        err, sizeof err);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x; stderr:\n%s", st, err);
    expect_said(err, "cudaMemcpyHostToDevice: the source", "");
    expect_said(err, "is device memory, not host memory", "");
    expect_said(err, "cudaMemcpyHostToDevice: the destination", "");
    expect_said(err, "past its end by 32", "");
    expect_said(err, "not the start of a live device allocation (4 bytes into a device allocation of 32 bytes", "");
}

Test(emu_memory, the_memory_cap_gives_out_of_memory) {
    char err[4096];
    const int st = in_child(
        +[] {
            setenv("GRUREC_EMU_GPU_MEMORY", "1M", 1);
            size_t free_b = 0, total = 0;
            void *a = NULL, *b = NULL;
            if (cudaMemGetInfo(&free_b, &total) != cudaSuccess || total != (1 << 20) || free_b != total) _exit(3);
            if (cudaMalloc(&a, 700 << 10) != cudaSuccess) _exit(4);
            if (cudaMalloc(&b, 400 << 10) != cudaErrorMemoryAllocation || b) _exit(5);
            if (cudaGetLastError() != cudaErrorMemoryAllocation || cudaGetLastError() != cudaSuccess) _exit(6);
            if (cudaFree(a) != cudaSuccess || cudaMalloc(&b, 1 << 20) != cudaSuccess) _exit(7);
            _exit(0);
        },
        err, sizeof err);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x; stderr:\n%s", st, err);
}

// ---------------------------------------------------------------------------------------
// Streams: work runs when the host synchronises.

__global__ void copy_ints(const int *src, int *dst, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) dst[i] = src[i];
}

static int copied_after_legacy_memset(unsigned flags) {
    int *a = NULL, *b = NULL, h = 0;
    cudaStream_t s;
    OK(cudaStreamCreateWithFlags(&s, flags));
    OK(cudaMalloc(&a, 4 * sizeof(int)));
    OK(cudaMalloc(&b, 4 * sizeof(int)));
    OK(cudaMemset(a, 0, 4 * sizeof(int)));  // legacy stream: not run yet
    CUDA_LAUNCH(copy_ints, 1, 32, 0, s, (const int *)a, b, 4);
    OK(cudaMemcpyAsync(&h, b, sizeof h, cudaMemcpyDeviceToHost, s));
    OK(cudaDeviceSynchronize());
    OK(cudaStreamDestroy(s));
    return h;
}

Test(emu_stream, the_legacy_stream_orders_blocking_streams_only) {
    cr_expect_eq(copied_after_legacy_memset(cudaStreamDefault), 0, "a blocking stream waits for the legacy stream");
    cr_expect_eq(copied_after_legacy_memset(cudaStreamNonBlocking), -1,
                 "a non-blocking stream does not wait for the legacy stream (it saw the fresh 0xff bytes)");
}

Test(emu_stream, nothing_runs_before_the_host_waits) {
    int *a = NULL, h[4];
    OK(cudaMalloc(&a, sizeof h));
    cudaStream_t s;
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    OK(cudaMemsetAsync(a, 0, sizeof h, s));
    cr_expect_eq(cudaStreamQuery(s), cudaSuccess, "a query runs what can run");
    OK(cudaMemcpyAsync(h, a, sizeof h, cudaMemcpyDeviceToHost, s));
    cr_expect_eq(h[3], 0);
    OK(cudaStreamDestroy(s));
}

// ---------------------------------------------------------------------------------------
// Graphs: stream capture records, a launch replays

// x[i] = x[i] * by[0] + add (ADD: an argument, fixed at capture; BY: device memory).
__global__ void scale_add(float *x, const float *by, float add, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) x[i] = x[i] * by[0] + add;
}

// One "step": BY from pinned memory, the kernel, a product C = X·X (4 x 4), C into pinned.
static void graph_step(cudaStream_t s, cublasHandle_t h, float *x, float *by, const float *pin_by, float *c,
                       float *pin_c, float add) {
    const float one = 1.0f, zero = 0.0f;
    OK(cudaMemcpyAsync(by, pin_by, sizeof(float), cudaMemcpyHostToDevice, s));
    CUDA_LAUNCH(scale_add, 1, 32, 0, s, x, (const float *)by, add, 16);
    cr_assert_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, x, 4, x, 4, &zero, c, 4), CUBLAS_STATUS_SUCCESS);
    OK(cudaMemcpyAsync(pin_c, c, 16 * sizeof(float), cudaMemcpyDeviceToHost, s));
}

// Three steps with BY = 1.5, 0.5, 2: directly (GRAPH 0) or by one captured graph launched
// three times: each launch reads the pinned BY of its own step.
static void run_steps(int graph, float out[3][16]) {
    float x0[16], *pin = NULL;
    for (int i = 0; i < 16; i++) x0[i] = 0.1f * (float)i - 0.7f;
    float *x = device_copy(x0, 16), *by = NULL, *c = NULL;
    OK(cudaMalloc(&by, sizeof(float)));
    OK(cudaMalloc(&c, 16 * sizeof(float)));
    OK(cudaMallocHost((void **)&pin, 17 * sizeof(float)));
    cudaStream_t s;
    cublasHandle_t h;
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
    cudaGraphExec_t exec = NULL;
    if (graph) {
        cudaGraph_t g = NULL;
        cudaStreamCaptureStatus st;
        pin[0] = 99.0f;
        OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        OK(cudaStreamIsCapturing(s, &st));
        cr_expect_eq(st, cudaStreamCaptureStatusActive);
        graph_step(s, h, x, by, pin, c, pin + 1, 0.25f);
        OK(cudaStreamEndCapture(s, &g));
        size_t n = 0;
        OK(cudaGraphGetNodes(g, NULL, &n));
        cr_expect_eq(n, 4, "4 nodes: the copies, the kernel, the product (%zu)", n);
        OK(cudaGraphInstantiate(&exec, g, 0));
        OK(cudaGraphDestroy(g));  // the instantiation keeps its nodes
        OK(cudaStreamSynchronize(s));
        float xh[16];
        host_copy(xh, x, 16);
        cr_expect_eq(memcmp(xh, x0, sizeof x0), 0, "the capture ran nothing");
    }
    const float bys[3] = {1.5f, 0.5f, 2.0f};
    for (int k = 0; k < 3; k++) {
        pin[0] = bys[k];  // (the step before has been waited for: the slot is free)
        if (graph) OK(cudaGraphLaunch(exec, s));
        else graph_step(s, h, x, by, pin, c, pin + 1, 0.25f);
        OK(cudaStreamSynchronize(s));
        memcpy(out[k], pin + 1, 16 * sizeof(float));
    }
    if (graph) OK(cudaGraphExecDestroy(exec));
    cr_assert_eq(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
    OK(cudaStreamDestroy(s));
    OK(cudaFreeHost(pin));
    OK(cudaFree(x));
    OK(cudaFree(by));
    OK(cudaFree(c));
}

Test(emu_graph, a_launch_replays_the_capture_with_the_values_in_memory_now) {
    float direct[3][16], replay[3][16];
    run_steps(0, direct);
    run_steps(1, replay);
    cr_expect_eq(memcmp(direct, replay, sizeof direct), 0, "graph replay != direct execution");
    cr_expect_neq(memcmp(replay[0], replay[1], sizeof replay[0]), 0, "each launch read the pinned value anew");
}

Test(emu_graph, waiting_or_allocating_during_a_capture_is_refused) {
    float *a = NULL, *pageable = (float *)calloc(4, sizeof(float));
    cudaStream_t s;
    cudaGraph_t g = (cudaGraph_t)&g;
    OK(cudaMalloc(&a, 4 * sizeof(float)));
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    const struct {
        const char *what;
        int which;
    } cases[] = {{"cudaStreamSynchronize", 0}, {"cudaDeviceSynchronize", 1}, {"cudaMemcpy", 2},
                 {"cudaMalloc", 3},           {"a pageable copy", 4},       {"cudaStreamQuery", 5}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        OK(cudaMemsetAsync(a, 0, 4 * sizeof(float), s));
        float *more = NULL;
        cudaError_t e = cudaSuccess;
        switch (cases[k].which) {
            case 0: e = cudaStreamSynchronize(s); break;
            case 1: e = cudaDeviceSynchronize(); break;
            case 2: e = cudaMemcpy(pageable, a, 4 * sizeof(float), cudaMemcpyDeviceToHost); break;
            case 3: e = cudaMalloc(&more, 4); break;
            case 4: e = cudaMemcpyAsync(a, pageable, 4 * sizeof(float), cudaMemcpyHostToDevice, s); break;
            case 5: e = cudaStreamQuery(s); break;
        }
        cr_expect_eq(e, cudaErrorStreamCaptureUnsupported, "%s during a capture: %s", cases[k].what,
                     cudaGetErrorName(e));
        cudaStreamCaptureStatus st;
        OK(cudaStreamIsCapturing(s, &st));
        cr_expect_eq(st, cudaStreamCaptureStatusInvalidated, "%s invalidates the capture", cases[k].what);
        cr_expect_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated, "%s", cases[k].what);
        cr_expect_null(g, "an invalidated capture gives no graph");
        (void)cudaGetLastError();
    }
    OK(cudaStreamSynchronize(s));  // after the capture: allowed again
    OK(cudaStreamDestroy(s));
    OK(cudaFree(a));
    free(pageable);
}

// ---------------------------------------------------------------------------------------
// cuBLAS

// C = alpha op(A) op(B) + beta C, column-major, in double.
static void ref_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? A[i * lda + p] : A[p * lda + i]) * (tb ? B[p * ldb + j] : B[j * ldb + p]);
            C[j * ldc + i] = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * C[j * ldc + i]));
        }
}

Test(emu_cublas, sgemm_is_column_major_with_transposes_leading_dimensions_and_beta) {
    cublasHandle_t h;
    cr_assert_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    cr_assert_eq(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);  // accepted, no effect
    const int m = 5, n = 7, ks[3] = {0, 1, 6};
    const float betas[3] = {0.0f, 1.0f, -0.5f};
    float A[16 * 16], B[16 * 16], C00[16 * 16], C0[16 * 16], C[16 * 16], want[16 * 16];
    for (int i = 0; i < 256; i++) {
        A[i] = (float)((i * 37) % 19) / 4.0f - 2.0f;
        B[i] = (float)((i * 11) % 23) / 8.0f - 1.0f;
        C00[i] = (float)(i % 13) - 6.0f;
    }
    float *dA = device_copy(A, 256), *dB = device_copy(B, 256), *dC = NULL;
    OK(cudaMalloc(&dC, sizeof C));
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int q = 0; q < 3; q++)
                for (int r = 0; r < 3; r++) {
                    const int k = ks[q], lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 1;
                    memcpy(C0, C00, sizeof C0);
                    if (betas[r] == 0.0f)  // beta 0: C is not read (NaN stays out)
                        for (int i = 0; i < 256; i++) C0[i] = i % 3 ? C0[i] : NAN;
                    memcpy(want, C0, sizeof C0);
                    OK(cudaMemcpy(dC, C0, sizeof C0, cudaMemcpyHostToDevice));
                    const float alpha = 1.5f;
                    cr_assert_eq(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                             &alpha, dA, lda, dB, ldb, &betas[r], dC, ldc),
                                 CUBLAS_STATUS_SUCCESS);
                    ref_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, betas[r], want, ldc);
                    host_copy(C, dC, 256);
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < ldc; i++) {
                            const float w = want[j * ldc + i], g = C[j * ldc + i];
                            if (i >= m) {  // between the columns: untouched
                                cr_expect(memcmp(&g, &C0[j * ldc + i], sizeof g) == 0, "row %d of the padding", i);
                                continue;
                            }
                            cr_expect(fabsf(g - w) <= 1e-5f * (1 + fabsf(w)),
                                      "op %d %d, k %d, beta %g: C[%d,%d] = %g, want %g", ta, tb, k, betas[r], i, j,
                                      g, w);
                        }
                }
    const float one = 1.0f;
    cr_expect_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, 4, &one, dA, m - 1, dB, 4, &one, dC, m),
                 CUBLAS_STATUS_INVALID_VALUE, "lda below the rows of A");
    cr_expect_eq(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 17, &one, dA, 16, dB, 17, &one, dC, 16),
                 CUBLAS_STATUS_EXECUTION_FAILED, "A and B reach past their allocations");
    cr_assert_eq(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

// ---------------------------------------------------------------------------------------
// Devices

Test(emu_device, the_device_count_is_configurable) {
    char err[4096];
    int st = in_child(
        +[] {
            setenv("GRUREC_EMU_GPUS", "3", 1);
            int n = 0, d = -1;
            if (cudaGetDeviceCount(&n) != cudaSuccess || n != 3) _exit(3);
            if (cudaSetDevice(2) != cudaSuccess || cudaGetDevice(&d) != cudaSuccess || d != 2) _exit(4);
            if (cudaSetDevice(3) != cudaErrorInvalidDevice) _exit(5);
            _exit(0);
        },
        err, sizeof err);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "3 devices: status %#x; stderr:\n%s", st, err);
    st = in_child(
        +[] {
            setenv("GRUREC_EMU_GPUS", "0", 1);
            int n = 5;
            void *p = NULL;
            if (cudaGetDeviceCount(&n) != cudaErrorNoDevice || n != 0) _exit(3);
            if (cudaMalloc(&p, 4) != cudaErrorNoDevice) _exit(4);
            _exit(0);
        },
        err, sizeof err);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no device: status %#x; stderr:\n%s", st, err);
}
