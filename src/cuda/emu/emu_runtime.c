// The CUDA runtime calls of the emulation: devices (GRUREC_EMU_GPUS, default one per local
// rank), memory (emu_arena.c), copies and memsets (queued on their stream, emu_stream.c),
// and errors: cudaGetLastError's last error, and sticky errors after which every call
// fails, as after an illegal address on a GPU. Every check a GPU would fail on is
// reported with a line naming the call, the pointer and why.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

static int g_count = -1, g_device;
static cudaError_t g_last, g_sticky;

static void vreport(const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "grurec CUDA emulation: %s\n", msg);
    fflush(stderr);
}

void emu_report(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
}

void emu_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    abort();
}

cudaError_t emu_set_error(cudaError_t e, int sticky) {
    if (e != cudaSuccess) {
        g_last = e;
        if (sticky && !g_sticky) g_sticky = e;
    }
    return e;
}

cudaError_t emu_sticky_error(void) { return g_sticky; }

#define RETURN_IF_STICKY()          \
    do {                            \
        if (g_sticky) return g_sticky; \
    } while (0)

// ---- devices ----

static int env_int(const char *name, int *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long x = strtol(s, &end, 10);
    if (*end || x < 0 || x > 4096) return 0;
    *v = (int)x;
    return 1;
}

// One emulated GPU per rank of this node unless GRUREC_EMU_GPUS says otherwise; of them,
// CUDA_VISIBLE_DEVICES shows as many as it lists ("": none), as on a GPU machine.
static int device_count(void) {
    if (g_count >= 0) return g_count;
    const char *s = getenv("GRUREC_EMU_GPUS");
    if (s && *s) {
        if (!env_int("GRUREC_EMU_GPUS", &g_count)) emu_fatal("GRUREC_EMU_GPUS=%s: not a number of devices", s);
    } else if (!env_int("OMPI_COMM_WORLD_LOCAL_SIZE", &g_count) && !env_int("SLURM_NTASKS_PER_NODE", &g_count) &&
               !env_int("MPI_LOCALNRANKS", &g_count)) {
        g_count = 1;
    }
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (visible) {
        int listed = *visible ? 1 : 0;
        for (const char *c = visible; *c; c++) listed += *c == ',';
        if (listed < g_count) g_count = listed;
    }
    return g_count;
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return emu_set_error(cudaErrorInvalidValue, 0);
    *count = device_count();
    return *count ? cudaSuccess : emu_set_error(cudaErrorNoDevice, 0);
}

cudaError_t cudaSetDevice(int device) {
    RETURN_IF_STICKY();
    if (device < 0 || device >= device_count()) return emu_set_error(device_count() ? cudaErrorInvalidDevice : cudaErrorNoDevice, 0);
    g_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return emu_set_error(cudaErrorInvalidValue, 0);
    if (!device_count()) return emu_set_error(cudaErrorNoDevice, 0);
    *device = g_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (!prop) return emu_set_error(cudaErrorInvalidValue, 0);
    if (device < 0 || device >= device_count()) return emu_set_error(cudaErrorInvalidDevice, 0);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "EMULATED on the host CPU by grurec's CUDA emulation");
    prop->totalGlobalMem = emu_arena_capacity();
    prop->sharedMemPerBlock = 48 << 10;
    prop->maxThreadsPerBlock = 1024;
    prop->warpSize = 32;
    prop->multiProcessorCount = 1;
    prop->major = 9;
    return cudaSuccess;
}

#define RETURN_IF_CAPTURING(call, st)                          \
    do {                                                       \
        const cudaError_t e_ = emu_capture_refuses(call, st); \
        if (e_) return e_;                                     \
    } while (0)

cudaError_t cudaDeviceSynchronize(void) {
    RETURN_IF_STICKY();
    RETURN_IF_CAPTURING("cudaDeviceSynchronize", NULL);
    emu_device_drain();
    return cudaSuccess;
}

// ---- memory ----

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    RETURN_IF_STICKY();
    if (!ptr) return emu_set_error(cudaErrorInvalidValue, 0);
    *ptr = NULL;
    RETURN_IF_CAPTURING("cudaMalloc", NULL);
    if (!device_count()) return emu_set_error(cudaErrorNoDevice, 0);
    if (bytes == 0) return cudaSuccess;
    *ptr = emu_arena_alloc(bytes);
    return *ptr ? cudaSuccess : emu_set_error(cudaErrorMemoryAllocation, 0);
}

cudaError_t cudaFree(void *ptr) {
    RETURN_IF_STICKY();
    if (!ptr) return cudaSuccess;
    RETURN_IF_CAPTURING("cudaFree", NULL);
    emu_device_drain();  // cudaFree waits for the device, as on a GPU
    if (emu_arena_free(ptr)) return cudaSuccess;
    char why[256];
    emu_describe(ptr, why, sizeof why);
    emu_report("cudaFree(%p): not the start of a live device allocation (%s)", ptr, why);
    return emu_set_error(cudaErrorInvalidValue, 0);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    RETURN_IF_STICKY();
    if (!free_bytes || !total_bytes) return emu_set_error(cudaErrorInvalidValue, 0);
    *total_bytes = emu_arena_capacity();
    *free_bytes = *total_bytes - emu_arena_used();
    return cudaSuccess;
}

// ---- copies and memsets ----

typedef struct {
    void *dst;
    const void *src;  // device memory, or a staged copy of host memory
    void *staged;
    size_t bytes;
    cudaMemcpyKind kind;
} copy_op;

static const char *kind_name(cudaMemcpyKind k) {
    static const char *const names[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost",
                                        "cudaMemcpyDeviceToDevice", "cudaMemcpyDefault"};
    return (unsigned)k <= 4 ? names[k] : "an unknown kind";
}

static int run_copy(void *ctx, int wait) {
    (void)wait;
    copy_op *c = ctx;
    const void *ptrs[2] = {c->kind == cudaMemcpyHostToDevice || c->kind == cudaMemcpyDeviceToDevice ? c->dst : NULL,
                           c->kind == cudaMemcpyDeviceToHost || c->kind == cudaMemcpyDeviceToDevice ? c->src : NULL};
    emu_access_begin(c->kind == cudaMemcpyHostToDevice   ? "a copy to the device"
                     : c->kind == cudaMemcpyDeviceToHost ? "a copy from the device"
                                                         : "a copy on the device",
                     ptrs, 2);
    memcpy(c->dst, c->src, c->bytes);  // (overlapping copies are an error: ASan says so)
    emu_access_end();
    return 1;
}

static void destroy_copy(void *ctx) {
    copy_op *c = ctx;
    free(c->staged);
    free(c);
}

// One side of a copy is as KIND says: device memory holding the whole range, or host memory.
static int copy_side_ok(const char *call, cudaMemcpyKind kind, const char *side, const void *p, size_t bytes,
                        int device) {
    char why[256];
    if (device && !emu_device_range(p, bytes, why, sizeof why)) {
        emu_report("%s of %zu bytes, %s: the %s %p is %s", call, bytes, kind_name(kind), side, p, why);
        return 0;
    }
    if (!device && emu_in_arena(p)) {
        emu_report("%s of %zu bytes, %s: the %s %p is device memory, not host memory", call, bytes, kind_name(kind),
                   side, p);
        return 0;
    }
    return 1;
}

static cudaError_t copy(const char *call, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                        cudaStream_t st, int sync) {
    RETURN_IF_STICKY();
    if (!emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if ((unsigned)kind > cudaMemcpyDefault) return emu_set_error(cudaErrorInvalidMemcpyDirection, 0);
    if (kind == cudaMemcpyDefault)
        kind = (cudaMemcpyKind)(emu_in_arena(src) ? (emu_in_arena(dst) ? 3 : 2) : (emu_in_arena(dst) ? 1 : 0));
    const int src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    const int dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    if (!copy_side_ok(call, kind, "source", src, bytes, src_dev) ||
        !copy_side_ok(call, kind, "destination", dst, bytes, dst_dev))
        return emu_set_error(cudaErrorInvalidValue, 0);
    if (bytes == 0) return cudaSuccess;
    const int pinned = emu_pinned(kind == cudaMemcpyHostToDevice ? src : dst, bytes);
    // Synchronous with the host (or staged at the call): not in a capture.
    if (sync || kind == cudaMemcpyHostToHost || (!pinned && kind != cudaMemcpyDeviceToDevice))
        RETURN_IF_CAPTURING(sync ? call : "a copy from or to pageable host memory", st);
    if (kind == cudaMemcpyHostToHost) {  // synchronous with the host
        emu_stream_drain(st, 1);
        memcpy(dst, src, bytes);
        return cudaSuccess;
    }
    copy_op *c = calloc(1, sizeof *c);
    if (!c) emu_fatal("out of host memory");
    *c = (copy_op){dst, src, NULL, bytes, kind};
    if (kind == cudaMemcpyHostToDevice && !pinned) {  // pageable host memory is staged before the call returns
        c->staged = malloc(bytes);
        if (!c->staged) emu_fatal("out of host memory");
        memcpy(c->staged, src, bytes);
        c->src = c->staged;
    }
    emu_enqueue(st, run_copy, c, destroy_copy);
    // A copy into pageable host memory returns when it is done; cudaMemcpy from host memory too.
    // (Pinned memory: an asynchronous copy returns at once.)
    if ((kind == cudaMemcpyDeviceToHost && (sync || !pinned)) || (sync && kind == cudaMemcpyHostToDevice))
        emu_stream_drain(st, 1);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t st) {
    return copy("cudaMemcpyAsync", dst, src, bytes, kind, st, 0);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    return copy("cudaMemcpy", dst, src, bytes, kind, NULL, 1);
}

typedef struct {
    char *ptr;
    size_t pitch, width, height;
    int value;
} memset_op;

static int run_memset(void *ctx, int wait) {
    (void)wait;
    memset_op *m = ctx;
    const void *ptrs[1] = {m->ptr};
    emu_access_begin("a memset on the device", ptrs, 1);
    for (size_t r = 0; r < m->height; r++) memset(m->ptr + r * m->pitch, m->value, m->width);
    emu_access_end();
    return 1;
}

static cudaError_t memset_2d(const char *call, void *ptr, size_t pitch, int value, size_t width, size_t height,
                             cudaStream_t st) {
    RETURN_IF_STICKY();
    if (!emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if (width == 0 || height == 0) return cudaSuccess;
    char why[256];
    if (width > pitch && height > 1) {
        emu_report("%s: width %zu is wider than the pitch %zu", call, width, pitch);
        return emu_set_error(cudaErrorInvalidValue, 0);
    }
    const size_t extent = pitch * (height - 1) + width;
    if (!emu_device_range(ptr, extent, why, sizeof why)) {
        emu_report("%s of %zu bytes (%zu rows of %zu, pitch %zu) at %p: %s", call, extent, height, width, pitch, ptr, why);
        return emu_set_error(cudaErrorInvalidValue, 0);
    }
    memset_op *m = malloc(sizeof *m);
    if (!m) emu_fatal("out of host memory");
    *m = (memset_op){ptr, pitch, width, height, value};
    emu_enqueue(st, run_memset, m, free);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t st) {
    return memset_2d("cudaMemsetAsync", ptr, bytes, value, bytes, 1, st);
}

// Asynchronous with the host, on the legacy default stream (as on a GPU; which no capture
// may use).
cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    RETURN_IF_CAPTURING("cudaMemset", NULL);
    return memset_2d("cudaMemset", ptr, bytes, value, bytes, 1, NULL);
}

cudaError_t cudaMemset2DAsync(void *ptr, size_t pitch, int value, size_t width, size_t height, cudaStream_t st) {
    return memset_2d("cudaMemset2DAsync", ptr, pitch, value, width, height, st);
}

// ---- streams ----

cudaError_t cudaStreamCreate(cudaStream_t *st) { return cudaStreamCreateWithFlags(st, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags) {
    RETURN_IF_STICKY();
    if (!st || flags > cudaStreamNonBlocking) return emu_set_error(cudaErrorInvalidValue, 0);
    if (!device_count()) return emu_set_error(cudaErrorNoDevice, 0);
    return emu_set_error(emu_stream_create(st, flags), 0);
}

cudaError_t cudaStreamDestroy(cudaStream_t st) {
    RETURN_IF_STICKY();
    RETURN_IF_CAPTURING("cudaStreamDestroy", st);
    return emu_set_error(emu_stream_destroy(st), 0);
}

cudaError_t cudaStreamSynchronize(cudaStream_t st) {
    RETURN_IF_STICKY();
    if (!emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    RETURN_IF_CAPTURING("cudaStreamSynchronize", st);
    emu_stream_drain(st, 1);
    return cudaSuccess;
}

// Runs what can run now: the work queued before an all-reduce whose peers are not there
// yet is done, the all-reduce is not.
cudaError_t cudaStreamQuery(cudaStream_t st) {
    RETURN_IF_STICKY();
    if (!emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    RETURN_IF_CAPTURING("cudaStreamQuery", st);
    return emu_stream_drain(st, 0) ? cudaSuccess : cudaErrorNotReady;
}

// ---- errors ----

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = g_last;
    g_last = g_sticky;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return g_last; }

static const struct {
    cudaError_t e;
    const char *name, *text;
} ERRORS[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorIllegalState, "cudaErrorIllegalState", "the operation cannot be performed in the present state"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched", "operation would make the legacy stream depend on a capturing blocking stream"},
    {cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread",
     "attempt to terminate a thread-local capture sequence from another thread"},
};

const char *cudaGetErrorString(cudaError_t e) {
    for (size_t k = 0; k < sizeof ERRORS / sizeof ERRORS[0]; k++)
        if (ERRORS[k].e == e) return ERRORS[k].text;
    return "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t e) {
    for (size_t k = 0; k < sizeof ERRORS / sizeof ERRORS[0]; k++)
        if (ERRORS[k].e == e) return ERRORS[k].name;
    return "cudaErrorUnknown";
}
