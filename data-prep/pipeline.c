#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

int64_t drop_repeats(sessions *s) {
    int64_t removed = 0;
    for (int64_t i = 0; i < s->n_sessions; i++) {
        int32_t *it = s->item + s->start[i];
        int64_t *tm = s->time + s->start[i];
        int32_t n = s->len[i], k = n ? 1 : 0;
        for (int32_t j = 1; j < n; j++) {
            if (it[j] == it[k - 1]) continue;
            it[k] = it[j];
            tm[k] = tm[j];
            k++;
        }
        removed += n - k;
        s->len[i] = k;
    }
    return removed;
}

// Removes sessions outside [min, max] length; returns 1 if any was removed.
static int filter_lengths(sessions *s, const filter_opts *o, filter_stats *st) {
    int changed = 0;
    for (int64_t i = 0; i < s->n_sessions; i++) {
        int32_t n = s->len[i];
        if (s->start[i] < 0) continue;  // removed earlier
        // A session emptied by the support filter is removed (and counted) here.
        if (n < o->min_session_length) {
            st->short_sessions++;
            st->short_session_events += n;
        } else if (o->max_session_length > 0 && n > o->max_session_length) {
            st->long_sessions++;
            st->long_session_events += n;
        } else {
            continue;
        }
        s->len[i] = 0;
        s->start[i] = -1;
        changed = 1;
    }
    return changed;
}

// Removes events of items with support below the minimum; returns 1 if any was.
static int filter_support(sessions *s, int64_t *support, int32_t n_items, const filter_opts *o, filter_stats *st) {
    memset(support, 0, (size_t)n_items * sizeof *support);
    for (int64_t i = 0; i < s->n_sessions; i++)
        for (int64_t e = s->start[i], end = e + s->len[i]; e < end; e++) support[s->item[e]]++;
    int rare = 0;
    for (int32_t k = 0; k < n_items && !rare; k++) rare = support[k] > 0 && support[k] < o->min_item_support;
    if (!rare) return 0;
    for (int64_t i = 0; i < s->n_sessions; i++) {
        int32_t *it = s->item + s->start[i];
        int64_t *tm = s->time + s->start[i];
        int32_t n = s->len[i], k = 0;
        for (int32_t j = 0; j < n; j++) {
            if (support[it[j]] < o->min_item_support) continue;
            it[k] = it[j];
            tm[k] = tm[j];
            k++;
        }
        st->rare_item_events += n - k;
        s->len[i] = k;
    }
    return 1;
}

void filter_log(sessions *s, int32_t n_items, const filter_opts *o, filter_stats *st) {
    memset(st, 0, sizeof *st);
    int64_t *support = xmalloc((size_t)(n_items ? n_items : 1) * sizeof *support);
    for (;;) {
        st->iterations++;
        int changed = filter_lengths(s, o, st);
        changed |= filter_support(s, support, n_items, o, st);
        if (!changed) break;
    }
    free(support);
}

session_list all_sessions(const sessions *s) {
    session_list l = {0, xmalloc((size_t)(s->n_sessions ? s->n_sessions : 1) * sizeof(int64_t))};
    for (int64_t i = 0; i < s->n_sessions; i++)
        if (s->len[i] > 0) l.idx[l.n++] = i;
    return l;
}

int64_t last_time(const sessions *s, const session_list *l) {
    int64_t t = INT64_MIN;
    for (int64_t k = 0; k < l->n; k++) {
        int64_t i = l->idx[k];
        int64_t e = s->time[s->start[i] + s->len[i] - 1];
        if (e > t) t = e;
    }
    return t;
}

void split_at(const sessions *s, const session_list *l, int64_t boundary, session_list *early, session_list *late) {
    size_t bytes = (size_t)(l->n ? l->n : 1) * sizeof(int64_t);
    *early = (session_list){0, xmalloc(bytes)};
    *late = (session_list){0, xmalloc(bytes)};
    for (int64_t k = 0; k < l->n; k++) {
        int64_t i = l->idx[k];
        session_list *to = s->time[s->start[i] + s->len[i] - 1] >= boundary ? late : early;
        to->idx[to->n++] = i;
    }
}

void drop_unknown_items(sessions *s, session_list *l, const uint8_t *known, unknown_stats *st) {
    memset(st, 0, sizeof *st);
    int64_t kept = 0;
    for (int64_t k = 0; k < l->n; k++) {
        int64_t i = l->idx[k];
        int32_t *it = s->item + s->start[i];
        int64_t *tm = s->time + s->start[i];
        int32_t n = s->len[i], m = 0;
        for (int32_t j = 0; j < n; j++) {
            if (!known[it[j]]) continue;
            it[m] = it[j];
            tm[m] = tm[j];
            m++;
        }
        st->unknown_item_events += n - m;
        if (m < 2) {
            if (m > 0) {
                st->short_sessions++;
                st->short_session_events += m;
            } else {
                st->short_sessions++;  // a session of unknown items only
            }
            s->len[i] = 0;
            continue;
        }
        s->len[i] = m;
        l->idx[kept++] = i;
    }
    l->n = kept;
}

int32_t build_item_map(const sessions *s, const session_list *train, int32_t n_raw, int32_t *dense, int64_t **support) {
    for (int32_t k = 0; k < n_raw; k++) dense[k] = -1;
    int32_t n = 0;
    for (int64_t k = 0; k < train->n; k++) {
        int64_t i = train->idx[k];
        for (int64_t e = s->start[i], end = e + s->len[i]; e < end; e++)
            if (dense[s->item[e]] < 0) dense[s->item[e]] = n++;
    }
    int64_t *sup = xcalloc((size_t)(n ? n : 1), sizeof *sup);
    for (int64_t k = 0; k < train->n; k++) {
        int64_t i = train->idx[k];
        for (int64_t e = s->start[i], end = e + s->len[i]; e < end; e++) sup[dense[s->item[e]]]++;
    }
    *support = sup;
    return n;
}

// Min-heap of shards keyed by (events so far, shard index).
typedef struct { int64_t events; int32_t shard; } heap_node;

static int heap_less(heap_node a, heap_node b) {
    return a.events < b.events || (a.events == b.events && a.shard < b.shard);
}

static void sift_down(heap_node *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_less(h[l], h[m])) m = l;
        if (r < n && heap_less(h[r], h[m])) m = r;
        if (m == i) return;
        heap_node t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

void deal_shards(const sessions *s, const session_list *l, int n_shards, int32_t *shard_of, int64_t *shard_events) {
    heap_node *h = xmalloc((size_t)n_shards * sizeof *h);
    for (int k = 0; k < n_shards; k++) h[k] = (heap_node){0, k};  // already a heap
    for (int64_t k = 0; k < l->n; k++) {
        shard_of[k] = h[0].shard;
        h[0].events += s->len[l->idx[k]];
        sift_down(h, n_shards, 0);
    }
    for (int k = 0; k < n_shards; k++) shard_events[h[k].shard] = h[k].events;
    free(h);
}

void session_list_free(session_list *l) {
    free(l->idx);
    l->idx = NULL;
    l->n = 0;
}
