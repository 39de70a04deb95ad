// Internals of grurec's CUDA emulation, shared by its parts:
//   emu_arena.c   device memory (the arena, allocations, opening them for an operation,
//                 the fault handler)
//   emu_stream.c  streams: queued operations run in issue order when the host synchronises
//   emu_graph.c   stream capture and graphs: captured operations replayed by each launch
//   emu_fiber.c   fibers: one per CUDA thread of a block that meets a barrier
//   emu_grid.c    kernels: blocks, threads, barriers, shared memory, launch checks
//   emu_runtime.c the CUDA runtime calls (devices, memory, copies, errors)
//   emu_cublas.c  cublasSgemm on OpenBLAS;  emu_nccl.c  NCCL over MPI
#ifndef GRUREC_EMU_H
#define GRUREC_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- reports: "grurec CUDA emulation: ..." on stderr ----
void emu_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// A report, then abort(): what a GPU would do wrong silently or hang on (a divergent barrier).
void emu_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

// ---- device memory (emu_arena.c) ----
// Initialises the arena once (GRUREC_EMU_GPU_MEMORY); the total capacity in bytes.
size_t emu_arena_capacity(void);
size_t emu_arena_used(void);
// NULL when the capacity (or the arena) is exhausted. BYTES > 0.
void *emu_arena_alloc(size_t bytes);
// 0 when P is not the start of a live allocation.
int emu_arena_free(void *p);
// Whether P lies in the arena at all (live, freed or guard).
int emu_in_arena(const void *p);
// Where P is, in words: "N bytes into a device allocation of M bytes at A", "not device
// memory (a host pointer?)", ...
void emu_describe(const void *p, char *why, size_t why_size);
// 1 when [P, P + BYTES) lies in one live allocation (BYTES 0: P in one or at its end);
// otherwise 0 with WHY describing where P is.
int emu_device_range(const void *p, size_t bytes, char *why, size_t why_size);
// Opens the allocations holding the given ranges for reading and writing (the pointers
// must have passed emu_device_range; NULLs are skipped), until emu_access_end closes them.
// WHAT names the operation for fault reports. Not nested.
void emu_access_begin(const char *what, const void *const *ptrs, int n);
void emu_access_end(void);
// The operation running now (for fault reports), e.g. "kernel gather_rows, block 3, thread 17".
void emu_set_activity(const char *what);

// ---- streams (emu_stream.c) ----
// An operation: STEP does it (WAIT = 0: it may return 0 if it waits on other processes,
// then it is called again later), returns 1 when done; DESTROY frees CTX.
typedef int (*emu_step_fn)(void *ctx, int wait);
// Queues an operation on ST (NULL: the legacy default stream).
void emu_enqueue(cudaStream_t st, emu_step_fn step, void *ctx, void (*destroy)(void *));
// Runs ST's queued operations (and those it is ordered after). WAIT = 0: stops at an
// operation that cannot finish yet. Returns 1 when ST is empty.
int emu_stream_drain(cudaStream_t st, int wait);
void emu_device_drain(void);
int emu_stream_valid(cudaStream_t st);
cudaError_t emu_stream_create(cudaStream_t *st, unsigned flags);
cudaError_t emu_stream_destroy(cudaStream_t st);
// The graph ST records into (NULL: ST runs its work); set by emu_graph.c.
cudaGraph_t emu_stream_capture(cudaStream_t st);
void emu_stream_set_capture(cudaStream_t st, cudaGraph_t g);

// ---- graphs (emu_graph.c) ----
// An operation queued on a capturing stream becomes a node of its graph (G owns CTX).
void emu_graph_add(cudaGraph_t g, emu_step_fn step, void *ctx, void (*destroy)(void *));
// CALL (on stream ST, or NULL: the device) would wait for the device or allocate while a
// capture is under way (on ST, or any in the modes that forbid it): reported, every such
// capture invalidated, cudaErrorStreamCaptureUnsupported returned. Else cudaSuccess.
cudaError_t emu_capture_refuses(const char *call, cudaStream_t st);

// ---- pinned host memory (emu_event.c) ----
// Whether [P, P + BYTES) lies in one cudaMallocHost allocation.
int emu_pinned(const void *p, size_t bytes);

// ---- errors (emu_runtime.c) ----
// Records E for cudaGetLastError; STICKY errors stay (as an illegal address on a GPU,
// after which every call fails).
cudaError_t emu_set_error(cudaError_t e, int sticky);
cudaError_t emu_sticky_error(void);

// ---- kernels (emu_grid.c) ----
// Fibers (emu_fiber.c): up to N fibers each running FN(ARG, index) until it returns.
typedef struct emu_fiber emu_fiber;
emu_fiber *emu_fiber_get(int index);  // the pool's fiber INDEX (grows the pool)
void emu_fiber_start(emu_fiber *f, void (*fn)(void *, int), void *arg, int index);
// Runs F until it yields or returns; 1 when it has returned.
int emu_fiber_resume(emu_fiber *f);
// From inside a fiber: back to whoever resumed it.
void emu_fiber_yield(void);
// Whether the code runs on a fiber now.
int emu_on_fiber(void);
// Whether ADDR is in a fiber stack's guard page (a kernel thread's stack overflow).
int emu_fiber_guard(const void *addr);

#ifdef __cplusplus
}
#endif

#endif
