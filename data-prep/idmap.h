// Maps id strings (session, user and item ids of a click log) to dense int32 ids in
// order of first appearance, and back. Open addressing; strings live in one arena.
#ifndef GRUREC_IDMAP_H
#define GRUREC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

// One table slot. Ids of up to 8 bytes (most item and session ids) are compared
// through `head` alone, without touching the arena: one cache miss per lookup.
typedef struct {
    uint64_t head;  // the first 8 bytes, zero-padded
    uint32_t id1;   // id + 1; 0 = empty
    uint32_t tag;   // hash bits, lowest bit set when the string is longer than 8
} idmap_slot;

typedef struct {
    idmap_slot *slots;
    uint64_t mask;
    int32_t count;
    char *arena;          // the strings, each NUL-terminated
    size_t arena_len, arena_cap;
    uint64_t *offsets;    // [count] start of each string in the arena
    size_t offsets_cap;
    size_t peak_bytes;    // most memory the map held at once (for memory reports)
} idmap;

void idmap_init(idmap *m);
void idmap_free(idmap *m);
// Dense id of S, adding it if new. Fails (input error at PATH:LINE) past 2^31-1 ids.
int32_t idmap_intern(idmap *m, const char *s, size_t n);
// Dense id of S, or -1.
int32_t idmap_find(const idmap *m, const char *s, size_t n);
static inline const char *idmap_str(const idmap *m, int32_t id) { return m->arena + m->offsets[id]; }
// Adds S as a new id without looking it up (a fast path for ids that arrive in
// runs, such as the session ids of a log); idmap_dedupe merges repeats later.
int32_t idmap_append(idmap *m, const char *s, size_t n);
// Merges ids that name the same string into the first one and renumbers the rest
// densely in order. Returns NULL when no string was repeated, else new_id[old_id]
// (caller frees) so that references can be remapped. Rebuilds the lookup table.
int32_t *idmap_dedupe(idmap *m);
// Frees the lookup table once no more lookups will come (the strings stay).
void idmap_drop_index(idmap *m);
// Bytes held now (for memory reports); the peak is in m->peak_bytes.
size_t idmap_bytes(const idmap *m);

#endif
