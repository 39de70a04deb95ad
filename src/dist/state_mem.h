// Where the item tables and their optimizer state are allocated: the heap, or a region
// that the ranks of one machine share (one copy per machine, each rank updating its part
// of a step's rows: docs/distributed.md). Everything else stays private.
#ifndef GRUREC_STATE_MEM_H
#define GRUREC_STATE_MEM_H

#include <stddef.h>

// From now on, state_alloc carves from [BASE, BASE + BYTES) (zeroed memory, every rank
// carving the same sizes in the same order); BASE NULL: from the heap again.
void state_mem_use(void *base, size_t bytes);
// N zeroed floats, 64-byte aligned. A region too small is a CHECK failure (a sizing bug).
float *state_alloc(size_t n);
// Frees a heap block; blocks of a region (and NULL) are left alone.
void state_release(float *p);
// The bytes a region needs for blocks of these float counts (the alignment included).
size_t state_mem_bytes(const size_t *n, int count);

#endif
