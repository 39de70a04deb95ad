// A click log in memory: first as parsed events (one key, item and time per event),
// then grouped into sessions ordered by their first event time.
#ifndef GRUREC_CLICKLOG_H
#define GRUREC_CLICKLOG_H

#include <stdint.h>

#include "idmap.h"

// Events as parsed: 16 bytes each. `key` is the session id (or the user id when
// sessions are cut from users by a time gap) as an id in `keys`; while parsing,
// each run of consecutive events of one key gets its own id (idmap_append), and
// group_sessions merges the runs of a key.
typedef struct {
    int32_t *key, *item;
    int64_t *time;
    int64_t n, cap;
    idmap keys;
    idmap *items;  // shared by the training and the test log, so ids agree
} clicklog;

// Sessions over one event store. A session's events are item/time[start, start+len);
// filters shrink sessions in place (holes are left behind, never moved), and a
// removed session has len 0 and start -1. Sessions are ordered by first event time, ties by
// first appearance in the input.
typedef struct {
    int32_t *item;
    int64_t *time;
    int64_t n_sessions;
    int64_t *start;
    int32_t *len;
    int32_t *key;   // id in the log's key map
    int32_t *part;  // 1-based number of the session within its user; NULL unless cut by gap
    idmap keys;     // taken over from the log
} sessions;

void clicklog_init(clicklog *log, idmap *items);
static inline void clicklog_push(clicklog *log, int32_t key, int32_t item, int64_t time);
void clicklog_grow(clicklog *log);

// Groups LOG's events into sessions (stable: equal times keep input order) and
// frees the log's arrays. With gap > 0 each key is a user whose time-ordered
// events are cut into sessions wherever two events are more than GAP apart.
void group_sessions(clicklog *log, int64_t gap, sessions *out);
void sessions_free(sessions *s);
// Number of events in live sessions.
int64_t sessions_events(const sessions *s);

static inline void clicklog_push(clicklog *log, int32_t key, int32_t item, int64_t time) {
    if (log->n == log->cap) clicklog_grow(log);
    log->key[log->n] = key;
    log->item[log->n] = item;
    log->time[log->n] = time;
    log->n++;
}

#endif
