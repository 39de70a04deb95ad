#include "dist/state_mem.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/check.h"

#define ALIGN 64
#define MAX_REGIONS 4

// Every region ever used (state_release must know them all); the last one is carved
// while g_active.
static struct {
    char *base;
    size_t bytes;
} g_regions[MAX_REGIONS];
static int g_n, g_active;
static size_t g_used;  // bytes of the active region carved so far

// What a block of N floats takes (at least one float, rounded up to ALIGN).
static size_t block_bytes(size_t n) { return ((n ? n : 1) * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN; }

void state_mem_use(void *base, size_t bytes) {
    g_active = base != NULL;
    g_used = 0;
    if (!base) return;
    CHECK(((uintptr_t)base % ALIGN) == 0, "shared region at %p is not %d-byte aligned", base, ALIGN);
    CHECK(g_n < MAX_REGIONS, "more than %d shared regions", MAX_REGIONS);
    g_regions[g_n].base = base;
    g_regions[g_n++].bytes = bytes;
}

float *state_alloc(size_t n) {
    const size_t bytes = block_bytes(n);
    if (!g_active) return xcalloc_huge(bytes);
    const size_t have = g_regions[g_n - 1].bytes;
    CHECK(g_used + bytes <= have, "shared region of %zu bytes too small for %zu more", have, bytes);
    float *p = (float *)(g_regions[g_n - 1].base + g_used);
    g_used += bytes;
    return p;
}

void state_release(float *p) {
    for (int k = 0; k < g_n; k++)
        if ((char *)p >= g_regions[k].base && (char *)p < g_regions[k].base + g_regions[k].bytes) return;
    free(p);
}

size_t state_mem_bytes(const size_t *n, int count) {
    size_t bytes = 0;
    for (int k = 0; k < count; k++) bytes += block_bytes(n[k]);
    return bytes;
}
