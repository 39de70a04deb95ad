#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

// 64-bit hash of short strings: 8 bytes at a time, multiply-xorshift mixing.
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 32);
}

void idmap_init(idmap *m) {
    memset(m, 0, sizeof *m);
    m->mask = 1023;
    m->slots = xcalloc(m->mask + 1, sizeof *m->slots);
}

void idmap_free(idmap *m) {
    free(m->slots);
    free(m->arena);
    free(m->offsets);
    memset(m, 0, sizeof *m);
}

static uint64_t head_of(const char *s, size_t n) {
    uint64_t w = 0;
    memcpy(&w, s, n < 8 ? n : 8);
    return w;
}

// The tag is also where a string's probe starts, so growing the table re-places
// slots from their tags alone, without reading (or hashing) any string again.
static uint32_t tag_of(uint64_t h, size_t n) { return ((uint32_t)(h >> 32) & ~1u) | (n > 8); }

static int slot_matches(const idmap *m, const idmap_slot *e, uint64_t head, uint32_t tag, const char *s, size_t n) {
    if (e->tag != tag || e->head != head) return 0;
    if (n <= 8) return 1;  // zero padding is unambiguous: ids hold no NUL bytes
    const char *t = m->arena + m->offsets[e->id1 - 1];
    return memcmp(t, s, n) == 0 && t[n] == '\0';
}

static void grow(idmap *m) {
    uint64_t new_mask = m->mask * 2 + 1;
    idmap_slot *slots = xcalloc(new_mask + 1, sizeof *slots);
    for (uint64_t i = 0; i <= m->mask; i++) {
        idmap_slot e = m->slots[i];
        if (!e.id1) continue;
        uint64_t j = e.tag & new_mask;
        while (slots[j].id1) j = (j + 1) & new_mask;
        slots[j] = e;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = new_mask;
}

int32_t idmap_find(const idmap *m, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n), head = head_of(s, n);
    uint32_t tag = tag_of(h, n);
    for (uint64_t j = tag & m->mask;; j = (j + 1) & m->mask) {
        const idmap_slot *e = &m->slots[j];
        if (!e->id1) return -1;
        if (slot_matches(m, e, head, tag, s, n)) return (int32_t)(e->id1 - 1);
    }
}

int32_t idmap_intern(idmap *m, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n), head = head_of(s, n);
    uint32_t tag = tag_of(h, n);
    uint64_t j = tag & m->mask;
    for (;; j = (j + 1) & m->mask) {
        const idmap_slot *e = &m->slots[j];
        if (!e->id1) break;
        if (slot_matches(m, e, head, tag, s, n)) return (int32_t)(e->id1 - 1);
    }
    CHECK(m->count < INT32_MAX - 1, "more than 2^31 distinct ids");
    int32_t id = m->count++;
    if ((size_t)id == m->offsets_cap) {
        m->offsets_cap = m->offsets_cap ? m->offsets_cap * 2 : 1024;
        m->offsets = xrealloc(m->offsets, m->offsets_cap * sizeof *m->offsets);
    }
    if (m->arena_len + n + 1 > m->arena_cap) {
        while (m->arena_len + n + 1 > m->arena_cap) m->arena_cap = m->arena_cap ? m->arena_cap * 2 : 1 << 16;
        m->arena = xrealloc(m->arena, m->arena_cap);
    }
    m->offsets[id] = m->arena_len;
    memcpy(m->arena + m->arena_len, s, n);
    m->arena[m->arena_len + n] = '\0';
    m->arena_len += n + 1;
    m->slots[j] = (idmap_slot){head, (uint32_t)id + 1, tag};
    if ((uint64_t)m->count * 2 > m->mask) grow(m);  // load factor <= 1/2
    return id;
}

void idmap_drop_index(idmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
}

size_t idmap_bytes(const idmap *m) {
    return (m->slots ? (m->mask + 1) * sizeof *m->slots : 0) + m->arena_cap + m->offsets_cap * sizeof *m->offsets;
}
