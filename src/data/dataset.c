#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "io/h5util.h"
#include "io/string_table.h"

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

// A file without a seal: grurec-prep wrote none before format version 2.
static const char *const unsealed =
    "written by an earlier grurec-prep (dataset format 1) or not by grurec-prep: re-run grurec-prep to make "
    "this dataset again";

void dataset_open(const char *dir, dataset_meta *m) {
    memset(m, 0, sizeof *m);
    m->dir = xstrdup(dir);
    char *path = meta_path(dir);
    hid_t f = h5_open_sealed(path, unsealed);
    m->format_version = h5_get_attr_i64(f, "format_version", path);
    if (m->format_version != DATASET_FORMAT_VERSION)
        input_fail(path, 0, "dataset format version %lld, this grurec reads version %d",
                   (long long)m->format_version, DATASET_FORMAT_VERSION);
    m->n_items = h5_get_attr_i64(f, "n_items", path);
    m->time_unit = h5_get_attr_str(f, "time_unit", path);
    m->fingerprint = h5_get_attr_str(f, "fingerprint", path);
    m->filters = h5_get_attr_str(f, "filters", path);
    m->summary = h5_get_attr_str(f, "summary", path);
    if (m->n_items < 0 || m->n_items > INT32_MAX) input_fail(path, 0, "wrong layout: n_items is %lld", (long long)m->n_items);
    m->item_support = xmalloc((size_t)(m->n_items ? m->n_items : 1) * sizeof *m->item_support);
    h5_read_checked(f, "item_support", path, H5T_NATIVE_INT64, sizeof(int64_t), m->n_items, DATASET_CHUNK, m->item_support);
    int64_t n;
    hid_t d = h5_open_1d(f, "item_ids_offsets", path, &n);
    H5Dclose(d);
    if (n != m->n_items + 1) input_fail(path, 0, "wrong layout: item_ids_offsets has %lld rows, n_items is %lld", (long long)n, (long long)m->n_items);
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
    hid_t f = h5_open_sealed(path, unsealed);
    char **ids = strtab_read(f, "item_ids", path, m->n_items, DATASET_CHUNK);
    H5Fclose(f);
    free(path);
    return ids;
}

void dataset_free_item_ids(const dataset_meta *m, char **ids) {
    (void)m;
    free(ids);  // (one allocation: the pointers and the bytes)
}

// A shard must be this dataset's, of this split, and the shard its file name says.
static void check_shard_identity(hid_t f, const char *path, const dataset_meta *m, int split, int shard) {
    char *fp = h5_get_attr_str(f, "dataset_fingerprint", path);
    if (strcmp(fp, m->fingerprint) != 0)
        input_fail(path, 0, "a shard of dataset %s, this dataset is %s (%s/meta.h5): a shard of another dataset was "
                   "copied in; re-run grurec-prep or copy the whole dataset", fp, m->fingerprint, m->dir);
    free(fp);
    char *sp = h5_get_attr_str(f, "split", path);
    if (strcmp(sp, split_names[split]) != 0)
        input_fail(path, 0, "a shard of the %s split, found among the %s shards", sp, split_names[split]);
    free(sp);
    const int64_t k = h5_get_attr_i64(f, "shard", path), n = h5_get_attr_i64(f, "n_shards", path);
    if (k != shard || n != m->split[split].n_shards)
        input_fail(path, 0, "shard %lld of %lld, but its name and meta.h5 say shard %d of %d (renamed?)", (long long)k,
                   (long long)n, shard, m->split[split].n_shards);
}

void shard_read(const dataset_meta *m, int split, int shard, shard_data *s) {
    memset(s, 0, sizeof *s);
    const split_info *si = &m->split[split];
    if (!si->present) input_fail(m->dir, 0, "the dataset has no %s split", split_names[split]);
    char path[4096];
    dataset_shard_path(path, sizeof path, m->dir, split, shard, si->n_shards);
    hid_t f = h5_open_sealed(path, unsealed);
    check_shard_identity(f, path, m, split, shard);
    s->shard = shard;
    s->n_shards = si->n_shards;
    s->n_sessions = h5_get_attr_i64(f, "n_sessions", path);
    s->n_events = h5_get_attr_i64(f, "n_events", path);
    s->t_min = h5_get_attr_i64(f, "t_min", path);
    s->t_max = h5_get_attr_i64(f, "t_max", path);
    if (s->n_sessions < 0 || s->n_events < s->n_sessions)
        input_fail(path, 0, "wrong layout: %lld sessions of %lld events", (long long)s->n_sessions, (long long)s->n_events);
    // (h5_read_checked refuses a dataset of another length before it reads a byte)
    s->offsets = xmalloc((size_t)(s->n_sessions + 1) * sizeof *s->offsets);
    s->items = xmalloc((size_t)(s->n_events ? s->n_events : 1) * sizeof *s->items);
    s->times = xmalloc((size_t)(s->n_events ? s->n_events : 1) * sizeof *s->times);
    h5_read_checked(f, "session_offsets", path, H5T_NATIVE_INT64, sizeof(int64_t), s->n_sessions + 1, DATASET_CHUNK, s->offsets);
    h5_read_checked(f, "items", path, H5T_NATIVE_INT32, sizeof(int32_t), s->n_events, DATASET_CHUNK, s->items);
    h5_read_checked(f, "times", path, H5T_NATIVE_INT64, sizeof(int64_t), s->n_events, DATASET_CHUNK, s->times);
    H5Fclose(f);
    if (s->offsets[0] != 0 || s->offsets[s->n_sessions] != s->n_events)
        input_fail(path, 0, "corrupt: session_offsets must run from 0 to n_events");
    for (int64_t k = 0; k < s->n_sessions; k++)
        if (s->offsets[k + 1] <= s->offsets[k]) input_fail(path, 0, "corrupt: session %lld is empty or offsets decrease", (long long)k);
    for (int64_t e = 0; e < s->n_events; e++)
        if (s->items[e] < 0 || s->items[e] >= m->n_items)
            input_fail(path, 0, "corrupt: item id %d at event %lld is outside 0..%lld", s->items[e], (long long)e, (long long)m->n_items - 1);
}

void dataset_check_shards(const dataset_meta *m, int split, int rank, int world) {
    const split_info *si = &m->split[split];
    for (int k = rank; si->present && k < si->n_shards; k += world) {
        char path[4096];
        dataset_shard_path(path, sizeof path, m->dir, split, k, si->n_shards);
        hid_t f = h5_open_sealed(path, unsealed);
        check_shard_identity(f, path, m, split, k);
        H5Fclose(f);
    }
}

void shard_free(shard_data *s) {
    free(s->offsets);
    free(s->items);
    free(s->times);
    memset(s, 0, sizeof *s);
}
