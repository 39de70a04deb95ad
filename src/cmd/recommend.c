#include "cmd/recommend.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/blas_setup.h"
#include "util/check.h"
#include "util/options.h"
#include "util/escape.h"
#include "model/gru.h"
#include "util/clock.h"
#include "backend/sgemm.h"
#include "data/dataset.h"
#include "io/h5util.h"
#include "io/id_table.h"

typedef struct {
    float s;
    int32_t i;
} cand_t;  // a candidate of the selection

// ---------------------------------------------------------------------------------
// Item id -> dense id

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a finaliser to spread the bits
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void idmap_build(rec_idmap *mp, char **ids, int64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n) cap <<= 1;
    mp->mask = cap - 1;
    mp->slot_id1 = xcalloc(cap, sizeof *mp->slot_id1);
    mp->slot_tag = xcalloc(cap, sizeof *mp->slot_tag);
    for (int64_t i = 0; i < n; i++) {
        const char *s = ids[i] ? ids[i] : "";
        uint64_t h = hash_bytes(s, strlen(s)), pos = h & mp->mask;
        uint32_t tag = (uint32_t)(h >> 32);
        for (;; pos = (pos + 1) & mp->mask) {
            uint32_t id1 = mp->slot_id1[pos];
            if (!id1) {
                mp->slot_id1[pos] = (uint32_t)i + 1;
                mp->slot_tag[pos] = tag;
                break;
            }
            const char *t = ids[id1 - 1] ? ids[id1 - 1] : "";
            if (mp->slot_tag[pos] == tag && strcmp(t, s) == 0) break;  // a repeated id keeps the first
        }
    }
}

int32_t rec_item_index(const recommender *r, const char *s, size_t n) {
    const rec_idmap *mp = &r->map;
    uint64_t h = hash_bytes(s, n), pos = h & mp->mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;; pos = (pos + 1) & mp->mask) {
        uint32_t id1 = mp->slot_id1[pos];
        if (!id1) return -1;
        if (mp->slot_tag[pos] != tag) continue;
        const char *t = r->ids[id1 - 1] ? r->ids[id1 - 1] : "";
        if (strlen(t) == n && memcmp(t, s, n) == 0) return (int32_t)(id1 - 1);
    }
}

// ---------------------------------------------------------------------------------
// Loading

void rec_open(recommender *r, const char *model, const char *data_dir, int max_rows) {
    memset(r, 0, sizeof *r);
    char path[4096];
    model_resolve_path(model, path, sizeof path);
    char *fp;
    model_load(path, &r->s, &r->p, &r->c, &fp, &r->ids);
    if (data_dir) {
        dataset_meta m;
        dataset_open(data_dir, &m);
        if (r->s.n_items != m.n_items || strcmp(fp, m.fingerprint) != 0)
            input_fail(path, 0, "this model was trained on another dataset (fingerprint %s, %lld items; %s has %s, %lld items)",
                       fp, (long long)r->s.n_items, data_dir, m.fingerprint, (long long)m.n_items);
        if (!r->ids) r->ids = dataset_item_ids(&m);  // an older model: the dataset has them (one allocation too)
        dataset_close(&m);
    } else if (!r->ids) {
        input_fail(path, 0, "this model holds no item ids (written by a grurec before models had them): give --data DIR");
    }
    free(fp);
    idmap_build(&r->map, r->ids, r->s.n_items);
    if (max_rows < 1) {  // as many sessions as keep a batch's scores within 512 MiB
        const int64_t fit = ((int64_t)1 << 27) / (r->s.n_items > 0 ? r->s.n_items : 1);
        max_rows = fit < 1 ? 1 : fit > 256 ? 256 : (int)fit;
    }
    r->max_rows = max_rows;
    r->b = backend_create(&r->c, &r->s, &r->p, r->max_rows, 0, 0, NULL);
    const size_t N = (size_t)r->s.n_items;
    r->cand = xmalloc(rec_topk_scratch_bytes((int64_t)N));
    r->seen = xcalloc(N ? N : 1, sizeof *r->seen);
    r->x = xmalloc((size_t)r->max_rows * sizeof *r->x);
    r->order = xmalloc((size_t)r->max_rows * sizeof *r->order);
    // Warm up (part of the load time) with a session of two items: the first products
    // initialise the BLAS library and the first scoring touches the buffers' pages.
    const int32_t first[2] = {0, 0}, *items[1] = {first};
    const int two = 2;
    int32_t id;
    float sc;
    int cnt;
    rec_batch(r, 1, items, &two, 1, 0, &id, &sc, &cnt);
}

void rec_close(recommender *r) {
    backend_free(r->b);
    free(r->cand);
    free(r->seen);
    free(r->x);
    free(r->order);
    free(r->map.slot_id1);
    free(r->map.slot_tag);
    free(r->ids);
    tensors_free(&r->p);
}

// ---------------------------------------------------------------------------------
// Scoring

// The order of the output: higher score first, then lower id (a total order: the
// result does not depend on the pivots).
static inline int better(cand_t a, cand_t b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

static int cmp_cand(const void *pa, const void *pb) {
    cand_t a = *(const cand_t *)pa, b = *(const cand_t *)pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

// Quickselect: afterwards a[0..k) hold the k best of a[0..n), in no particular order.
static void select_best(cand_t *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    while (lo < hi) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int64_t pi = lo + (int64_t)(rng % (uint64_t)(hi - lo + 1));
        cand_t p = a[pi], t;
        a[pi] = a[hi];
        a[hi] = p;
        int64_t store = lo;
        for (int64_t i = lo; i < hi; i++)
            if (better(a[i], p)) {
                t = a[i];
                a[i] = a[store];
                a[store++] = t;
            }
        a[hi] = a[store];
        a[store] = p;  // a[lo..store) better than p, a(store..hi] worse
        if (store == k || store == k - 1) return;
        if (store > k) hi = store - 1;
        else lo = store + 1;
    }
}

size_t rec_topk_scratch_bytes(int64_t N) { return (size_t)(N > 0 ? N : 1) * 2 * sizeof(cand_t); }

// The top k in three passes, each O(N) or less. (1) The maximum of every group of G
// consecutive items (skipped items left out); the k-th largest of these maxima, tau,
// has at least k items at or above it, so every item of the top k scores >= tau.
// (2) Collect the items scoring >= tau: with about 8k groups, little more than k of
// them. (3) Quickselect the k best of those and sort them. When tau cannot be had
// (fewer than k groups with a finite maximum) all items are candidates.
int rec_topk(const float *scores, int64_t N, int k, const int32_t *skip, int32_t stamp, void *scratch,
             int32_t *out_ids, float *out_scores) {
    if (k <= 0 || N <= 0) return 0;
    cand_t *a = scratch, *g = a + N;
    int64_t G = 8 * (int64_t)k, gs = G < N ? N / G : 1;
    if (gs < 1) gs = 1;
    G = (N + gs - 1) / gs;
    float tau = -INFINITY;
    if (G > k) {
        for (int64_t q = 0; q < G; q++) {
            const int64_t lo = q * gs, hi = lo + gs < N ? lo + gs : N;
            float m = -INFINITY;
            if (skip) {
                for (int64_t i = lo; i < hi; i++)
                    if (skip[i] != stamp && scores[i] > m) m = scores[i];
            } else {  // eight running maxima (a NaN never wins a comparison)
                float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
                int64_t i = lo;
                for (; i + 8 <= hi; i += 8)
                    for (int u = 0; u < 8; u++) m8[u] = scores[i + u] > m8[u] ? scores[i + u] : m8[u];
                for (; i < hi; i++) m = scores[i] > m ? scores[i] : m;
                for (int u = 0; u < 8; u++) m = m8[u] > m ? m8[u] : m;
            }
            g[q].s = m;
            g[q].i = (int32_t)q;
        }
        select_best(g, G, k);
        tau = g[0].s;
        for (int j = 1; j < k; j++)
            if (g[j].s < tau) tau = g[j].s;
    }
    int64_t n = 0;
    if (tau > -INFINITY) {
        for (int64_t i = 0; i < N; i++)
            if (scores[i] >= tau && !(skip && skip[i] == stamp)) {
                a[n].s = scores[i];
                a[n].i = (int32_t)i;
                n++;
            }
    } else {
        for (int64_t i = 0; i < N; i++) {
            if (skip && skip[i] == stamp) continue;
            float v = scores[i];
            a[n].s = v == v ? v : -INFINITY;
            a[n].i = (int32_t)i;
            n++;
        }
    }
    int64_t kk = k < n ? k : n;
    if (kk <= 0) return 0;
    if (kk < n) select_best(a, n, kk);
    qsort(a, (size_t)kk, sizeof *a, cmp_cand);
    for (int64_t j = 0; j < kk; j++) {
        out_ids[j] = a[j].i;
        out_scores[j] = scores[a[j].i];
    }
    return (int)kk;
}

static int cmp_i64(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

// Sessions of a batch are rows of the backend, longest first, and right-aligned: a
// session of length L starts at step T-L (T = the longest), so that every session
// reaches its last item at the last step, where one backend_score_all scores all rows
// at once. Until its start a row is not fed, and keeps the zero state it was given;
// the rows fed at step t are always a prefix 0..M_t-1 of the rows.
void rec_batch(recommender *r, int n, const int32_t *const *items, const int *lens, int k, int exclude_seen,
               int32_t *out_ids, float *out_scores, int *out_n) {
    CHECK(n >= 1 && n <= r->max_rows, "batch of %d sessions for %d rows", n, r->max_rows);
    for (int j = 0; j < n; j++) {
        CHECK(lens[j] >= 1, "an empty session reached the scorer");
        for (int e = 0; e < lens[j]; e++)
            CHECK(items[j][e] >= 0 && items[j][e] < r->s.n_items, "item %d out of range", (int)items[j][e]);
        r->order[j] = ((int64_t)(INT_MAX - lens[j]) << 32) | j;
    }
    qsort(r->order, (size_t)n, sizeof *r->order, cmp_i64);
    int row_of_first = (int)(r->order[0] & 0xffffffff);
    const int T = lens[row_of_first];
    backend_zero_states(r->b);
    const float *scores = NULL;
    int M = 0;
    for (int t = 0; t < T; t++) {
        while (M < n && lens[r->order[M] & 0xffffffff] >= T - t) M++;
        for (int row = 0; row < M; row++) {
            int j = (int)(r->order[row] & 0xffffffff);
            r->x[row] = items[j][t - (T - lens[j])];
        }
        if (t == T - 1) scores = backend_score_all(r->b, M, r->x);
        else if (r->full_scoring) (void)backend_score_all(r->b, M, r->x);
        else backend_feed(r->b, M, r->x);
    }
    const int64_t N = r->s.n_items;
    for (int row = 0; row < n; row++) {
        int j = (int)(r->order[row] & 0xffffffff);
        const int32_t *skip = NULL;
        if (exclude_seen) {
            if (r->stamp == INT32_MAX) {
                memset(r->seen, 0, (size_t)N * sizeof *r->seen);
                r->stamp = 0;
            }
            r->stamp++;
            for (int e = 0; e < lens[j]; e++) r->seen[items[j][e]] = r->stamp;
            skip = r->seen;
        }
        out_n[j] = rec_topk(scores + (size_t)row * N, N, k, skip, r->stamp, r->cand, out_ids + (size_t)j * k,
                            out_scores + (size_t)j * k);
    }
}

// ---------------------------------------------------------------------------------
// The command

static const char *const rec_usage =
    "usage: grurec recommend --model RUN|FILE [--data DIR] (--session ITEM,ITEM,… | --input FILE)\n"
    "                        [-k 20] [--json] [--exclude-seen] [--batch N] [--threads T] [--verbose]\n"
    "                        [--device cpu|cuda|auto]\n"
    "\n"
    "Feeds each session's items, in order, from a zero state and prints the k items with\n"
    "the highest scores (h·Wyᵀ + by) after its last item. Item ids are the original ids,\n"
    "which the model file holds: a model.h5 copied alone to a serving host is enough.\n"
    "Unknown ids are reported on stderr and skipped; a session without a known item gets none.\n"
    "  --model         a model file, or a run directory (its model.h5)\n"
    "  --data DIR      optional: check that the model was trained on DIR (same fingerprint);\n"
    "                  needed for the ids of a model written before models held them\n"
    "  --session S     one session: comma-separated item ids, oldest first\n"
    "  --input FILE    many sessions ('-' = stdin): one per line, 'ITEM,ITEM,…' or\n"
    "                  'SESSION_ID<TAB>ITEM,ITEM,…'; or the gru4rec TSV (header\n"
    "                  'SessionId<TAB>ItemId<TAB>Time', each session's lines contiguous)\n"
    "  -k K            recommendations per session (20)\n"
    "  --exclude-seen  never recommend an item of the session itself\n"
    "  --json          one object per session: {\"session\": …, \"items\": […], \"scores\": […]}\n"
    "                  (sessions without an id are numbered: --session is \"1\", lines by line number)\n"
    "  --batch N       sessions scored at once with --input (256, fewer for huge catalogues)\n"
    "  --threads T     OpenBLAS threads (1)\n"
    "  --device D      cpu (default: a session at a time is latency-bound) | cuda | auto\n"
    "  --verbose       load time and per-session latency on stderr\n"
    "  --full-scoring  score all items at every step, as the evaluator does (slow; for checks)\n"
    "Plain output: 'RANK<TAB>ITEM<TAB>SCORE' per line for --session, and\n"
    "'SESSION<TAB>RANK<TAB>ITEM<TAB>SCORE' for --input. With --input, the number of\n"
    "sessions per second is printed on stderr at the end.\n"
    "\n"
    "Exit status: 0 done, 1 internal error, 2 bad input or usage (a model of another dataset).\n";

typedef struct {
    int k, json, exclude_seen, input_mode, verbose;
    FILE *out;
    int64_t n_unknown, n_unknown_shown;
    int64_t n_sessions, n_events, n_empty;
} rec_opts;

enum { MAX_UNKNOWN_SHOWN = 100 };

static void report_unknown(rec_opts *o, const char *s, size_t n) {
    o->n_unknown++;
    if (o->n_unknown_shown >= MAX_UNKNOWN_SHOWN) return;
    o->n_unknown_shown++;
    char text[ESCAPED_MAX];
    fprintf(stderr, "%s: unknown item '%s' skipped\n", program_name(), escape_text(text, s, n));
}

// A batch of sessions as read: ids, and the known items of all of them in one pool.
typedef struct {
    int n, cap;
    char **sid;
    size_t *start;
    int *len;
    int32_t *pool;
    size_t pool_len, pool_cap;
    // scratch of rec_batch over the non-empty sessions
    const int32_t **items;
    int *lens, *map, *out_n;
    int32_t *out_ids;
    float *out_scores;
} sess_batch;

static void batch_init(sess_batch *bt, int cap, int k) {
    memset(bt, 0, sizeof *bt);
    bt->cap = cap;
    bt->sid = xcalloc((size_t)cap, sizeof *bt->sid);
    bt->start = xmalloc((size_t)cap * sizeof *bt->start);
    bt->len = xmalloc((size_t)cap * sizeof *bt->len);
    bt->pool_cap = 4096;
    bt->pool = xmalloc(bt->pool_cap * sizeof *bt->pool);
    bt->items = xmalloc((size_t)cap * sizeof *bt->items);
    bt->lens = xmalloc((size_t)cap * sizeof *bt->lens);
    bt->map = xmalloc((size_t)cap * sizeof *bt->map);
    bt->out_n = xmalloc((size_t)cap * sizeof *bt->out_n);
    bt->out_ids = xmalloc((size_t)cap * (size_t)k * sizeof *bt->out_ids);
    bt->out_scores = xmalloc((size_t)cap * (size_t)k * sizeof *bt->out_scores);
}

static void batch_free(sess_batch *bt) {
    for (int j = 0; j < bt->n; j++) free(bt->sid[j]);
    free(bt->sid); free(bt->start); free(bt->len); free(bt->pool); free(bt->items); free(bt->lens);
    free(bt->map); free(bt->out_n); free(bt->out_ids); free(bt->out_scores);
}

static void batch_begin_session(sess_batch *bt, const char *sid, size_t sid_len) {
    char *s = xmalloc(sid_len + 1);
    memcpy(s, sid, sid_len);
    s[sid_len] = '\0';
    bt->sid[bt->n] = s;
    bt->start[bt->n] = bt->pool_len;
    bt->len[bt->n] = 0;
    bt->n++;
}

static void batch_push_item(sess_batch *bt, int32_t item) {
    if (bt->pool_len == bt->pool_cap) {
        bt->pool_cap *= 2;
        bt->pool = xrealloc(bt->pool, bt->pool_cap * sizeof *bt->pool);
    }
    bt->pool[bt->pool_len++] = item;
    CHECK(bt->len[bt->n - 1] < INT_MAX, "session too long");
    bt->len[bt->n - 1]++;
}

static void print_session(rec_opts *o, const recommender *r, const char *sid, const int32_t *ids, const float *sc, int cnt) {
    FILE *f = o->out;
    if (o->json) {
        fputs("{\"session\": ", f);
        json_write_str(f, sid);
        fputs(", \"items\": [", f);
        for (int i = 0; i < cnt; i++) {
            if (i) fputs(", ", f);
            json_write_str(f, r->ids[ids[i]] ? r->ids[ids[i]] : "");
        }
        fputs("], \"scores\": [", f);
        for (int i = 0; i < cnt; i++) {
            if (i) fputs(", ", f);
            if (isfinite(sc[i])) fprintf(f, "%.7g", sc[i]);
            else fputs("null", f);
        }
        fputs("]}\n", f);
        return;
    }
    for (int i = 0; i < cnt; i++) {
        const char *item = r->ids[ids[i]] ? r->ids[ids[i]] : "";
        if (o->input_mode) fprintf(f, "%s\t%d\t%s\t%.7g\n", sid, i + 1, item, sc[i]);
        else fprintf(f, "%d\t%s\t%.7g\n", i + 1, item, sc[i]);
    }
}

// Scores the batch's non-empty sessions and prints every session in input order.
static void batch_flush(sess_batch *bt, recommender *r, rec_opts *o) {
    int m = 0;
    for (int j = 0; j < bt->n; j++) {
        o->n_sessions++;
        o->n_events += bt->len[j];
        if (bt->len[j] == 0) continue;
        bt->items[m] = bt->pool + bt->start[j];
        bt->lens[m] = bt->len[j];
        bt->map[j] = m++;
    }
    if (m > 0) rec_batch(r, m, bt->items, bt->lens, o->k, o->exclude_seen, bt->out_ids, bt->out_scores, bt->out_n);
    for (int j = 0; j < bt->n; j++) {
        if (bt->len[j] == 0) {
            o->n_empty++;
            char text[ESCAPED_MAX];
            fprintf(stderr, "%s: session '%s' has no known item: no recommendation\n", program_name(),
                    escape_text(text, bt->sid[j], strlen(bt->sid[j])));
            if (o->json) print_session(o, r, bt->sid[j], NULL, NULL, 0);
        } else {
            int q = bt->map[j];
            print_session(o, r, bt->sid[j], bt->out_ids + (size_t)q * o->k, bt->out_scores + (size_t)q * o->k, bt->out_n[q]);
        }
        free(bt->sid[j]);
        bt->sid[j] = NULL;
    }
    bt->n = 0;
    bt->pool_len = 0;
}

static size_t trim(const char **s, size_t n) {
    while (n && (**s == ' ' || **s == '\t' || **s == '\r')) { (*s)++; n--; }
    while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t' || (*s)[n - 1] == '\r' || (*s)[n - 1] == '\n')) n--;
    return n;
}

// Appends the known items of a comma-separated list to the current session.
static void push_item_list(sess_batch *bt, recommender *r, rec_opts *o, const char *s, size_t n) {
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',') j++;
        const char *tok = s + i;
        size_t len = trim(&tok, j - i);
        if (len > 0) {
            int32_t id = rec_item_index(r, tok, len);
            if (id < 0) report_unknown(o, tok, len);
            else batch_push_item(bt, id);
        }
        i = j + 1;
    }
}

// Splits LINE at tabs into at most MAX fields; returns the count.
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

typedef struct {
    double t;
    int64_t pos;
    int32_t item;
} tsv_event;

static int cmp_event(const void *pa, const void *pb) {
    const tsv_event *a = pa, *b = pb;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static void run_input(recommender *r, rec_opts *o, const char *path, int batch) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) input_fail(path, 0, "cannot open: %s", strerror(errno));
    sess_batch bt;
    batch_init(&bt, batch, o->k);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int mode = -1;  // 0 = one session per line, 1 = gru4rec TSV
    int c_sid = -1, c_item = -1, c_time = -1, n_cols = 0;
    // TSV: the events of the session being read (sorted by time when it ends)
    tsv_event *ev = NULL;
    size_t n_ev = 0, ev_cap = 0;
    char *cur_sid = NULL;
    int times_ok = 1;
    for (;;) {
        got = getline(&line, &cap, f);
        if (got < 0) break;
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (mode < 0) {
            if (got == 0) continue;
            char *copy = xstrdup(line), *fl[64];
            int nf = split_tabs(copy, fl, 64);
            for (int i = 0; i < nf; i++) {
                const char *h = fl[i];
                size_t hl = trim(&h, strlen(h));
                if (hl == 9 && strncmp(h, "SessionId", 9) == 0) c_sid = i;
                else if (hl == 6 && strncmp(h, "ItemId", 6) == 0) c_item = i;
                else if (hl == 4 && strncmp(h, "Time", 4) == 0) c_time = i;
            }
            free(copy);
            mode = c_sid >= 0 && c_item >= 0;
            if (mode == 1) {
                n_cols = (c_sid > c_item ? c_sid : c_item) + 1;
                if (c_time + 1 > n_cols) n_cols = c_time + 1;
                continue;  // the header
            }
        }
        if (mode == 0) {
            const char *s = line;
            size_t n = trim(&s, (size_t)got);
            if (n == 0) continue;
            if (bt.n == bt.cap) batch_flush(&bt, r, o);
            const char *tab = memchr(s, '\t', n);
            if (tab) {
                const char *id = s;
                size_t idl = trim(&id, (size_t)(tab - s));
                batch_begin_session(&bt, id, idl);
                push_item_list(&bt, r, o, tab + 1, n - (size_t)(tab - s) - 1);
            } else {
                char num[32];
                int nl = snprintf(num, sizeof num, "%ld", lineno);
                batch_begin_session(&bt, num, (size_t)nl);
                push_item_list(&bt, r, o, s, n);
            }
            continue;
        }
        // gru4rec TSV
        if (got == 0) continue;
        char *fl[64];
        int nf = split_tabs(line, fl, 64);
        if (nf < n_cols)
            input_fail(path, lineno, "expected %d tab-separated columns as the header says (SessionId, ItemId, Time), found %d",
                       n_cols, nf);
        const char *sid = fl[c_sid], *item = fl[c_item];
        size_t sl = trim(&sid, strlen(sid)), il = trim(&item, strlen(item));
        if (!cur_sid || strlen(cur_sid) != sl || strncmp(cur_sid, sid, sl) != 0) {
            if (cur_sid) {  // the previous session is complete
                if (times_ok) qsort(ev, n_ev, sizeof *ev, cmp_event);
                if (bt.n == bt.cap) batch_flush(&bt, r, o);
                batch_begin_session(&bt, cur_sid, strlen(cur_sid));
                for (size_t e = 0; e < n_ev; e++) batch_push_item(&bt, ev[e].item);
                free(cur_sid);
            }
            cur_sid = xmalloc(sl + 1);
            memcpy(cur_sid, sid, sl);
            cur_sid[sl] = '\0';
            n_ev = 0;
            times_ok = 1;
        }
        int32_t id = il ? rec_item_index(r, item, il) : -1;
        if (id < 0) {
            if (il) report_unknown(o, item, il);
            continue;
        }
        if (n_ev == ev_cap) {
            ev_cap = ev_cap ? 2 * ev_cap : 64;
            ev = xrealloc(ev, ev_cap * sizeof *ev);
        }
        double t = 0;
        if (c_time >= 0) {
            char *end;
            t = strtod(fl[c_time], &end);
            while (*end == ' ' || *end == '\r') end++;
            if (end == fl[c_time] || *end) times_ok = 0;  // not a number: keep the file's order
        }
        ev[n_ev].t = t;
        ev[n_ev].pos = (int64_t)n_ev;
        ev[n_ev].item = id;
        n_ev++;
    }
    if (ferror(f)) input_fail(path, lineno, "read error: %s", strerror(errno));
    if (mode == 1 && cur_sid) {
        if (times_ok) qsort(ev, n_ev, sizeof *ev, cmp_event);
        if (bt.n == bt.cap) batch_flush(&bt, r, o);
        batch_begin_session(&bt, cur_sid, strlen(cur_sid));
        for (size_t e = 0; e < n_ev; e++) batch_push_item(&bt, ev[e].item);
        free(cur_sid);
    }
    if (bt.n) batch_flush(&bt, r, o);
    free(ev);
    free(line);
    batch_free(&bt);
    if (f != stdin) fclose(f);
}

int cmd_recommend(int argc, char **argv, comm *cm) {
    const char *data = NULL, *model = NULL, *session = NULL, *input = NULL, *device = "cpu";
    int k = 20, json = 0, exclude = 0, batch = 0, threads = 1, verbose = 0, full = 0;
    opt_parser op;
    for (opt_begin(&op, "recommend", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(rec_usage, stdout); return 0; }
        else if (opt_is(&op, "--data")) data = opt_str(&op);
        else if (opt_is(&op, "--model")) model = opt_str(&op);
        else if (opt_is(&op, "--session")) session = opt_str(&op);
        else if (opt_is(&op, "--input")) input = opt_str(&op);
        else if (opt_is(&op, "--device")) device = opt_str(&op);
        else if (opt_is(&op, "-k") || opt_is(&op, "--k")) k = (int)opt_int(&op, 1, INT_MAX);
        else if (opt_is(&op, "--batch")) batch = (int)opt_int(&op, 1, INT_MAX);
        else if (opt_is(&op, "--threads")) threads = (int)opt_int(&op, 1, INT_MAX);
        else if (opt_is(&op, "--json")) json = 1;
        else if (opt_is(&op, "--exclude-seen")) exclude = 1;
        else if (opt_is(&op, "--verbose") || opt_is(&op, "-v")) verbose = 1;
        else if (opt_is(&op, "--full-scoring")) full = 1;
        else opt_unknown(&op);
    }
    if (!model) usage_fail("recommend needs --model RUN|FILE");
    if (!session == !input) usage_fail("recommend needs one of --session ITEM,ITEM,… and --input FILE");
    if (comm_rank(cm) != 0) return 0;  // one process does the work
    backend_choose_device(device, comm_local_rank(cm), 1);
    sgemm_set_threads(threads);

    double t0 = now_s();
    if (session) batch = 1;
    recommender r;
    rec_open(&r, model, data, batch);  // (batch 0: chosen from the item count)
    batch = r.max_rows;
    const int64_t N = r.s.n_items;
    if (k > N) k = (int)N;
    r.full_scoring = full;
    double t_load = now_s() - t0;
    if (verbose)
        fprintf(stderr, "%s: loaded the model (%lld items, %d layer%s of %d units) in %.1f ms; batch %d, %d BLAS thread%s (%s)\n",
                program_name(), (long long)N, r.s.n_layers, r.s.n_layers > 1 ? "s" : "", r.s.hid[r.s.n_layers - 1],
                1e3 * t_load, batch, threads, threads > 1 ? "s" : "", blas_core_name());

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    rec_opts o = {.k = k, .json = json, .exclude_seen = exclude, .input_mode = input != NULL, .verbose = verbose, .out = stdout};
    if (session) {
        sess_batch bt;
        batch_init(&bt, 1, k);
        batch_begin_session(&bt, "1", 1);
        push_item_list(&bt, &r, &o, session, strlen(session));
        if (verbose && bt.len[0] > 0) {
            // Latency of one session: feed, score all items, select the k best.
            const int32_t *items[1] = {bt.pool};
            double first = 0, times[51];
            for (int rep = 0; rep < 51; rep++) {
                double ts = now_s();
                rec_batch(&r, 1, items, bt.len, k, exclude, bt.out_ids, bt.out_scores, bt.out_n);
                times[rep] = now_s() - ts;
                if (rep == 0) first = times[0];
            }
            for (int i = 1; i < 51; i++)  // median of the 50 repeats after the first
                for (int j = i; j > 1 && times[j] < times[j - 1]; j--) {
                    double t = times[j];
                    times[j] = times[j - 1];
                    times[j - 1] = t;
                }
            fprintf(stderr, "%s: latency for a session of %d items: %.3f ms (first call), %.3f ms (median of 50), %.3f ms (fastest)\n",
                    program_name(), bt.len[0], 1e3 * first, 1e3 * times[25], 1e3 * times[1]);
        }
        batch_flush(&bt, &r, &o);
        batch_free(&bt);
    } else {
        double ts = now_s();
        run_input(&r, &o, input, batch);
        fflush(stdout);
        double secs = now_s() - ts;
        fprintf(stderr, "%s: %lld sessions (%lld known events, %lld without a known item) in %.3f s: %.0f sessions/s\n",
                program_name(), (long long)o.n_sessions, (long long)o.n_events, (long long)o.n_empty, secs,
                secs > 0 ? (double)o.n_sessions / secs : 0.0);
    }
    if (o.n_unknown > o.n_unknown_shown)
        fprintf(stderr, "%s: %lld unknown items skipped in all (the first %d listed)\n", program_name(),
                (long long)o.n_unknown, MAX_UNKNOWN_SHOWN);
    // A full disk or a closed pipe must not pass for a complete list (exit 1, as other write failures).
    CHECK(fflush(stdout) == 0 && !ferror(stdout), "writing the recommendations to standard output failed: %s", strerror(errno));
    rec_close(&r);
    return 0;
}
