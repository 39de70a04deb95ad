// Emulated kernels: the launch checks (configuration, every pointer argument device
// memory or null), then, when the stream runs it, every block of the grid one after the
// other and every thread of each block. Thread 0 of a block runs first, on a fiber: if it
// finishes without meeting __syncthreads(), the block has no barrier on its path and the
// other threads run one after the other as plain calls (a barrier met by one of them is
// a divergent barrier: reported). Otherwise every thread gets a fiber, and the block runs
// in rounds: each thread runs until it reaches a barrier or returns; a round in which
// threads wait at different barriers, or some wait while others have returned, is
// reported. __shared__ memory (static and dynamic) is filled with 0xff bytes when each
// block starts: a block never sees another's values, as on a GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "emu_grid.h"

uint3 emu_thread_idx, emu_block_idx, emu_block_dim, emu_grid_dim;

// The static __shared__ variables of every kernel (cuda_runtime.h puts them in this section).
extern char __start_grurec_emu_shared[] __attribute__((weak));
extern char __stop_grurec_emu_shared[] __attribute__((weak));

typedef struct {
    emu_kernel k;
    emu_ptr_arg *ptrs;
    void *shared;        // dynamic shared memory
    char activity[160];  // "kernel NAME" (fault reports)
} launch;

typedef struct {
    const char *file;  // the barrier a thread waits at (NULL: none yet)
    int line, done;
} thread_state;

static launch *g_run;        // the launch running now
static int g_direct;         // threads run as plain calls (no barrier expected)
static thread_state *g_th;   // per thread of the block, fiber mode
static int g_n_th;
static unsigned g_cur_thread;

static void set_thread(unsigned t) {
    const unsigned bx = emu_block_dim.x, by = emu_block_dim.y;
    emu_thread_idx = (uint3){t % bx, t / bx % by, t / (bx * by)};
    g_cur_thread = t;
}

static void *g_dynamic;
void *emu_dynamic_shared(void) {
    if (!g_run) emu_fatal("dynamic shared memory used outside a kernel");
    return g_dynamic;
}

void emu_syncthreads(const char *file, int line) {
    if (!g_run) emu_fatal("__syncthreads() outside a kernel (%s:%d)", file, line);
    if (g_direct)
        emu_fatal("kernel %s, block %u: thread %u reached __syncthreads() at %s:%d, but thread 0 of the block "
                  "returned without meeting any barrier: every thread of a block must reach the same barriers",
                  g_run->k.name, emu_block_idx.x, g_cur_thread, file, line);
    g_th[g_cur_thread].file = file;
    g_th[g_cur_thread].line = line;
    emu_fiber_yield();
}

static void thread_main(void *arg, int t) {
    (void)t;
    launch *l = arg;
    l->k.run(l->k.call);
}

static void poison_shared(const launch *l) {
    char *lo = __start_grurec_emu_shared, *hi = __stop_grurec_emu_shared;
    if (lo && hi > lo) memset(lo, 0xff, (size_t)(hi - lo));
    if (l->shared) memset(l->shared, 0xff, l->k.shared_bytes);
}

// Resumes thread T (fiber mode); records whether it returned.
static void resume(unsigned t) {
    set_thread(t);
    g_th[t].file = NULL;
    g_th[t].done = emu_fiber_resume(emu_fiber_get((int)t));
}

static void run_block(launch *l, unsigned nt) {
    poison_shared(l);
    g_direct = 0;
    if (g_n_th < (int)nt) {
        free(g_th);
        g_th = calloc(nt, sizeof *g_th);
        if (!g_th) emu_fatal("out of host memory");
        g_n_th = (int)nt;
    }
    emu_fiber_start(emu_fiber_get(0), thread_main, l, 0);
    resume(0);
    if (g_th[0].done) {  // no barrier on thread 0's path
        g_direct = 1;
        for (unsigned t = 1; t < nt; t++) {
            set_thread(t);
            l->k.run(l->k.call);
        }
        g_direct = 0;
        return;
    }
    for (unsigned t = 1; t < nt; t++) {
        emu_fiber_start(emu_fiber_get((int)t), thread_main, l, (int)t);
        resume(t);
    }
    for (;;) {  // every thread has reached a barrier or returned: check, then the next round
        int waiting = -1, finished = -1;
        for (unsigned t = 0; t < nt; t++) {
            if (g_th[t].done) {
                if (finished < 0) finished = (int)t;
                continue;
            }
            if (waiting < 0) {
                waiting = (int)t;
            } else if (g_th[t].line != g_th[waiting].line || strcmp(g_th[t].file, g_th[waiting].file) != 0) {
                emu_fatal("kernel %s, block %u: thread %d waits at the barrier at %s:%d, thread %u at %s:%d: every "
                          "thread of a block must reach the same barriers",
                          l->k.name, emu_block_idx.x, waiting, g_th[waiting].file, g_th[waiting].line, t, g_th[t].file,
                          g_th[t].line);
            }
        }
        if (waiting < 0) return;
        if (finished >= 0)
            emu_fatal("kernel %s, block %u: thread %d returned while thread %d waits at the barrier at %s:%d: every "
                      "thread of a block must reach the same barriers",
                      l->k.name, emu_block_idx.x, finished, waiting, g_th[waiting].file, g_th[waiting].line);
        for (unsigned t = 0; t < nt; t++) resume(t);
    }
}

static int run_launch(void *ctx, int wait) {
    (void)wait;
    launch *l = ctx;
    const void *ptrs[64];
    for (int k = 0; k < l->k.n_ptrs; k++) ptrs[k] = l->ptrs[k].ptr;
    emu_access_begin(l->activity, ptrs, l->k.n_ptrs);
    g_run = l;
    g_dynamic = l->shared;
    emu_grid_dim = (uint3){l->k.grid[0], l->k.grid[1], l->k.grid[2]};
    emu_block_dim = (uint3){l->k.block[0], l->k.block[1], l->k.block[2]};
    const unsigned nt = l->k.block[0] * l->k.block[1] * l->k.block[2];
    for (unsigned z = 0; z < l->k.grid[2]; z++)
        for (unsigned y = 0; y < l->k.grid[1]; y++)
            for (unsigned x = 0; x < l->k.grid[0]; x++) {
                emu_block_idx = (uint3){x, y, z};
                run_block(l, nt);
            }
    g_run = NULL;
    emu_access_end();
    return 1;
}

static void destroy_launch(void *ctx) {
    launch *l = ctx;
    l->k.destroy(l->k.call);
    free(l->ptrs);
    free(l->shared);
    free(l);
}

enum { MAX_THREADS = 1024, MAX_SHARED = 48 << 10 };

void emu_launch(const emu_kernel *k) {
    const cudaError_t sticky = emu_sticky_error();
    const unsigned *g = k->grid, *b = k->block;
    const unsigned long long threads = (unsigned long long)b[0] * b[1] * b[2];
    cudaError_t e = cudaSuccess;
    if (sticky) {
        e = sticky;
    } else if (!emu_stream_valid(k->stream)) {
        emu_report("kernel %s: launched on a stream that does not exist", k->name);
        e = cudaErrorInvalidResourceHandle;
    } else if (!g[0] || !g[1] || !g[2] || g[0] > 0x7fffffffu || g[1] > 65535 || g[2] > 65535 || !threads ||
               threads > MAX_THREADS || b[2] > 64 || k->shared_bytes > MAX_SHARED || k->n_ptrs > 64) {
        emu_report("kernel %s: launch of grid (%u, %u, %u), blocks (%u, %u, %u), %zu bytes of dynamic shared "
                   "memory: not a valid configuration (at most %d threads and %d bytes a block)",
                   k->name, g[0], g[1], g[2], b[0], b[1], b[2], k->shared_bytes, MAX_THREADS, MAX_SHARED);
        e = cudaErrorInvalidConfiguration;
    } else {
        for (int q = 0; q < k->n_ptrs; q++) {
            char why[256];
            if (!k->ptrs[q].ptr || emu_device_range(k->ptrs[q].ptr, 0, why, sizeof why)) continue;
            // A GPU would fault in the kernel (an illegal address, after which every call fails).
            emu_report("kernel %s: argument %d is %p, %s: a kernel can only use device memory", k->name,
                       k->ptrs[q].position, k->ptrs[q].ptr, why);
            e = emu_set_error(cudaErrorIllegalAddress, 1);
            break;
        }
    }
    if (e) {
        emu_set_error(e, 0);
        k->destroy(k->call);
        return;
    }
    launch *l = calloc(1, sizeof *l);
    if (!l) emu_fatal("out of host memory");
    l->k = *k;
    l->ptrs = malloc(((size_t)k->n_ptrs + 1) * sizeof *l->ptrs);
    l->shared = k->shared_bytes ? malloc(k->shared_bytes) : NULL;
    if (!l->ptrs || (k->shared_bytes && !l->shared)) emu_fatal("out of host memory");
    memcpy(l->ptrs, k->ptrs, (size_t)k->n_ptrs * sizeof *l->ptrs);
    l->k.ptrs = l->ptrs;
    snprintf(l->activity, sizeof l->activity, "kernel %s", k->name);
    emu_enqueue(k->stream, run_launch, l, destroy_launch);
}
