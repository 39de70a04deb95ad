// Where long-lived float arrays are carved from, named by the caller: the heap, or a
// region it was given (the segment the ranks of one machine share for the item tables:
// src/dist/tables_node.c). No global switch: whoever allocates says from which arena.
#ifndef GRUREC_ARENA_H
#define GRUREC_ARENA_H

#include <stddef.h>

typedef struct {
    char *base;    // the region; NULL: the heap (each block its own xcalloc_huge)
    size_t bytes, used;
} arena;

static inline arena arena_heap(void) { return (arena){NULL, 0, 0}; }
// BASE must be 64-byte aligned and zeroed; every process that shares it carves the same
// sizes in the same order, so that each block lies at the same offset everywhere.
arena arena_region(void *base, size_t bytes);
// N zeroed floats, 64-byte aligned. A region too small is a CHECK failure (a sizing bug).
float *arena_floats(arena *a, size_t n);
// Frees a block of A (heap); blocks of a region, and NULL, are left alone.
void arena_release(const arena *a, float *p);
// The bytes a region needs for blocks of these float counts (the alignment included).
size_t arena_bytes(const size_t *n, int count);

#endif
