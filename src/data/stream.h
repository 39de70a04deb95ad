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

#endif
