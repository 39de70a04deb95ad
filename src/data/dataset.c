#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "io/h5util.h"

const char *const split_names[N_SPLITS] = {"train", "valid", "test"};

void dataset_shard_path(char *buf, size_t size, const char *dir, int split, int shard, int n_shards) {
    int n = snprintf(buf, size, "%s/%s/shard-%05d-of-%05d.h5", dir, split_names[split], shard, n_shards);
    CHECK(n > 0 && (size_t)n < size, "path too long under %s", dir);
}

static char *meta_path(const char *dir) {
    size_t n = strlen(dir) + sizeof "/meta.h5";
    char *p = xmalloc(n);
    snprintf(p, n, "%s/meta.h5", dir);
    return p;
}

void dataset_open(const char *dir, dataset_meta *m) {
    memset(m, 0, sizeof *m);
    m->dir = xstrdup(dir);
    char *path = meta_path(dir);
    hid_t f = h5_open_read(path);
    m->format_version = h5_get_attr_i64(f, "format_version", path);
    if (m->format_version != DATASET_FORMAT_VERSION)
        input_fail(path, 0, "dataset format version %lld, this grurec reads version %d",
                   (long long)m->format_version, DATASET_FORMAT_VERSION);
    m->n_items = h5_get_attr_i64(f, "n_items", path);
    m->time_unit = h5_get_attr_str(f, "time_unit", path);
    m->fingerprint = h5_get_attr_str(f, "fingerprint", path);
    m->filters = h5_get_attr_str(f, "filters", path);
    m->summary = h5_get_attr_str(f, "summary", path);
    int64_t n;
    hid_t d = h5_open_1d(f, "item_support", path, &n);
    if (n != m->n_items) input_fail(path, 0, "wrong layout: item_support has %lld rows, n_items is %lld", (long long)n, (long long)m->n_items);
    m->item_support = xmalloc((size_t)(n ? n : 1) * sizeof *m->item_support);
    h5_read_at(d, H5T_NATIVE_INT64, 0, n, m->item_support);
    H5Dclose(d);
    d = h5_open_1d(f, "item_ids", path, &n);
    H5Dclose(d);
    if (n != m->n_items) input_fail(path, 0, "wrong layout: item_ids has %lld rows, n_items is %lld", (long long)n, (long long)m->n_items);
    for (int s = 0; s < N_SPLITS; s++) {
        split_info *si = &m->split[s];
        char key[64];
        snprintf(key, sizeof key, "%s_n_shards", split_names[s]);
        si->present = h5_has_attr(f, key);
        if (!si->present) continue;
        si->n_shards = (int)h5_get_attr_i64(f, key, path);
#define READ_SPLIT_ATTR(field)                                             \
    snprintf(key, sizeof key, "%s_" #field, split_names[s]);               \
    si->field = h5_get_attr_i64(f, key, path);
        READ_SPLIT_ATTR(n_sessions)
        READ_SPLIT_ATTR(n_events)
        READ_SPLIT_ATTR(t_min)
        READ_SPLIT_ATTR(t_max)
        READ_SPLIT_ATTR(n_dropped_unknown_items)
#undef READ_SPLIT_ATTR
    }
    H5Fclose(f);
    if (!m->split[SPLIT_TRAIN].present) input_fail(path, 0, "wrong layout: the dataset has no train split");
    free(path);
}

void dataset_close(dataset_meta *m) {
    free(m->dir);
    free(m->item_support);
    free(m->time_unit);
    free(m->fingerprint);
    free(m->filters);
    free(m->summary);
    memset(m, 0, sizeof *m);
}

char **dataset_item_ids(const dataset_meta *m) {
    char *path = meta_path(m->dir);
    hid_t f = h5_open_read(path);
    int64_t n;
    hid_t d = h5_open_1d(f, "item_ids", path, &n);
    char **ids = xcalloc((size_t)(n ? n : 1), sizeof *ids);
    hid_t t = h5_vlen_string_type();
    h5_read_at(d, t, 0, n, ids);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    free(path);
    return ids;
}

void dataset_free_item_ids(const dataset_meta *m, char **ids) {
    for (int64_t i = 0; i < m->n_items; i++) H5free_memory(ids[i]);
    free(ids);
}

// Reads all of NAME (an integer dataset of N elements) in chunk-sized blocks.
static void *read_all(hid_t f, const char *name, const char *path, hid_t memtype, size_t elem, int64_t *n) {
    hid_t d = h5_open_1d(f, name, path, n);
    hid_t t = H5Dget_type(d);
    if (H5Tget_class(t) != H5T_INTEGER) input_fail(path, 0, "wrong layout: dataset '%s' is not integer", name);
    H5Tclose(t);
    char *buf = xmalloc((size_t)(*n ? *n : 1) * elem);
    for (int64_t at = 0; at < *n; at += DATASET_CHUNK) {
        int64_t cnt = *n - at < DATASET_CHUNK ? *n - at : DATASET_CHUNK;
        h5_read_at(d, memtype, at, cnt, buf + (size_t)at * elem);
    }
    H5Dclose(d);
    return buf;
}

void shard_read(const dataset_meta *m, int split, int shard, shard_data *s) {
    memset(s, 0, sizeof *s);
    const split_info *si = &m->split[split];
    if (!si->present) input_fail(m->dir, 0, "the dataset has no %s split", split_names[split]);
    char path[4096];
    dataset_shard_path(path, sizeof path, m->dir, split, shard, si->n_shards);
    hid_t f = h5_open_read(path);
    s->shard = shard;
    s->n_shards = si->n_shards;
    s->n_sessions = h5_get_attr_i64(f, "n_sessions", path);
    s->n_events = h5_get_attr_i64(f, "n_events", path);
    s->t_min = h5_get_attr_i64(f, "t_min", path);
    s->t_max = h5_get_attr_i64(f, "t_max", path);
    if (h5_get_attr_i64(f, "shard", path) != shard || h5_get_attr_i64(f, "n_shards", path) != si->n_shards)
        input_fail(path, 0, "wrong layout: shard attributes do not match the file name");
    int64_t n_off, n_items, n_times;
    s->offsets = read_all(f, "session_offsets", path, H5T_NATIVE_INT64, sizeof(int64_t), &n_off);
    s->items = read_all(f, "items", path, H5T_NATIVE_INT32, sizeof(int32_t), &n_items);
    s->times = read_all(f, "times", path, H5T_NATIVE_INT64, sizeof(int64_t), &n_times);
    H5Fclose(f);
    if (n_off != s->n_sessions + 1 || n_items != s->n_events || n_times != s->n_events)
        input_fail(path, 0, "wrong layout: %lld offsets, %lld items, %lld times for %lld sessions and %lld events",
                   (long long)n_off, (long long)n_items, (long long)n_times, (long long)s->n_sessions,
                   (long long)s->n_events);
    if (s->offsets[0] != 0 || s->offsets[s->n_sessions] != s->n_events)
        input_fail(path, 0, "corrupt: session_offsets must run from 0 to n_events");
    for (int64_t k = 0; k < s->n_sessions; k++)
        if (s->offsets[k + 1] <= s->offsets[k]) input_fail(path, 0, "corrupt: session %lld is empty or offsets decrease", (long long)k);
    for (int64_t e = 0; e < s->n_events; e++)
        if (s->items[e] < 0 || s->items[e] >= m->n_items)
            input_fail(path, 0, "corrupt: item id %d at event %lld is outside 0..%lld", s->items[e], (long long)e, (long long)m->n_items - 1);
}

void shard_free(shard_data *s) {
    free(s->offsets);
    free(s->items);
    free(s->times);
    memset(s, 0, sizeof *s);
}
