#include "state_mem.h"

#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define ALIGN 64
#define MAX_REGIONS 4

static struct {
    char *base;
    size_t bytes, used;
} g_region, g_past[MAX_REGIONS];  // the one in use; every one used (state_release)
static int g_n_past;

static size_t aligned(size_t bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }

void state_mem_use(void *base, size_t bytes) {
    g_region.base = base;
    g_region.bytes = base ? bytes : 0;
    g_region.used = 0;
    if (!base) return;
    CHECK(((uintptr_t)base % ALIGN) == 0, "shared region at %p is not %d-byte aligned", base, ALIGN);
    CHECK(g_n_past < MAX_REGIONS, "more than %d shared regions", MAX_REGIONS);
    g_past[g_n_past].base = base;
    g_past[g_n_past++].bytes = bytes;
}

float *state_alloc(size_t n) {
    const size_t bytes = aligned((n ? n : 1) * sizeof(float));
    if (!g_region.base) return xcalloc_huge(bytes);
    CHECK(g_region.used + bytes <= g_region.bytes, "shared region of %zu bytes too small for %zu more",
          g_region.bytes, bytes);
    float *p = (float *)(g_region.base + g_region.used);
    g_region.used += bytes;
    return p;
}

void state_release(float *p) {
    for (int k = 0; k < g_n_past; k++)
        if ((char *)p >= g_past[k].base && (char *)p < g_past[k].base + g_past[k].bytes) return;
    free(p);
}

size_t state_mem_bytes(const size_t *n, int count) {
    size_t bytes = 0;
    for (int k = 0; k < count; k++) bytes += aligned((n[k] ? n[k] : 1) * sizeof(float));
    return bytes;
}
