#define _XOPEN_SOURCE 700  // nftw
#include "write_dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/check.h"
#include "io/h5util.h"
#include "io/string_table.h"

// ---- files and directories ----

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }
static void remove_tree_hook(void *path) { remove_tree(path); }

static int is_empty_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

// The directory that holds OUT ("." for a bare name); BASE = OUT's last component.
static void split_parent(const char *out, char *parent, size_t cap, const char **base) {
    xsnprintf(parent, cap, "%s", out);
    char *slash = strrchr(parent, '/');
    *base = slash ? out + (slash - parent) + 1 : out;
    if (slash == parent) parent[1] = '\0';
    else if (slash) *slash = '\0';
    else xsnprintf(parent, cap, ".");
}

void check_output_path(const char *out, int force) {
    if (!*out) usage_fail("--out is empty: name the dataset directory");
    struct stat st;
    if (stat(out, &st) != 0) {
        // "FILE/ds" (ENOTDIR), a path through an unreadable directory (EACCES), ...
        if (errno != ENOENT) input_fail(out, 0, "cannot create the dataset: %s", strerror(errno));
        char parent[4096];
        const char *base;
        split_parent(out, parent, sizeof parent, &base);
        if (stat(parent, &st) != 0) input_fail(out, 0, "cannot create the dataset: %s: %s", parent, strerror(errno));
        if (!S_ISDIR(st.st_mode)) input_fail(out, 0, "cannot create the dataset: %s: %s", parent, strerror(ENOTDIR));
        if (access(parent, W_OK | X_OK) != 0) input_fail(out, 0, "cannot create the dataset in %s: %s", parent, strerror(errno));
        return;
    }
    if (!force) input_fail(out, 0, "output exists (use --force to replace it)");
    char meta[4096];
    xsnprintf(meta, sizeof meta, "%s/meta.h5", out);
    if (!S_ISDIR(st.st_mode) || (access(meta, F_OK) != 0 && !is_empty_dir(out)))
        input_fail(out, 0, "refusing to replace: not a grurec dataset directory");
}

// ---- interruption: SIGINT / SIGTERM while DIR.tmp-PID exists ----

// The handler only records the signal (async-signal-safe); the write loop polls it,
// removes the temporary directory and re-raises, so the exit status still says
// "killed by SIGINT/SIGTERM".
static volatile sig_atomic_t g_signal;
static const int g_stop_signals[] = {SIGINT, SIGTERM};
static void on_stop_signal(int sig) { g_signal = sig; }

static void catch_stop_signals(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_stop_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof g_stop_signals / sizeof *g_stop_signals; i++) sigaction(g_stop_signals[i], &sa, NULL);
}

static const char *g_tmp_dir;  // DIR.tmp-PID while it is being written

static void stop_if_signalled(void) {
    int sig = g_signal;
    if (!sig) return;
    remove_tree(g_tmp_dir);
    set_fail_cleanup(NULL, NULL);
    catch_stop_signals(0);
    raise(sig);  // default action: the process ends here, by SIG
    _exit(128 + sig);
}

// Removes DIR.tmp-PID directories next to OUT whose process is gone (an earlier run
// killed by SIGKILL or a crash). One whose process is alive may be another run's.
static void remove_stale_temporaries(const char *out) {
    char parent[4096];
    const char *base;
    split_parent(out, parent, sizeof parent, &base);
    char prefix[4096];
    xsnprintf(prefix, sizeof prefix, "%s.tmp-", base);
    size_t np = strlen(prefix);
    DIR *d = opendir(parent);
    if (!d) return;  // the parent's own problems are reported when the output is made
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, np) != 0) continue;
        const char *digits = e->d_name + np;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (*digits < '0' || *digits > '9' || *end != '\0' || pid <= 0 || (pid_t)pid == getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[8192];
        xsnprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        remove_tree(path);
    }
    closedir(d);
}

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "cannot reopen %s: %s", path, strerror(errno));
    CHECK(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
    close(fd);
}

// ---- each split's sessions dealt to its shards ----

// Shard k of a split holds the sessions order[start[k] .. start[k+1]), in time order.
typedef struct {
    int64_t *order, *start;
} split_deal;

static void deal_split(dataset_out *d, int sp, split_deal *dl) {
    split_out *so = &d->split[sp];
    const sessions *s = so->store;
    int32_t *shard_of = xmalloc((size_t)(so->list.n ? so->list.n : 1) * sizeof *shard_of);
    so->shard_events = xcalloc((size_t)so->n_shards, sizeof *so->shard_events);
    deal_shards(s, &so->list, so->n_shards, shard_of, so->shard_events);
    // Counting sort of the split's sessions by shard (order within a shard kept).
    dl->start = xcalloc((size_t)so->n_shards + 1, sizeof *dl->start);
    for (int64_t k = 0; k < so->list.n; k++) dl->start[shard_of[k] + 1]++;
    for (int k = 0; k < so->n_shards; k++) dl->start[k + 1] += dl->start[k];
    dl->order = xmalloc((size_t)(so->list.n ? so->list.n : 1) * sizeof *dl->order);
    int64_t *cursor = xmalloc((size_t)so->n_shards * sizeof *cursor);
    memcpy(cursor, dl->start, (size_t)so->n_shards * sizeof *cursor);
    for (int64_t k = 0; k < so->list.n; k++) dl->order[cursor[shard_of[k]]++] = so->list.idx[k];
    free(cursor);
    free(shard_of);
    so->n_sessions = so->list.n;
    so->n_events = 0;
    so->t_min = INT64_MAX;
    so->t_max = INT64_MIN;
    for (int64_t k = 0; k < so->list.n; k++) {
        int64_t i = so->list.idx[k];
        so->n_events += s->len[i];
        if (s->time[s->start[i]] < so->t_min) so->t_min = s->time[s->start[i]];
        if (s->time[s->start[i] + s->len[i] - 1] > so->t_max) so->t_max = s->time[s->start[i] + s->len[i] - 1];
    }
    if (so->list.n == 0) so->t_min = so->t_max = 0;
}

// ---- fingerprint: a 64-bit hash of every split's sessions and items ----

// It is taken before any shard is written, since every shard carries it; its value is
// the one format 1 gave (the same mixing, in the same order), so a model trained on a
// format-1 dataset matches the same data prepared again.
static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xFF51AFD7ED558CCDull;
}

static uint64_t fingerprint(const dataset_out *d, const split_deal *deal) {
    uint64_t fp = mix(0x6772757265630001ull, (uint64_t)d->n_items);
    for (int sp = 0; sp < N_SPLITS; sp++) {
        const split_out *so = &d->split[sp];
        if (!so->present) continue;
        const sessions *s = so->store;
        for (int k = 0; k < so->n_shards; k++) {
            fp = mix(fp, (uint64_t)(sp * 1000003 + k));
            for (int64_t q = deal[sp].start[k]; q < deal[sp].start[k + 1]; q++) {
                const int64_t i = deal[sp].order[q];
                const int32_t *it = s->item + s->start[i];
                for (int32_t j = 0; j < s->len[i]; j++) fp = mix(fp, (uint64_t)d->dense[it[j]]);
                fp = mix(fp, (uint64_t)s->len[i]);
            }
        }
    }
    return fp;
}

// ---- one shard file ----

// Session I's id: its key, or "key#part" for sessions cut from a user's events (formatted
// in *BUF). Returns the id, its length in *LEN.
static const char *session_name(const sessions *s, int64_t i, char **buf, size_t *cap, size_t *len) {
    const char *key = idmap_str(&s->keys, s->key[i]);
    *len = strlen(key);
    if (!s->part) return key;
    if (*len + 16 > *cap) {
        *cap = (*len + 16) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    *len = (size_t)snprintf(*buf, *cap, "%s#%d", key, s->part[i]);
    return *buf;
}

static size_t decimal_digits(int32_t v) {
    size_t n = 1;
    for (; v >= 10; v /= 10) n++;
    return n;
}

static size_t session_name_length(const sessions *s, int64_t i) {
    size_t n = strlen(idmap_str(&s->keys, s->key[i]));
    return s->part ? n + 1 + decimal_digits(s->part[i]) : n;
}

static void write_shard(const char *path, const dataset_out *d, int split, int shard, const int64_t *list,
                        int64_t n_sessions, int64_t n_events) {
    const split_out *so = &d->split[split];
    const sessions *s = so->store;
    hid_t f = h5_create(path);
    int lvl = d->compression;
    hid_t d_off = h5_create_1d(f, "session_offsets", H5T_STD_I64LE, n_sessions + 1, DATASET_CHUNK, lvl);
    hid_t d_items = h5_create_1d(f, "items", H5T_STD_I32LE, n_events, DATASET_CHUNK, lvl);
    hid_t d_times = h5_create_1d(f, "times", H5T_STD_I64LE, n_events, DATASET_CHUNK, lvl);
    chunk_writer w_off, w_items, w_times;
    cw_open(&w_off, d_off, sizeof(int64_t), lvl);
    cw_open(&w_items, d_items, sizeof(int32_t), lvl);
    cw_open(&w_times, d_times, sizeof(int64_t), lvl);
    // The session ids' table is sized first (string_table.h: sizes known before reading).
    char *name_buf = NULL;
    size_t name_cap = 0;
    int64_t chars = 0;
    for (int64_t k = 0; k < n_sessions; k++) chars += (int64_t)session_name_length(s, list[k]);
    strtab_writer ids;
    strtab_begin(&ids, f, "session_ids", n_sessions, chars, DATASET_CHUNK, lvl);
    int64_t t_min = INT64_MAX, t_max = INT64_MIN, events = 0;
    cw_append(&w_off, &events, 1);
    int32_t dense_items[256];
    for (int64_t k = 0; k < n_sessions; k++) {
        if ((k & 1023) == 0) stop_if_signalled();
        int64_t i = list[k];
        int32_t len = s->len[i];
        size_t name_len;
        const char *name = session_name(s, i, &name_buf, &name_cap, &name_len);
        strtab_add(&ids, name, name_len);
        const int32_t *it = s->item + s->start[i];
        const int64_t *tm = s->time + s->start[i];
        for (int32_t j = 0; j < len; j += 256) {
            int32_t m = len - j < 256 ? len - j : 256;
            for (int32_t q = 0; q < m; q++) dense_items[q] = d->dense[it[j + q]];
            cw_append(&w_items, dense_items, m);
        }
        cw_append(&w_times, tm, len);
        if (tm[0] < t_min) t_min = tm[0];
        if (tm[len - 1] > t_max) t_max = tm[len - 1];
        events += len;
        cw_append(&w_off, &events, 1);
    }
    free(name_buf);
    strtab_end(&ids);
    CHECK(events == n_events, "shard %s: wrote %lld of %lld events", path, (long long)events, (long long)n_events);
    cw_close(&w_off);
    cw_close(&w_items);
    cw_close(&w_times);
    if (n_sessions == 0) t_min = t_max = 0;
    // What the shard is (dataset_open checks each against meta.h5 and the file's name).
    h5_attr_str(f, "dataset_fingerprint", d->fingerprint);
    h5_attr_str(f, "split", split_names[split]);
    h5_attr_i64(f, "shard", shard);
    h5_attr_i64(f, "n_shards", so->n_shards);
    h5_attr_i64(f, "format_version", DATASET_FORMAT_VERSION);
    h5_attr_i64(f, "n_sessions", n_sessions);
    h5_attr_i64(f, "n_events", n_events);
    h5_attr_i64(f, "t_min", t_min);
    h5_attr_i64(f, "t_max", t_max);
    h5_attr_str(f, "time_unit", d->time_unit);
    H5Dclose(d_off);
    H5Dclose(d_items);
    H5Dclose(d_times);
    h5_close(f, path);
    fsync_path(path);
}

// ---- the whole dataset ----

static void write_meta(const char *path, const dataset_out *d) {
    hid_t f = h5_create(path);
    const char **names = xmalloc((size_t)(d->n_items ? d->n_items : 1) * sizeof *names);
    int64_t chars = 0;
    for (int32_t raw = 0; raw < d->items->count; raw++)
        if (d->dense[raw] >= 0) {
            names[d->dense[raw]] = idmap_str(d->items, raw);
            chars += (int64_t)strlen(names[d->dense[raw]]);
        }
    strtab_writer ids;
    strtab_begin(&ids, f, "item_ids", d->n_items, chars, DATASET_CHUNK, d->compression);
    for (int32_t i = 0; i < d->n_items; i++) strtab_add(&ids, names[i], strlen(names[i]));
    strtab_end(&ids);
    free(names);
    hid_t sup = h5_create_1d(f, "item_support", H5T_STD_I64LE, d->n_items, DATASET_CHUNK, d->compression);
    chunk_writer w;
    cw_open(&w, sup, sizeof(int64_t), d->compression);
    cw_append(&w, d->support, d->n_items);
    cw_close(&w);
    H5Dclose(sup);
    h5_attr_i64(f, "format_version", DATASET_FORMAT_VERSION);
    h5_attr_i64(f, "n_items", d->n_items);
    h5_attr_str(f, "time_unit", d->time_unit);
    h5_attr_str(f, "source", d->source);
    h5_attr_str(f, "filters", d->filters);
    h5_attr_str(f, "summary", d->summary);
    h5_attr_str(f, "fingerprint", d->fingerprint);
    h5_attr_str(f, "created_by", "grurec-prep " GRUREC_VERSION);
    for (int sp = 0; sp < N_SPLITS; sp++) {
        const split_out *so = &d->split[sp];
        if (!so->present) continue;
        char key[64];
#define SPLIT_ATTR(field, value)                                   \
    snprintf(key, sizeof key, "%s_" field, split_names[sp]);       \
    h5_attr_i64(f, key, value);
        SPLIT_ATTR("n_shards", so->n_shards)
        SPLIT_ATTR("n_sessions", so->n_sessions)
        SPLIT_ATTR("n_events", so->n_events)
        SPLIT_ATTR("t_min", so->t_min)
        SPLIT_ATTR("t_max", so->t_max)
        SPLIT_ATTR("n_dropped_unknown_items", so->dropped_unknown_items)
#undef SPLIT_ATTR
    }
    h5_close(f, path);
    fsync_path(path);
}

static void write_split(const char *dir, dataset_out *d, int sp, const split_deal *dl) {
    split_out *so = &d->split[sp];
    char path[4096];
    xsnprintf(path, sizeof path, "%s/%s", dir, split_names[sp]);
    CHECK(mkdir(path, 0777) == 0, "mkdir %s: %s", path, strerror(errno));
    for (int k = 0; k < so->n_shards; k++) {
        stop_if_signalled();
        dataset_shard_path(path, sizeof path, dir, sp, k, so->n_shards);
        write_shard(path, d, sp, k, dl->order + dl->start[k], dl->start[k + 1] - dl->start[k], so->shard_events[k]);
    }
}

void write_dataset(const char *out, int force, dataset_out *d) {
    check_output_path(out, force);
    char tmp[4096], old[4096], path[4096];
    xsnprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
    xsnprintf(old, sizeof old, "%s.old-%ld", out, (long)getpid());
    remove_stale_temporaries(out);
    remove_tree(tmp);
    g_tmp_dir = tmp;
    catch_stop_signals(1);  // before the directory exists: it never outlives a SIGINT / SIGTERM
    if (mkdir(tmp, 0777) != 0) {  // a full or failing disk is a system error; the rest is the path's
        int e = errno;
        CHECK(e != ENOSPC && e != EDQUOT && e != EIO, "cannot create %s: %s", tmp, strerror(e));
        input_fail(out, 0, "cannot create the dataset: %s: %s", tmp, strerror(e));
    }
    set_fail_cleanup(remove_tree_hook, tmp);  // any failure from here on removes it
    split_deal deal[N_SPLITS];
    memset(deal, 0, sizeof deal);
    for (int sp = 0; sp < N_SPLITS; sp++)
        if (d->split[sp].present) deal_split(d, sp, &deal[sp]);
    snprintf(d->fingerprint, sizeof d->fingerprint, "%016llx", (unsigned long long)fingerprint(d, deal));
    for (int sp = 0; sp < N_SPLITS; sp++) {
        if (d->split[sp].present) write_split(tmp, d, sp, &deal[sp]);
        free(deal[sp].order);
        free(deal[sp].start);
    }
    xsnprintf(path, sizeof path, "%s/meta.h5", tmp);
    write_meta(path, d);
    fsync_path(tmp);
    stop_if_signalled();  // the last moment at which an interruption leaves nothing
    struct stat st;
    int replacing = stat(out, &st) == 0;
    if (replacing) CHECK(rename(out, old) == 0, "cannot move %s aside: %s", out, strerror(errno));
    CHECK(rename(tmp, out) == 0, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    set_fail_cleanup(NULL, NULL);
    if (replacing) remove_tree(old);
    catch_stop_signals(0);
    if (g_signal) raise(g_signal);  // came during the rename: the dataset is complete
}
