#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

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

static void note_peak(idmap *m);

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
    note_peak(m);
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
    int32_t id = idmap_append(m, s, n);
    m->slots[j] = (idmap_slot){head, (uint32_t)id + 1, tag};
    if ((uint64_t)m->count * 2 > m->mask) grow(m);  // load factor <= 1/2
    return id;
}

int32_t idmap_append(idmap *m, const char *s, size_t n) {
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
    return id;
}

int32_t *idmap_dedupe(idmap *m) {
    uint64_t size = 1024;
    while (size < 2 * (uint64_t)m->count) size *= 2;
    free(m->slots);
    m->mask = size - 1;
    m->slots = xcalloc(size, sizeof *m->slots);
    int32_t *new_id = NULL, next = 0;
    // Hashes run PF ids ahead so that each slot's cache line is already on its way.
    enum { PF = 16 };
    uint64_t ring[PF];
    const int32_t count = m->count;
#define LEN(id) ((size_t)((id) + 1 < count ? m->offsets[(id) + 1] : m->arena_len) - m->offsets[id] - 1)
    for (int32_t k = 0; k < PF && k < count; k++) {
        ring[k] = hash_bytes(m->arena + m->offsets[k], LEN(k));
        __builtin_prefetch(&m->slots[(ring[k] >> 32) & m->mask]);
    }
    for (int32_t id = 0; id < count; id++) {
        const char *str = m->arena + m->offsets[id];
        size_t n = LEN(id);
        uint64_t h = ring[id % PF];
        if (id + PF < count) {
            uint64_t a = hash_bytes(m->arena + m->offsets[id + PF], LEN(id + PF));
            ring[id % PF] = a;
            __builtin_prefetch(&m->slots[(a >> 32) & m->mask]);
        }
        uint64_t head = head_of(str, n);
        uint32_t tag = tag_of(h, n);
        uint64_t j = tag & m->mask;
        int32_t found = -1;
        for (;; j = (j + 1) & m->mask) {
            const idmap_slot *e = &m->slots[j];
            if (!e->id1) break;
            if (slot_matches(m, e, head, tag, str, n)) { found = (int32_t)(e->id1 - 1); break; }
        }
        if (found >= 0 && !new_id) {  // the first repeat: start renumbering
            new_id = xmalloc((size_t)count * sizeof *new_id);
            for (int32_t k = 0; k < id; k++) new_id[k] = k;
        }
        if (found >= 0) {
            new_id[id] = found;
            continue;
        }
        m->offsets[next] = m->offsets[id];  // the string stays where it is in the arena
        m->slots[j] = (idmap_slot){head, (uint32_t)next + 1, tag};
        if (new_id) new_id[id] = next;
        next++;
    }
#undef LEN
    m->count = next;
    note_peak(m);
    return new_id;
}

static void note_peak(idmap *m) {
    size_t b = idmap_bytes(m);
    if (b > m->peak_bytes) m->peak_bytes = b;
}

void idmap_drop_index(idmap *m) {
    note_peak(m);
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
}

size_t idmap_bytes(const idmap *m) {
    return (m->slots ? (m->mask + 1) * sizeof *m->slots : 0) + m->arena_cap + m->offsets_cap * sizeof *m->offsets;
}
