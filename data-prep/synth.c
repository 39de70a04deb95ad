// grurec-synth: deterministic synthetic click logs in the gru4rec TSV format.
//
// The data has learnable structure: Zipf item popularity plus a short successor list per
// item that the next click follows with probability --p-follow. Output is streamed
// (memory is O(items), never O(events)) and is byte-identical for the same flags.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/check.h"
#include "util/options.h"
#include "data/rng.h"
#include "util/clock.h"

#ifndef GRUREC_VERSION
#define GRUREC_VERSION "dev"
#endif

enum { OUT_BUF = 1 << 20, LINE_MAX_BYTES = 80, GZ_BUF = 1 << 20 };
enum { GAP_MIN_S = 5, GAP_MAX_S = 300 };

// ---- flags -------------------------------------------------------------------------------

typedef struct {
    uint64_t items, successors, max_length, events, sessions, seed, start;
    double zipf, p_follow, mean_length, days;
    double new_per_day, half_life;  // drift: items released per day, popularity half-life (days)
    const char *out;
    int gzip;
} options;

static void print_help(void) {
    fputs(
        "usage: grurec-synth [flags]\n"
        "Writes a deterministic synthetic click log (gru4rec TSV: SessionId\\tItemId\\tTime).\n"
        "\n"
        "Model:\n"
        "  Item popularity is Zipf(--zipf) over a random permutation of the item ids.\n"
        "  Each item has --successors successor items drawn from popularity at start-up.\n"
        "  A session's first item is drawn from popularity; each next item is, with\n"
        "  probability --p-follow, a uniform pick from the current item's successors,\n"
        "  otherwise a popularity draw (an immediate repeat is re-drawn once, so a few remain).\n"
        "  Session length is 1 + geometric with mean (--mean-length - 1), capped at --max-length.\n"
        "  Session starts are increasing and spread uniformly over --days days from --start;\n"
        "  clicks within a session are 5-300 s apart. Session ids are 1,2,3,...; item ids 1..N.\n"
        "  Drift (both off by default; the log is then as without them): with\n"
        "  --new-items-per-day R the highest item ids are released R a day from day 1 on (an\n"
        "  item is clicked only once released; a successor not yet released is replaced by a\n"
        "  popularity draw); with --half-life H an item's popularity halves every H days after\n"
        "  its release, so new items take over. Popularity is recomputed once a day.\n"
        "\n"
        "Flags (--flag value or --flag=value):\n"
        "  --items N         number of items (>= 2)                          [5000]\n"
        "  --zipf S          popularity exponent (>= 0, 0 = uniform)         [1.0]\n"
        "  --successors K    successor list length per item (1..1000)        [4]\n"
        "  --p-follow P      probability to follow a successor (0..1)        [0.7]\n"
        "  --mean-length L   mean session length (>= 1)                      [5]\n"
        "  --max-length M    session length cap (>= 1)                       [200]\n"
        "  --days D          time window in days (> 0)                       [30]\n"
        "  --start T         window start, unix seconds (>= 0)               [1600000000]\n"
        "  --events N        target event count; the session that reaches it [1000000]\n"
        "                    is the last one\n"
        "  --sessions N      exact number of sessions (overrides --events)\n"
        "  --seed S          random seed (unsigned 64-bit)                   [42]\n"
        "  --new-items-per-day R  items released per day (>= 0)              [0]\n"
        "  --half-life H     popularity half-life in days (> 0; 0 = none)    [0]\n"
        "  --out FILE        output file, - = stdout                         [-]\n"
        "  --gzip            gzip the output, zlib level 1 (implied by FILE.gz)\n"
        "  --help, --version\n"
        "A FILE is written as FILE.tmp and renamed at the end; a failed run leaves nothing.\n",
        stdout);
}

static void parse_args(int argc, char **argv, options *o) {
    *o = (options){.items = 5000, .successors = 4, .max_length = 200, .events = 1000000,
                   .sessions = 0, .seed = 42, .start = 1600000000, .zipf = 1.0,
                   .p_follow = 0.7, .mean_length = 5, .days = 30, .out = "-", .gzip = 0};
    const uint64_t big = UINT64_C(1000000000000000);  // 1e15: far beyond any real run
    opt_parser op;
    for (opt_begin(&op, NULL, argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help")) { print_help(); exit(0); }
        else if (opt_is(&op, "--version")) { puts("grurec-synth " GRUREC_VERSION); exit(0); }
        else if (opt_is(&op, "--gzip")) o->gzip = 1;
        else if (opt_is(&op, "--items")) o->items = opt_u64(&op, 2, INT32_MAX);
        else if (opt_is(&op, "--zipf")) o->zipf = opt_num(&op, 0, 10);
        else if (opt_is(&op, "--successors")) o->successors = opt_u64(&op, 1, 1000);
        else if (opt_is(&op, "--p-follow")) o->p_follow = opt_num(&op, 0, 1);
        else if (opt_is(&op, "--mean-length")) o->mean_length = opt_num(&op, 1, 1e6);
        else if (opt_is(&op, "--max-length")) o->max_length = opt_u64(&op, 1, 1000000);
        else if (opt_is(&op, "--days")) o->days = opt_num_above(&op, 0, 1e6);
        else if (opt_is(&op, "--start")) o->start = opt_u64(&op, 0, UINT64_C(100000000000));
        else if (opt_is(&op, "--events")) o->events = opt_u64(&op, 1, big);
        else if (opt_is(&op, "--sessions")) o->sessions = opt_u64(&op, 1, big);
        else if (opt_is(&op, "--seed")) o->seed = opt_u64(&op, 0, UINT64_MAX);
        else if (opt_is(&op, "--new-items-per-day")) o->new_per_day = opt_num(&op, 0, 1e9);
        else if (opt_is(&op, "--half-life")) o->half_life = opt_num(&op, 0, 1e6);
        else if (opt_is(&op, "--out")) {
            o->out = opt_raw(&op);
            if (!*o->out) usage_fail("--out needs a file name (or - for stdout)");
        } else opt_unknown(&op);
    }
    size_t n = strlen(o->out);
    if (n > 3 && strcmp(o->out + n - 3, ".gz") == 0) o->gzip = 1;
}

// ---- random numbers: the project's xoshiro256** (src/data/rng.h) -----------------------------

typedef rng_state rng;
#define rng_seed rng_state_seed
#define rng_next rng_next_u64

// Uniform in [0, n) for n < 2^32 (Lemire's multiply; the bias is below 2^-32 * n).
static inline uint32_t rng_below(rng *r, uint32_t n) {
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

// Uniform double in (0, 1]: safe to take the log of.
static inline double rng_unit_open0(rng *r) {
    return (double)((rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

// ---- popularity: Zipf weights over a random permutation, sampled by a Vose alias table ----

typedef struct { uint32_t thr, alias; } alias_slot;  // keep slot i if low 32 bits < thr

typedef struct {
    uint32_t n;
    alias_slot *slot;
} alias_table;

// Zipf weights over a random permutation: rank k (0 = most popular) belongs to item
// perm[k]. *SUM = their sum, added in rank order.
static double *zipf_weights(rng *r, uint32_t n, double zipf, double *sum) {
    uint32_t *perm = xmalloc(n * sizeof *perm);
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = rng_below(r, i + 1);
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    double *p = xmalloc(n * sizeof *p);
    *sum = 0;
    for (uint32_t k = 0; k < n; k++) *sum += (p[perm[k]] = pow((double)k + 1, -zipf));
    free(perm);
    return p;
}

// The alias table of weights P (scaled in place; SUM their sum). Items of weight 0 are
// never drawn.
static void alias_build(alias_table *t, double *p, uint32_t n, double sum) {
    for (uint32_t i = 0; i < n; i++) p[i] *= n / sum;  // mean 1: the alias invariant

    // Vose: "small" (p < 1) grows from the front of work[], "large" from the back.
    uint32_t *work = xmalloc(n * sizeof *work);
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < 1) work[ns++] = i;
        else work[n - 1 - nl++] = i;
    }
    t->n = n;
    t->slot = xmalloc(n * sizeof *t->slot);
    while (ns > 0 && nl > 0) {
        uint32_t s = work[--ns], l = work[n - nl--];
        t->slot[s] = (alias_slot){(uint32_t)(p[s] * 4294967296.0), l};
        p[l] = (p[l] + p[s]) - 1;
        if (p[l] < 1) work[ns++] = l;
        else work[n - 1 - nl++] = l;
    }
    // Leftovers are 1 up to rounding: always keep them (alias to themselves).
    while (ns > 0) { uint32_t i = work[--ns]; t->slot[i] = (alias_slot){UINT32_MAX, i}; }
    while (nl > 0) { uint32_t i = work[n - nl--]; t->slot[i] = (alias_slot){UINT32_MAX, i}; }
    free(work);
}

static inline uint32_t alias_draw(const alias_table *t, rng *r) {
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * t->n) >> 32);
    return (uint32_t)x < t->slot[i].thr ? i : t->slot[i].alias;
}

// ---- the click model ---------------------------------------------------------------------

typedef struct {
    alias_table pop;     // today's popularity
    double *base;        // drift: each item's Zipf weight at its release (NULL: no drift)
    uint32_t first_new;  // drift: items from this index on are released over time
    double new_per_day, half_life;
    int64_t day;         // the day POP is for
    uint32_t *succ;      // succ[i * k + j]: j-th successor of item i
    uint32_t k;
    uint64_t follow_thr; // follow a successor if (rng >> 11) < follow_thr (p_follow * 2^53)
    double log_q;        // log of the continue probability of the length geometric; 0 = off
    uint64_t max_length;
} model;

// Drift: the day item I is released (0 = there from the start).
static int64_t release_day(const model *m, uint32_t i) {
    if (i < m->first_new) return 0;
    return 1 + (int64_t)floor((double)(i - m->first_new) / m->new_per_day);
}

// Drift: rebuilds the popularity table for DAY: released items only, each halving every
// half-life days since its release.
static void set_day(model *m, int64_t day) {
    uint32_t n = m->pop.n;
    double *p = xmalloc(n * sizeof *p), sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        int64_t age = day - release_day(m, i);
        p[i] = age < 0 ? 0 : m->half_life > 0 ? m->base[i] * exp2(-(double)age / m->half_life) : m->base[i];
        sum += p[i];
    }
    free(m->pop.slot);
    alias_build(&m->pop, p, n, sum);
    free(p);
    m->day = day;
}

static void model_build(model *m, rng *r, const options *o) {
    uint32_t n = (uint32_t)o->items;
    double sum;
    double *w = zipf_weights(r, n, o->zipf, &sum);
    m->base = NULL;
    m->first_new = n;
    m->new_per_day = o->new_per_day;
    m->half_life = o->half_life;
    m->day = 0;
    if (o->new_per_day > 0 || o->half_life > 0) {
        m->base = xmalloc(n * sizeof *m->base);
        memcpy(m->base, w, n * sizeof *w);
        // R items a day from day 1 to the window's last day.
        double released = o->new_per_day * (ceil(o->days) - 1);
        if (released > (double)n - 2)
            usage_fail("--new-items-per-day %g over %g days releases more than --items %u minus 2", o->new_per_day,
                       o->days, n);
        m->first_new = n - (uint32_t)ceil(released);
    }
    // Successors come from every item's own weight, released or not: a successor is
    // followed once it is released.
    alias_build(&m->pop, w, n, sum);
    free(w);
    m->k = (uint32_t)o->successors;
    m->succ = xmalloc((size_t)n * m->k * sizeof *m->succ);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t *list = m->succ + (size_t)i * m->k;
        for (uint32_t j = 0; j < m->k; j++) {
            // Prefer distinct successors other than the item itself; give up after a few
            // tries (tiny catalogues or extreme --zipf) rather than loop forever.
            uint32_t c = 0;
            for (int tries = 0; tries < 64; tries++) {
                c = alias_draw(&m->pop, r);
                int dup = c == i;
                for (uint32_t q = 0; q < j && !dup; q++) dup = list[q] == c;
                if (!dup) break;
            }
            list[j] = c;
        }
    }
    m->follow_thr = (uint64_t)(o->p_follow * 9007199254740992.0);
    double mean_extra = o->mean_length - 1;
    m->log_q = mean_extra > 0 ? log(mean_extra / (1 + mean_extra)) : 0;
    m->max_length = o->max_length;
    if (m->base) set_day(m, 0);
}

static inline uint32_t draw_next(const model *m, rng *r, uint32_t cur) {
    if ((rng_next(r) >> 11) < m->follow_thr) {
        uint32_t s = m->succ[(size_t)cur * m->k + rng_below(r, m->k)];
        if (!m->base || release_day(m, s) <= m->day) return s;
    }
    return alias_draw(&m->pop, r);
}

static uint64_t draw_length(const model *m, rng *r) {
    if (m->log_q == 0) return 1;
    double g = floor(log(rng_unit_open0(r)) / m->log_q);  // geometric on {0,1,...}
    return g >= (double)(m->max_length - 1) ? m->max_length : 1 + (uint64_t)g;
}

// ---- output: one big buffer, integers formatted by hand ----------------------------------

typedef struct {
    const char *path;  // what messages name: the final file or "stdout"
    int fd;
    gzFile gz;
    char *buf;
    size_t len;
} sink;

static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline char *put_u64(char *p, uint64_t v) {
    int n = 1;
    for (uint64_t x = v; x >= 10; x /= 10) n++;
    char *e = p + n;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--e = digits2[d + 1];
        *--e = digits2[d];
    }
    if (v >= 10) {
        *--e = digits2[v * 2 + 1];
        *--e = digits2[v * 2];
    } else {
        *--e = (char)('0' + v);
    }
    return p + n;
}

static void sink_flush(sink *s) {
    if (s->len == 0) return;
    if (s->gz) {
        int w = gzwrite(s->gz, s->buf, (unsigned)s->len);
        int err;
        CHECK(w == (int)s->len, "writing %s failed: %s", s->path, gzerror(s->gz, &err));
    } else {
        for (size_t off = 0; off < s->len;) {
            ssize_t w = write(s->fd, s->buf + off, s->len - off);
            if (w < 0 && errno == EINTR) continue;
            CHECK(w > 0, "writing %s failed: %s", s->path, w < 0 ? strerror(errno) : "no progress");
            off += (size_t)w;
        }
    }
    s->len = 0;
}

// A failed run must not leave a half-written file behind.
static void remove_tmp(void *path) { unlink(path); }

static void sink_open(sink *s, const char *out, const char *tmp, int gzip) {
    memset(s, 0, sizeof *s);
    s->buf = xmalloc(OUT_BUF);
    if (tmp) {
        s->path = out;
        s->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (s->fd < 0) input_fail(out, 0, "cannot create: %s", strerror(errno));  // e.g. a missing directory
        set_fail_cleanup(remove_tmp, (void *)tmp);
    } else if (strcmp(out, "-") != 0) {  // a device or FIFO: written in place, never replaced
        s->path = out;
        s->fd = open(out, O_WRONLY);
        if (s->fd < 0) input_fail(out, 0, "cannot open: %s", strerror(errno));
    } else {
        s->path = "stdout";
        s->fd = dup(STDOUT_FILENO);
        CHECK(s->fd >= 0, "cannot use stdout: %s", strerror(errno));
    }
    if (gzip) {
        // Level 1: several times faster than the default for about 20% more bytes.
        s->gz = gzdopen(s->fd, "wb1");
        CHECK(s->gz, "gzdopen on %s failed", s->path);
        CHECK(gzbuffer(s->gz, GZ_BUF) == 0, "gzbuffer failed");
    }
}

static void sink_close(sink *s, const char *out, const char *tmp) {
    sink_flush(s);
    if (s->gz) {
        int rc = gzclose(s->gz);  // also closes fd
        CHECK(rc == Z_OK, "closing %s failed (zlib error %d%s%s)", s->path, rc,
              rc == Z_ERRNO ? ": " : "", rc == Z_ERRNO ? strerror(errno) : "");
    } else {
        CHECK(close(s->fd) == 0, "closing %s failed: %s", s->path, strerror(errno));
    }
    if (tmp) {
        CHECK(rename(tmp, out) == 0, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        set_fail_cleanup(NULL, NULL);
    }
    free(s->buf);
}

// ---- generation --------------------------------------------------------------------------

typedef struct {
    uint64_t events, sessions, t_min, t_max;
} totals;

static void generate(model *m, rng *r, const options *o, sink *out, totals *tot) {
    static const char header[] = "SessionId\tItemId\tTime\n";
    memcpy(out->buf, header, sizeof header - 1);
    out->len = sizeof header - 1;

    // Session k starts at position pos in [0, units): the session index when --sessions is
    // given, else the number of events already written. Jittering within one unit keeps
    // starts increasing while filling the whole window evenly.
    const int by_sessions = o->sessions > 0;
    const double units = (double)(by_sessions ? o->sessions : o->events);
    const double window = o->days * 86400.0;
    uint64_t events = 0, sid = 0, t_max = o->start;
    uint64_t t_min = UINT64_MAX;
    char prefix[24];
    for (;;) {
        if (by_sessions ? sid >= o->sessions : events >= o->events) break;
        double pos = (double)(by_sessions ? sid : events) + (double)(rng_next(r) >> 11) * 0x1.0p-53;
        uint64_t t = o->start + (uint64_t)floor(window * pos / units);
        if (t < t_min) t_min = t;
        if (m->base && (int64_t)((t - o->start) / 86400) != m->day) set_day(m, (int64_t)((t - o->start) / 86400));
        sid++;
        size_t plen = (size_t)(put_u64(prefix, sid) - prefix);
        prefix[plen++] = '\t';

        uint64_t len = draw_length(m, r);
        uint32_t item = alias_draw(&m->pop, r);
        for (uint64_t e = 0; e < len; e++) {
            if (e > 0) {
                uint32_t next = draw_next(m, r, item);
                if (next == item) next = draw_next(m, r, item);  // rare repeats survive
                item = next;
                t += GAP_MIN_S + rng_below(r, GAP_MAX_S - GAP_MIN_S + 1);
            }
            if (out->len > OUT_BUF - LINE_MAX_BYTES) sink_flush(out);
            char *p = out->buf + out->len;
            memcpy(p, prefix, plen);
            p += plen;
            p = put_u64(p, (uint64_t)item + 1);
            *p++ = '\t';
            p = put_u64(p, t);
            *p++ = '\n';
            out->len = (size_t)(p - out->buf);
        }
        if (t > t_max) t_max = t;
        events += len;
    }
    *tot = (totals){events, sid, t_min == UINT64_MAX ? o->start : t_min, t_max};
}

int main(int argc, char **argv) {
    set_program_name("grurec-synth");
    options o;
    parse_args(argc, argv, &o);
    double t0 = now_s();

    rng r;
    rng_seed(&r, o.seed);
    model m;
    model_build(&m, &r, &o);

    const int to_stdout = strcmp(o.out, "-") == 0;
    // A regular file is written as FILE.tmp and renamed; renaming over a device such as
    // /dev/null would replace the device with a file, so those are written in place.
    struct stat st;
    const int special = !to_stdout && stat(o.out, &st) == 0 && !S_ISREG(st.st_mode);
    char *tmp = NULL;
    if (!to_stdout && !special) {
        size_t n = strlen(o.out);
        tmp = xmalloc(n + 5);
        memcpy(tmp, o.out, n);
        memcpy(tmp + n, ".tmp", 5);
    }
    sink out;
    sink_open(&out, o.out, tmp, o.gzip);
    totals tot;
    generate(&m, &r, &o, &out, &tot);
    sink_close(&out, o.out, tmp);

    double secs = now_s() - t0;
    fprintf(stderr,
            "grurec-synth: %llu events, %llu sessions, %llu items, time %llu..%llu, "
            "%.2f s, %.2f M events/s\n",
            (unsigned long long)tot.events, (unsigned long long)tot.sessions,
            (unsigned long long)o.items, (unsigned long long)tot.t_min,
            (unsigned long long)tot.t_max, secs, secs > 0 ? (double)tot.events / secs / 1e6 : 0.0);
    free(tmp);
    free(m.succ);
    free(m.pop.slot);
    free(m.base);
    return 0;
}
