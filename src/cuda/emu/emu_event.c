// Events and pinned host memory of the emulation. An event's record is an operation on
// its stream that marks the event done when it runs; querying runs what can run, and
// synchronising runs the stream (work runs when the host waits, emu_stream.c). Pinned
// memory (cudaMallocHost) is what cudaMemcpyAsync reads and writes when the copy runs,
// not when it is issued, as DMA does on a GPU: a host that reuses a pinned buffer before
// the event of its copy, or reads a result before it, sees the wrong data here too.
#include <stdlib.h>

#include "emu.h"

struct CUevent_st {
    cudaStream_t st;  // of the newest record (NULL: never recorded)
    uint64_t recorded, done;  // records issued / run
};

typedef struct pinned {
    char *p;
    size_t bytes;
    struct pinned *next;
} pinned;

static pinned *g_pinned;

int emu_pinned(const void *p, size_t bytes) {
    for (pinned *q = g_pinned; q; q = q->next)
        if ((const char *)p >= q->p && (const char *)p + bytes <= q->p + q->bytes) return 1;
    return 0;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (emu_capture_refuses("cudaMallocHost", NULL)) return cudaErrorStreamCaptureUnsupported;
    pinned *q = calloc(1, sizeof *q);
    if (!ptr || !q) return free(q), emu_set_error(cudaErrorInvalidValue, 0);
    *q = (pinned){malloc(bytes ? bytes : 1), bytes, g_pinned};
    if (!q->p) return free(q), emu_set_error(cudaErrorMemoryAllocation, 0);
    g_pinned = q;
    *ptr = q->p;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!ptr) return cudaSuccess;
    if (emu_capture_refuses("cudaFreeHost", NULL)) return cudaErrorStreamCaptureUnsupported;
    emu_device_drain();  // copies from or into it finish first
    for (pinned **q = &g_pinned; *q; q = &(*q)->next)
        if ((*q)->p == ptr) {
            pinned *dead = *q;
            *q = dead->next;
            free(dead->p);
            free(dead);
            return cudaSuccess;
        }
    emu_report("cudaFreeHost(%p): not memory from cudaMallocHost", ptr);
    return emu_set_error(cudaErrorInvalidValue, 0);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned flags) {
    (void)flags;  // timing is not emulated
    if (emu_sticky_error()) return emu_sticky_error();
    if (!ev) return emu_set_error(cudaErrorInvalidValue, 0);
    *ev = calloc(1, sizeof **ev);
    return *ev ? cudaSuccess : emu_set_error(cudaErrorMemoryAllocation, 0);
}

cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    if (!ev) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if (ev->st && emu_stream_valid(ev->st)) emu_stream_drain(ev->st, 1);  // its record refers to it
    free(ev);
    return cudaSuccess;
}

typedef struct {
    cudaEvent_t ev;
    uint64_t n;
} mark;

static int run_mark(void *ctx, int wait) {
    (void)wait;
    mark *m = ctx;
    if (m->n > m->ev->done) m->ev->done = m->n;
    return 1;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t st) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!ev || !emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    // (In a capture CUDA makes it a node whose record the host never sees: refused here.)
    if (emu_stream_capture(st) && emu_capture_refuses("cudaEventRecord on a capturing stream", st))
        return cudaErrorStreamCaptureUnsupported;
    mark *m = malloc(sizeof *m);
    if (!m) emu_fatal("out of host memory");
    *m = (mark){ev, ++ev->recorded};
    ev->st = st;
    emu_enqueue(st, run_mark, m, free);
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t ev) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!ev) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if (emu_capture_refuses("cudaEventQuery", ev->st)) return cudaErrorStreamCaptureUnsupported;
    if (ev->done < ev->recorded) emu_stream_drain(ev->st, 0);
    return ev->done < ev->recorded ? cudaErrorNotReady : cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!ev) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if (emu_capture_refuses("cudaEventSynchronize", ev->st)) return cudaErrorStreamCaptureUnsupported;
    if (ev->done < ev->recorded) emu_stream_drain(ev->st, 1);
    return emu_sticky_error();
}
