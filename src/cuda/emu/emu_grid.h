// The C side of emu_launch.h's kernel description (emu_grid.c runs it).
#ifndef GRUREC_EMU_GRID_H
#define GRUREC_EMU_GRID_H

#include <stddef.h>

#include "cuda_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const void *ptr;
    int position;  // 1-based, among the kernel's arguments
} emu_ptr_arg;

typedef struct {
    const char *name;
    unsigned grid[3], block[3];
    size_t shared_bytes;  // dynamic shared memory
    cudaStream_t stream;
    void (*run)(void *call);  // one thread: the kernel with the call's arguments
    void *call;
    void (*destroy)(void *call);
    const emu_ptr_arg *ptrs;
    int n_ptrs;
} emu_kernel;

// Checks the launch and queues it, or records the error for cudaGetLastError (and
// destroys the call).
void emu_launch(const emu_kernel *k);

#ifdef __cplusplus
}
#endif

#endif
