// The sessions one rank trains or evaluates on: the shards s of a split with
// s mod P == rank, merged into one stream ordered by session start (DESIGN §2).
#ifndef GRUREC_STREAM_H
#define GRUREC_STREAM_H

#include <stdint.h>

#include "data/dataset.h"

typedef struct {
    int64_t n_sessions, n_events, n_pairs;
    int64_t *off;    // [n_sessions + 1]
    int32_t *items;  // [n_events]
} session_stream;

void stream_load(session_stream *s, const dataset_meta *m, int split, int rank, int world);
void stream_free(session_stream *s);
// For a model of another item set: TO[item] = the model's index of each item, or -1. Each
// session keeps its known events (renumbered), and one left with fewer than two goes.
// *MISSED = targets that can no longer be predicted (the unknown ones, and a known one
// with no known item before it): they count as misses. *UNKNOWN = events of unknown items.
void stream_remap(session_stream *s, const int64_t *to, int64_t *missed, int64_t *unknown);

#endif
