#include "clicklog.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

void clicklog_init(clicklog *log, idmap *items) {
    memset(log, 0, sizeof *log);
    idmap_init(&log->keys);
    log->items = items;
}

void clicklog_grow(clicklog *log) {
    // Doubling; large blocks are remapped by realloc, not copied, and pages are only
    // touched when written, so resident memory follows the events kept.
    log->cap = log->cap ? log->cap * 2 : 1 << 16;
    log->key = xrealloc(log->key, (size_t)log->cap * sizeof *log->key);
    log->item = xrealloc(log->item, (size_t)log->cap * sizeof *log->item);
    log->time = xrealloc(log->time, (size_t)log->cap * sizeof *log->time);
}

// Stable sort of one session's events by time: insertion sort for the short
// sessions that make up almost every log, merge sort through TMP otherwise.
typedef struct { int64_t time; int32_t item; } event;

static void merge_sort(event *a, event *tmp, int64_t n) {
    if (n <= 24) {
        for (int64_t i = 1; i < n; i++) {
            event e = a[i];
            int64_t j = i;
            while (j > 0 && a[j - 1].time > e.time) { a[j] = a[j - 1]; j--; }
            a[j] = e;
        }
        return;
    }
    int64_t h = n / 2;
    merge_sort(a, tmp, h);
    merge_sort(a + h, tmp, n - h);
    if (a[h - 1].time <= a[h].time) return;
    memcpy(tmp, a, (size_t)h * sizeof *a);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) a[k++] = a[j].time < tmp[i].time ? a[j++] : tmp[i++];
    while (i < h) a[k++] = tmp[i++];
}

static void sort_by_time(int32_t *item, int64_t *time, int64_t n, event **buf, int64_t *cap) {
    int64_t i = 1;
    while (i < n && time[i - 1] <= time[i]) i++;
    if (i >= n) return;  // already in order: the common case
    if (n > *cap) {
        *cap = n;
        *buf = xrealloc(*buf, 2 * (size_t)n * sizeof **buf);
    }
    event *e = *buf;
    for (int64_t k = 0; k < n; k++) e[k] = (event){time[k], item[k]};
    merge_sort(e, e + n, n);
    for (int64_t k = 0; k < n; k++) { time[k] = e[k].time; item[k] = e[k].item; }
}

// Moves events so that each key's events are contiguous, keys in id order (= order of
// first appearance), input order kept within a key. Returns per-key offsets [n_keys+1].
static int64_t *group_by_key(clicklog *log) {
    int32_t *new_id = idmap_dedupe(&log->keys);  // a key that came back later in the log
    if (new_id) {
        for (int64_t i = 0; i < log->n; i++) log->key[i] = new_id[log->key[i]];
        free(new_id);
    }
    int64_t n = log->n, n_keys = log->keys.count;
    int64_t *off = xcalloc((size_t)n_keys + 1, sizeof *off);
    int contiguous = 1;
    for (int64_t i = 0; i < n; i++) {
        off[log->key[i] + 1]++;
        if (i && log->key[i] < log->key[i - 1]) contiguous = 0;
    }
    for (int64_t k = 0; k < n_keys; k++) off[k + 1] += off[k];
    if (contiguous) return off;  // ids are given in order of first appearance
    // Counting sort: turn key[] into each event's destination, then move one array
    // at a time so that at most one extra array is alive.
    int64_t *cursor = xmalloc((size_t)n_keys * sizeof *cursor);
    memcpy(cursor, off, (size_t)n_keys * sizeof *cursor);
    CHECK(n < INT32_MAX, "more than 2^31 events in one log need the 64-bit grouping path");
    int32_t *dest = log->key;
    for (int64_t i = 0; i < n; i++) dest[i] = (int32_t)cursor[dest[i]]++;
    free(cursor);
    int32_t *item = xmalloc((size_t)n * sizeof *item);
    for (int64_t i = 0; i < n; i++) item[dest[i]] = log->item[i];
    free(log->item);
    log->item = item;
    int64_t *time = xmalloc((size_t)n * sizeof *time);
    for (int64_t i = 0; i < n; i++) time[dest[i]] = log->time[i];
    free(log->time);
    log->time = time;
    return off;
}

static void push_session(sessions *s, int64_t *cap, int64_t start, int32_t len, int32_t key, int32_t part) {
    if (s->n_sessions == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        s->start = xrealloc(s->start, (size_t)*cap * sizeof *s->start);
        s->len = xrealloc(s->len, (size_t)*cap * sizeof *s->len);
        s->key = xrealloc(s->key, (size_t)*cap * sizeof *s->key);
        if (s->part) s->part = xrealloc(s->part, (size_t)*cap * sizeof *s->part);
    }
    int64_t i = s->n_sessions++;
    s->start[i] = start;
    s->len[i] = len;
    s->key[i] = key;
    if (s->part) s->part[i] = part;
}

typedef struct { int64_t time, index; } start_key;

static int cmp_start(const void *a, const void *b) {
    const start_key *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

// Reorders sessions (their descriptors and their events) by first event time.
static void order_by_start(sessions *s, int64_t n_events) {
    int64_t n = s->n_sessions, i = 1;
    while (i < n && s->time[s->start[i - 1]] <= s->time[s->start[i]]) i++;
    if (i >= n) return;
    start_key *order = xmalloc((size_t)n * sizeof *order);
    for (i = 0; i < n; i++) order[i] = (start_key){s->time[s->start[i]], i};
    qsort(order, (size_t)n, sizeof *order, cmp_start);
    int32_t *item = xmalloc((size_t)n_events * sizeof *item);
    int64_t *new_start = xmalloc((size_t)n * sizeof *new_start);
    int64_t pos = 0;
    for (i = 0; i < n; i++) {
        int64_t j = order[i].index;
        memcpy(item + pos, s->item + s->start[j], (size_t)s->len[j] * sizeof *item);
        new_start[i] = pos;
        pos += s->len[j];
    }
    free(s->item);
    s->item = item;
    int64_t *time = xmalloc((size_t)n_events * sizeof *time);
    for (i = 0; i < n; i++) {
        int64_t j = order[i].index;
        memcpy(time + new_start[i], s->time + s->start[j], (size_t)s->len[j] * sizeof *time);
    }
    free(s->time);
    s->time = time;
    int32_t *tmp = xmalloc((size_t)n * sizeof *tmp);
    int32_t *arrays[2] = {s->key, s->part};
    for (int a = 0; a < 2; a++) {
        if (!arrays[a]) continue;
        for (i = 0; i < n; i++) tmp[i] = arrays[a][order[i].index];
        memcpy(arrays[a], tmp, (size_t)n * sizeof *tmp);
    }
    for (i = 0; i < n; i++) tmp[i] = s->len[order[i].index];
    memcpy(s->len, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    free(s->start);
    s->start = new_start;
    free(order);
}

void group_sessions(clicklog *log, int64_t gap, sessions *out) {
    memset(out, 0, sizeof *out);
    int64_t *off = group_by_key(log);
    free(log->key);
    log->key = NULL;
    out->item = log->item;
    out->time = log->time;
    out->keys = log->keys;
    idmap_drop_index(&out->keys);  // sessions are looked up by id from here on
    if (gap > 0) out->part = xmalloc(sizeof *out->part);
    int64_t cap = 0;
    event *buf = NULL;
    int64_t buf_cap = 0;
    for (int32_t k = 0; k < log->keys.count; k++) {
        int64_t a = off[k], b = off[k + 1];
        sort_by_time(out->item + a, out->time + a, b - a, &buf, &buf_cap);
        if (gap <= 0) {
            CHECK(b - a < INT32_MAX, "session with 2^31 events");
            push_session(out, &cap, a, (int32_t)(b - a), k, 0);
            continue;
        }
        int32_t part = 1;
        for (int64_t s = a, i = a + 1; i <= b; i++) {
            if (i == b || out->time[i] - out->time[i - 1] > gap) {
                push_session(out, &cap, s, (int32_t)(i - s), k, part++);
                s = i;
            }
        }
    }
    free(buf);
    free(off);
    order_by_start(out, log->n);
    memset(log, 0, sizeof *log);
}

void sessions_free(sessions *s) {
    free(s->item);
    free(s->time);
    free(s->start);
    free(s->len);
    free(s->key);
    free(s->part);
    idmap_free(&s->keys);
    memset(s, 0, sizeof *s);
}

int64_t sessions_events(const sessions *s) {
    int64_t n = 0;
    for (int64_t i = 0; i < s->n_sessions; i++) n += s->len[i];
    return n;
}
