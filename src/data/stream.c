#include "data/stream.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

typedef struct {
    int64_t t_first;
    int32_t shard;  // index among this rank's shards
    int64_t index;  // session within its shard
} session_key;

static int cmp_key(const void *a, const void *b) {
    const session_key *x = a, *y = b;
    if (x->t_first != y->t_first) return x->t_first < y->t_first ? -1 : 1;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

void stream_load(session_stream *s, const dataset_meta *m, int split, int rank, int world) {
    memset(s, 0, sizeof *s);
    const split_info *si = &m->split[split];
    int n_mine = 0;
    for (int k = rank; k < si->n_shards; k += world) n_mine++;
    shard_data *shards = xcalloc((size_t)(n_mine ? n_mine : 1), sizeof *shards);
    int64_t n_sessions = 0, n_events = 0;
    for (int j = 0, k = rank; k < si->n_shards; k += world, j++) {
        shard_read(m, split, k, &shards[j]);
        n_sessions += shards[j].n_sessions;
        n_events += shards[j].n_events;
    }
    // Each shard is in time order already; sorting the keys merges them.
    session_key *keys = xmalloc((size_t)(n_sessions ? n_sessions : 1) * sizeof *keys);
    int64_t at = 0;
    for (int j = 0; j < n_mine; j++)
        for (int64_t i = 0; i < shards[j].n_sessions; i++)
            keys[at++] = (session_key){shards[j].times[shards[j].offsets[i]], j, i};
    if (n_mine > 1) qsort(keys, (size_t)n_sessions, sizeof *keys, cmp_key);
    s->n_sessions = n_sessions;
    s->n_events = n_events;
    s->off = xmalloc((size_t)(n_sessions + 1) * sizeof *s->off);
    s->items = xmalloc((size_t)(n_events ? n_events : 1) * sizeof *s->items);
    s->off[0] = 0;
    for (int64_t k = 0; k < n_sessions; k++) {
        const shard_data *sh = &shards[keys[k].shard];
        int64_t a = sh->offsets[keys[k].index], len = sh->offsets[keys[k].index + 1] - a;
        memcpy(s->items + s->off[k], sh->items + a, (size_t)len * sizeof *s->items);
        s->off[k + 1] = s->off[k] + len;
        s->n_pairs += len - 1;
    }
    free(keys);
    for (int j = 0; j < n_mine; j++) shard_free(&shards[j]);
    free(shards);
}

void stream_free(session_stream *s) {
    free(s->off);
    free(s->items);
    memset(s, 0, sizeof *s);
}

void stream_remap(session_stream *s, const int64_t *to, int64_t *missed, int64_t *unknown) {
    int64_t out = 0, kept_sessions = 0, pairs = 0, a = 0;
    *missed = *unknown = 0;
    for (int64_t k = 0, end = 0; k < s->n_sessions; k++, a = end) {  // (off[k + 1] is read before it is rewritten)
        end = s->off[k + 1];
        const int64_t n = end - a, start = out;
        for (int64_t e = 0; e < n; e++) {
            const int64_t m = to[s->items[a + e]];
            if (m < 0) { ++*unknown; continue; }
            s->items[out++] = (int32_t)m;  // (out <= a + e: in place)
        }
        const int64_t known = out - start, predicted = known >= 2 ? known - 1 : 0;
        *missed += (n - 1) - predicted;
        if (known < 2) { out = start; continue; }
        s->off[++kept_sessions] = out;
        pairs += predicted;
    }
    s->n_sessions = kept_sessions;
    s->n_events = out;
    s->n_pairs = pairs;
}
