#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/check.h"

#define ALIGN 64

// What a block of N floats takes (at least one float, rounded up to ALIGN).
static size_t block_bytes(size_t n) { return ((n ? n : 1) * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN; }

arena arena_region(void *base, size_t bytes) {
    CHECK(base && ((uintptr_t)base % ALIGN) == 0, "region at %p is not %d-byte aligned", base, ALIGN);
    return (arena){base, bytes, 0};
}

float *arena_floats(arena *a, size_t n) {
    const size_t bytes = block_bytes(n);
    if (!a->base) return xcalloc_huge(bytes);
    CHECK(a->used + bytes <= a->bytes, "region of %zu bytes too small for %zu more", a->bytes, bytes);
    float *p = (float *)(a->base + a->used);
    a->used += bytes;
    return p;
}

void arena_release(const arena *a, float *p) {
    if (!a->base) free(p);
}

size_t arena_bytes(const size_t *n, int count) {
    size_t bytes = 0;
    for (int k = 0; k < count; k++) bytes += block_bytes(n[k]);
    return bytes;
}
