// Emulated streams. An operation is queued on its stream and runs when the host waits for
// it (cudaStreamSynchronize, cudaDeviceSynchronize, a copy to host memory, cudaFree,
// cudaStreamQuery), so host code that reads a result before the real code's
// synchronisation point sees stale data here too. Streams run in issue order; the legacy
// default stream (NULL) is ordered with the blocking streams (created with flags 0) both
// ways, and not with non-blocking ones, as on a GPU.
#include <stdint.h>
#include <stdlib.h>

#include "emu.h"

typedef struct op {
    uint64_t seq;
    emu_step_fn step;
    void *ctx;
    void (*destroy)(void *);
    int ordered;  // what it waits for on other streams has run
    struct op *next;
} op;

struct CUstream_st {
    unsigned flags;
    cudaGraph_t capture;  // recording into it (emu_graph.c), not running
    op *head, *tail;
    struct CUstream_st *next;  // every live stream
};

static struct CUstream_st g_legacy;
static struct CUstream_st *g_streams = &g_legacy;
static uint64_t g_seq;

static struct CUstream_st *resolve(cudaStream_t st) { return st ? st : &g_legacy; }

int emu_stream_valid(cudaStream_t st) {
    for (struct CUstream_st *s = g_streams; s; s = s->next)
        if (s == resolve(st)) return 1;
    return 0;
}

void emu_enqueue(cudaStream_t st, emu_step_fn step, void *ctx, void (*destroy)(void *)) {
    struct CUstream_st *s = resolve(st);
    if (s->capture) {  // recorded, run by each launch of the graph
        emu_graph_add(s->capture, step, ctx, destroy);
        return;
    }
    op *o = calloc(1, sizeof *o);
    if (!o) emu_fatal("out of host memory");
    *o = (op){++g_seq, step, ctx, destroy, 0, NULL};
    if (s->tail) s->tail->next = o;
    else s->head = o;
    s->tail = o;
}

static int drain_until(struct CUstream_st *s, uint64_t limit, int wait);

// What an operation issued at SEQ on S waits for on other streams.
static int order_before(struct CUstream_st *s, uint64_t seq, int wait) {
    if (s == &g_legacy) {
        for (struct CUstream_st *b = g_streams; b; b = b->next)
            if (b != &g_legacy && !(b->flags & cudaStreamNonBlocking) && !drain_until(b, seq, wait)) return 0;
        return 1;
    }
    return (s->flags & cudaStreamNonBlocking) ? 1 : drain_until(&g_legacy, seq, wait);
}

// Runs S's operations issued before LIMIT; 1 when none is left.
static int drain_until(struct CUstream_st *s, uint64_t limit, int wait) {
    while (s->head && s->head->seq < limit) {
        op *o = s->head;
        if (!o->ordered) {
            if (!order_before(s, o->seq, wait)) return 0;
            o->ordered = 1;
        }
        if (!o->step(o->ctx, wait)) return 0;
        s->head = o->next;
        if (!s->head) s->tail = NULL;
        if (o->destroy) o->destroy(o->ctx);
        free(o);
    }
    return 1;
}

int emu_stream_drain(cudaStream_t st, int wait) { return drain_until(resolve(st), UINT64_MAX, wait); }

void emu_device_drain(void) {
    for (struct CUstream_st *s = g_streams; s; s = s->next) drain_until(s, UINT64_MAX, 1);
}

cudaGraph_t emu_stream_capture(cudaStream_t st) { return resolve(st)->capture; }
void emu_stream_set_capture(cudaStream_t st, cudaGraph_t g) { resolve(st)->capture = g; }

cudaError_t emu_stream_create(cudaStream_t *st, unsigned flags) {
    struct CUstream_st *s = calloc(1, sizeof *s);
    if (!s) return cudaErrorMemoryAllocation;
    s->flags = flags;
    s->next = g_streams->next;  // after the legacy stream, which stays first
    g_streams->next = s;
    *st = s;
    return cudaSuccess;
}

cudaError_t emu_stream_destroy(cudaStream_t st) {
    if (!st || !emu_stream_valid(st)) return cudaErrorInvalidResourceHandle;
    drain_until(st, UINT64_MAX, 1);  // a GPU finishes the stream's work first, too
    for (struct CUstream_st *s = g_streams; s; s = s->next)
        if (s->next == st) {
            s->next = st->next;
            break;
        }
    free(st);
    return cudaSuccess;
}
