// Stream capture and graphs of the emulation. While a stream captures, every operation
// queued on it (kernel launches with their arguments as copied at the launch, copies,
// memsets, cuBLAS products) becomes a node of its graph instead of running; a launch of
// the instantiated graph queues the nodes on a stream, in capture order, to run as any
// queued work does. Nodes are run again at each launch, never rebuilt: what changes from
// launch to launch must be in device (or pinned) memory, as on a GPU.
//
// What a GPU refuses during a capture is refused here (emu_capture_refuses): a call that
// waits for the device or allocates (synchronisations, queries, cudaMemcpy, cudaMalloc,
// cudaFree, ...) returns cudaErrorStreamCaptureUnsupported and invalidates the capture,
// whose end then returns cudaErrorStreamCaptureInvalidated. A copy from pageable host
// memory and an event record are refused inside a capture too (stricter than CUDA, where
// a captured event is not the host's event: grurec records its events after the launch).
#include <stdlib.h>

#include "emu.h"

typedef struct {
    emu_step_fn step;
    void *ctx;
    void (*destroy)(void *);
} node;

// The nodes, shared by a graph and its instantiations (the last one frees them).
typedef struct {
    int refs;
    size_t n, cap;
    node *v;
} node_list;

struct CUgraph_st {
    node_list *nodes;
    cudaStream_t st;  // capturing into it (NULL: captured)
    cudaStreamCaptureMode mode;
    int invalid;
    struct CUgraph_st *next_capture;
};

struct CUgraphExec_st {
    node_list *nodes;
};

static struct CUgraph_st *g_captures;  // every capture under way

static void nodes_release(node_list *l) {
    if (!l || --l->refs > 0) return;
    emu_device_drain();  // launches of it still queued run first
    for (size_t k = 0; k < l->n; k++)
        if (l->v[k].destroy) l->v[k].destroy(l->v[k].ctx);
    free(l->v);
    free(l);
}

void emu_graph_add(cudaGraph_t g, emu_step_fn step, void *ctx, void (*destroy)(void *)) {
    node_list *l = g->nodes;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) emu_fatal("out of host memory");
    }
    l->v[l->n++] = (node){step, ctx, destroy};
}

cudaError_t emu_capture_refuses(const char *call, cudaStream_t st) {
    int refused = 0;
    for (struct CUgraph_st *g = g_captures; g; g = g->next_capture) {
        if (g->mode == cudaStreamCaptureModeRelaxed && (!st || g->st != st)) continue;
        if (!g->invalid)
            emu_report("%s while a stream captures: not permitted during a capture (it would wait for the device or "
                       "allocate); the capture is invalidated",
                       call);
        g->invalid = 1;
        refused = 1;
    }
    return refused ? emu_set_error(cudaErrorStreamCaptureUnsupported, 0) : cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!st || !emu_stream_valid(st) || (unsigned)mode > cudaStreamCaptureModeRelaxed) {
        if (!st) emu_report("cudaStreamBeginCapture: the legacy default stream cannot be captured");
        return emu_set_error(st && !emu_stream_valid(st) ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue, 0);
    }
    if (emu_stream_capture(st)) return emu_set_error(cudaErrorIllegalState, 0);
    // Work queued before the capture is not part of it, and stays ordered before it.
    struct CUgraph_st *g = calloc(1, sizeof *g);
    node_list *l = calloc(1, sizeof *l);
    if (!g || !l) emu_fatal("out of host memory");
    l->refs = 1;
    *g = (struct CUgraph_st){l, st, mode, 0, g_captures};
    g_captures = g;
    emu_stream_set_capture(st, g);
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph) {
    if (!graph) return emu_set_error(cudaErrorInvalidValue, 0);
    *graph = NULL;
    if (!st || !emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    cudaGraph_t g = emu_stream_capture(st);
    if (!g) return emu_set_error(cudaErrorIllegalState, 0);
    emu_stream_set_capture(st, NULL);
    for (struct CUgraph_st **p = &g_captures; *p; p = &(*p)->next_capture)
        if (*p == g) {
            *p = g->next_capture;
            break;
        }
    g->st = NULL;
    if (g->invalid) {
        cudaGraphDestroy(g);
        return emu_set_error(cudaErrorStreamCaptureInvalidated, 0);
    }
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t st, cudaStreamCaptureStatus *status) {
    if (!status) return emu_set_error(cudaErrorInvalidValue, 0);
    if (!emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    cudaGraph_t g = emu_stream_capture(st);
    *status = !g ? cudaStreamCaptureStatusNone : g->invalid ? cudaStreamCaptureStatusInvalidated
                                                             : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!exec || !graph || flags) return emu_set_error(cudaErrorInvalidValue, 0);
    if (graph->st) return emu_set_error(cudaErrorIllegalState, 0);  // still capturing
    *exec = calloc(1, sizeof **exec);
    if (!*exec) return emu_set_error(cudaErrorMemoryAllocation, 0);
    (*exec)->nodes = graph->nodes;
    graph->nodes->refs++;
    return cudaSuccess;
}

// Each node is queued as an operation of its own, owned by the graph (no destroy).
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st) {
    if (emu_sticky_error()) return emu_sticky_error();
    if (!exec || !emu_stream_valid(st)) return emu_set_error(cudaErrorInvalidResourceHandle, 0);
    if (emu_stream_capture(st)) {
        emu_report("cudaGraphLaunch on a capturing stream: not emulated (a graph inside a graph)");
        return emu_set_error(cudaErrorStreamCaptureUnsupported, 0);
    }
    const node_list *l = exec->nodes;
    for (size_t k = 0; k < l->n; k++) emu_enqueue(st, l->v[k].step, l->v[k].ctx, NULL);
    return cudaSuccess;
}

// Its node count (the emulation's nodes have no handles: NODES must be NULL).
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *n) {
    if (!graph || !n || nodes) return emu_set_error(cudaErrorInvalidValue, 0);
    *n = graph->nodes->n;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (!exec) return emu_set_error(cudaErrorInvalidValue, 0);
    nodes_release(exec->nodes);
    free(exec);
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    if (!graph || graph->st) return emu_set_error(graph ? cudaErrorIllegalState : cudaErrorInvalidValue, 0);
    nodes_release(graph->nodes);
    free(graph);
    return cudaSuccess;
}
