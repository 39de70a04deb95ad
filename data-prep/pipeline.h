// The steps of DESIGN §2 after parsing: repeat removal, the iterated filters, the
// time split, dropping items unknown to training, the item map, and sharding.
#ifndef GRUREC_PIPELINE_H
#define GRUREC_PIPELINE_H

#include <stdint.h>

#include "clicklog.h"

// Sessions of one split: indices into a sessions store, in time order.
typedef struct {
    int64_t n;
    int64_t *idx;
} session_list;

typedef struct {
    int32_t min_session_length;  // 2
    int32_t max_session_length;  // 0 = no limit
    int64_t min_item_support;    // 5
} filter_opts;

typedef struct {
    int64_t short_sessions, short_session_events;  // below the minimum length
    int64_t long_sessions, long_session_events;    // above the maximum length
    int64_t rare_item_events;                      // items below the minimum support
    int iterations;
} filter_stats;

// Step 2: drops consecutive repeats of an item within each session; returns how many.
int64_t drop_repeats(sessions *s);
// Step 3: alternates the session-length filter and the item-support filter until
// neither removes anything. N_ITEMS bounds the item ids.
void filter_log(sessions *s, int32_t n_items, const filter_opts *o, filter_stats *st);
// All live sessions, in order.
session_list all_sessions(const sessions *s);
// Latest event time over the sessions of L.
int64_t last_time(const sessions *s, const session_list *l);
// Step 4: sessions of L whose last event is at or after BOUNDARY go to LATE, the
// others to EARLY (sessions are never cut).
void split_at(const sessions *s, const session_list *l, int64_t boundary, session_list *early, session_list *late);

typedef struct {
    int64_t unknown_item_events;
    int64_t short_sessions, short_session_events;
} unknown_stats;

// Step 5: drops events whose item has KNOWN[item] == 0, then sessions left shorter
// than 2; removes those from L.
void drop_unknown_items(sessions *s, session_list *l, const uint8_t *known, unknown_stats *st);

// Dense item ids in order of first appearance in the training sessions: fills
// dense[raw] (-1 for items not in train) and returns the count; support[dense] =
// events of the item in train (caller frees *support).
int32_t build_item_map(const sessions *s, const session_list *train, int32_t n_raw, int32_t *dense, int64_t **support);

// Step 6: deals the sessions of L, in order, to the shard with the fewest events so
// far (lowest index on ties). shard_of[k] is the shard of L's k-th session.
void deal_shards(const sessions *s, const session_list *l, int n_shards, int32_t *shard_of, int64_t *shard_events);

void session_list_free(session_list *l);

#endif
