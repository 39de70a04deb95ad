// grurec-prep: turns click logs into the sharded, time-split HDF5 dataset of
// DESIGN §2. Flow: parse → group into sessions → drop repeats → iterated filters →
// time split (or a given test file) → drop unknown items → item map → shards.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util/check.h"
#include "util/options.h"
#include "formats.h"
#include "pipeline.h"
#include "write_dataset.h"

static const char *const usage_text =
"usage: grurec-prep --input FILE [--input FILE…] --out DIR (--test-days D | --test-input FILE) [options]\n"
"\n"
"Turns click logs (session, item, time) into a sharded, time-split HDF5 dataset for\n"
"grurec: DIR/meta.h5 and DIR/{train,valid,test}/shard-SSSSS-of-NNNNN.h5 (dataset format\n"
"2: each file sealed with a checksum of all its bytes, each shard naming its dataset;\n"
"grurec refuses a damaged or foreign file by name, and a format-1 dataset: prepare it again).\n"
"Input may be plain text or gzip (detected from the bytes). Several --input files are\n"
"read in order as one log. Options are written --name value or --name=value.\n"
"\n"
"Input format\n"
"  --format NAME          gru4rec (default): TSV with header SessionId, ItemId, Time\n"
"                           (unix seconds; other columns are ignored)\n"
"                         yoochoose: yoochoose-clicks.dat, session,ISO-8601 time,item,category\n"
"                         diginetica: train-item-views.csv, sessionId;userId;itemId;timeframe;eventdate\n"
"                           (time = eventdate at 00:00 UTC + timeframe ms)\n"
"                         retailrocket: events.csv, timestamp,visitorid,event,itemid,transactionid\n"
"                           (ms; views only; a visitor's views cut into sessions at --session-gap)\n"
"                         csv: any delimited file, described by the options below\n"
"  --delimiter C          csv: one character, or 'tab' (default ',')\n"
"  --header | --no-header csv: whether the first line names the columns (default --header)\n"
"  --session-col COL      csv: session id column, by header name or 0-based index\n"
"  --user-col COL         csv: user id column instead; sessions are cut at --session-gap\n"
"  --item-col COL         csv: item id column\n"
"  --time-col COL         csv: time column\n"
"  --time-format F        csv, gru4rec: unix (seconds, fraction dropped) | unix-ms |\n"
"                           iso8601 (e.g. 2014-04-07T10:51:09.277Z, stored in ms) |\n"
"                           order (an integer that only orders events; no time column = line order)\n"
"  --session-gap S        seconds of inactivity that end a user's session (default 3600)\n"
"  --max-errors N         skip up to N malformed lines and report how many (default 0: strict)\n"
"\n"
"Time window (applied to --input before every other rule; --test-input files are kept whole)\n"
"  --since TIME           keep only events at or after TIME\n"
"  --until TIME           keep only events before TIME (so --since and --until can be the\n"
"                           same day on consecutive runs without sharing an event)\n"
"                         TIME: as the log writes times (e.g. unix seconds), or an ISO-8601\n"
"                           date or date-time in UTC: 2016-05-01, 2016-05-01T06:00:00Z\n"
"\n"
"Split\n"
"  --test-days D          test = sessions whose last event falls in the final D days of the log\n"
"                           (of the window, with --since / --until)\n"
"  --test-input FILE      use FILE (same format) as the test split instead; repeatable\n"
"  --valid-days D         validation = sessions ending in the final D days of train\n"
"\n"
"Filters (DESIGN §2, in this order)\n"
"  --keep-repeats         keep consecutive repeats of an item in a session (default: drop them)\n"
"  --min-session-length N drop sessions with fewer events (default 2)\n"
"  --max-session-length N drop sessions with more events (default: no limit)\n"
"  --min-item-support N   drop events of items with fewer events (default 5)\n"
"                         The two filters repeat until neither removes anything.\n"
"                         Test/validation events whose item is not in train are dropped,\n"
"                         then sessions left with fewer than 2 events.\n"
"\n"
"Output\n"
"  --out DIR              the dataset directory (written as DIR.tmp-PID, then renamed; SIGINT\n"
"                           or SIGTERM removes DIR.tmp-PID, and one left by a dead run is removed)\n"
"  --force                replace an existing dataset at DIR\n"
"  --shards N             train shards (default 8): ranks read shards s with s mod P == r\n"
"  --eval-shards N        shards of the test and validation splits (default: --shards)\n"
"  --compression L        deflate level 0-9 (default 1)\n"
"  --quiet                print only errors\n"
"  --verbose              print the time and peak memory after each step\n"
"  --help, --version\n"
"\n"
"Exit status: 0 success, 2 bad input or usage (one line: grurec-prep: FILE:LINE: what is\n"
"wrong; no output is left behind), 1 internal or system error.\n"
"\n"
"Examples\n"
"  grurec-prep --input clicks.tsv.gz --test-days 1 --out data/rsc\n"
"  grurec-prep --format yoochoose --input yoochoose-clicks.dat --test-days 1 --valid-days 1 --out data/rsc15\n"
"  grurec-prep --format diginetica --input train-item-views.csv --test-days 7 --out data/digi\n"
"  grurec-prep --input clicks.tsv.gz --since 2016-05-01 --until 2016-06-01 --test-days 1 --out data/may\n"
"                (the 30 days of May before the 31st for training, the 31st as test)\n"
"  grurec-prep --format gru4rec --input train.tsv --test-input test.tsv --keep-repeats \\\n"
"              --min-item-support 1 --time-format order --out data/digi-published\n"
"  grurec-prep --format csv --delimiter tab --session-col session_id --item-col item_id \\\n"
"              --time-col timestamp --time-format unix --input events.tsv --test-days 7 --out data/rr\n";

typedef struct {
    const char *format, *out;
    const char *inputs[256], *test_inputs[256];
    int n_inputs, n_test_inputs;
    double test_days, valid_days;
    int keep_repeats, force, quiet, shards, eval_shards, compression;
    filter_opts filt;
    const char *delimiter, *session_col, *user_col, *item_col, *time_col, *time_format;
    const char *since, *until;  // as given; NULL = no bound
    int header;  // -1 = format default
    double session_gap;
    int64_t max_errors;
} options;

// --verbose: elapsed time and peak memory after each step.
static int g_verbose;
static struct timespec g_start;

// ---- command line ----

static void parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->format = "gru4rec";
    o->shards = 8;
    o->compression = 1;
    o->header = -1;
    o->session_gap = 3600;
    o->filt = (filter_opts){.min_session_length = 2, .max_session_length = 0, .min_item_support = 5};
    opt_parser op;
    for (opt_begin(&op, NULL, argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(usage_text, stdout); exit(0); }
        else if (opt_is(&op, "--version")) { printf("grurec-prep %s\n", GRUREC_VERSION); exit(0); }
        else if (opt_is(&op, "--format")) o->format = opt_str(&op);
        else if (opt_is(&op, "--input")) { if (o->n_inputs == 256) usage_fail("at most 256 --input files"); o->inputs[o->n_inputs++] = opt_str(&op); }
        else if (opt_is(&op, "--test-input")) { if (o->n_test_inputs == 256) usage_fail("at most 256 --test-input files"); o->test_inputs[o->n_test_inputs++] = opt_str(&op); }
        else if (opt_is(&op, "--out")) o->out = opt_str(&op);
        else if (opt_is(&op, "--force")) o->force = 1;
        else if (opt_is(&op, "--quiet")) o->quiet = 1;
        else if (opt_is(&op, "--verbose")) g_verbose = 1;
        else if (opt_is(&op, "--test-days")) o->test_days = opt_num_above(&op, 0, 1e9);
        else if (opt_is(&op, "--valid-days")) o->valid_days = opt_num_above(&op, 0, 1e9);
        else if (opt_is(&op, "--since")) o->since = opt_str(&op);
        else if (opt_is(&op, "--until")) o->until = opt_str(&op);
        else if (opt_is(&op, "--keep-repeats")) o->keep_repeats = 1;
        else if (opt_is(&op, "--min-session-length")) o->filt.min_session_length = (int32_t)opt_int(&op, 1, INT32_MAX);
        else if (opt_is(&op, "--max-session-length")) o->filt.max_session_length = (int32_t)opt_int(&op, 1, INT32_MAX);
        else if (opt_is(&op, "--min-item-support")) o->filt.min_item_support = opt_int(&op, 1, INT64_MAX / 2);
        else if (opt_is(&op, "--shards")) o->shards = (int)opt_int(&op, 1, 65536);
        else if (opt_is(&op, "--eval-shards")) o->eval_shards = (int)opt_int(&op, 1, 65536);
        else if (opt_is(&op, "--compression")) o->compression = (int)opt_int(&op, 0, 9);
        else if (opt_is(&op, "--delimiter")) o->delimiter = opt_str(&op);
        else if (opt_is(&op, "--header")) o->header = 1;
        else if (opt_is(&op, "--no-header")) o->header = 0;
        else if (opt_is(&op, "--session-col")) o->session_col = opt_str(&op);
        else if (opt_is(&op, "--user-col")) o->user_col = opt_str(&op);
        else if (opt_is(&op, "--item-col")) o->item_col = opt_str(&op);
        else if (opt_is(&op, "--time-col")) o->time_col = opt_str(&op);
        else if (opt_is(&op, "--time-format")) o->time_format = opt_str(&op);
        else if (opt_is(&op, "--session-gap")) o->session_gap = opt_num_above(&op, 0, 1e12);
        else if (opt_is(&op, "--max-errors")) o->max_errors = opt_int(&op, 0, INT64_MAX / 2);
        else opt_unknown(&op);
    }
    if (!o->eval_shards) o->eval_shards = o->shards;
    if (o->n_inputs == 0) usage_fail("give at least one --input FILE");
    if (!o->out) usage_fail("give --out DIR");
    // "data/ds/" names the same directory as "data/ds"; the temporary name needs the latter.
    static char out[4096];
    xsnprintf(out, sizeof out, "%s", o->out);
    for (size_t n = strlen(out); n > 1 && out[n - 1] == '/'; n--) out[n - 1] = '\0';
    o->out = out;
    if ((o->test_days > 0) == (o->n_test_inputs > 0))
        usage_fail("give exactly one of --test-days D (a time split) or --test-input FILE");
    if (o->filt.max_session_length && o->filt.max_session_length < o->filt.min_session_length)
        usage_fail("--max-session-length is below --min-session-length");
}

// --since / --until TEXT in the log's time unit; no bound leaves *OUT as it is.
static void time_bound(const char *text, const char *flag, time_format t, int64_t *out) {
    if (!text) return;
    if (parse_time_bound(text, t, out)) return;
    if (t == TIME_ORDER) usage_fail("%s '%s': with --time-format order a bound is an integer of the log's order column", flag, text);
    if (t == TIME_UNIX || t == TIME_UNIX_MS)
        usage_fail("%s '%s' is neither a %s time nor an ISO-8601 date (e.g. 2016-05-01 or 2016-05-01T06:00:00Z)", flag, text,
                   time_format_name(t));
    usage_fail("%s '%s' is not an ISO-8601 date (e.g. 2016-05-01 or 2016-05-01T06:00:00Z)", flag, text);
}

// The format's layout with the command line's overrides applied.
static void build_spec(const options *o, format_spec *s) {
    if (!format_lookup(o->format, s))
        usage_fail("unknown --format '%s' (gru4rec, yoochoose, diginetica, retailrocket, csv)", o->format);
    int is_csv = strcmp(o->format, "csv") == 0;
    if (!is_csv && (o->delimiter || o->header >= 0 || o->session_col || o->user_col || o->item_col || o->time_col))
        usage_fail("--delimiter, --header and the column options are for --format csv");
    if (o->time_format && !is_csv && strcmp(o->format, "gru4rec") != 0)
        usage_fail("--time-format is for --format csv or gru4rec; %s has a fixed time format", o->format);
    if (o->time_format && !time_format_parse(o->time_format, &s->time))
        usage_fail("unknown --time-format '%s' (unix, unix-ms, iso8601, order)", o->time_format);
    if (is_csv) {
        if (o->delimiter) {
            const char *d = o->delimiter;
            if (strcmp(d, "tab") == 0 || strcmp(d, "\\t") == 0) s->delim = '\t';
            else if (strlen(d) == 1) s->delim = d[0];
            else usage_fail("--delimiter takes one character or 'tab', not '%s'", d);
        }
        if (o->header >= 0) s->header = o->header;
        s->session_col = o->session_col;
        s->user_col = o->user_col;
        s->item_col = o->item_col;
        s->time_col = o->time_col;
        if (!s->item_col) usage_fail("--format csv needs --item-col");
        if (!s->session_col == !s->user_col) usage_fail("--format csv needs one of --session-col or --user-col");
        if (!s->time_col && s->time != TIME_ORDER) usage_fail("--format csv needs --time-col (or --time-format order)");
    }
    time_bound(o->since, "--since", s->time, &s->since);
    time_bound(o->until, "--until", s->time, &s->until);
    if (o->since && o->until && s->since >= s->until) usage_fail("--since %s is not before --until %s", o->since, o->until);
    if (s->user_col) {
        if (s->time == TIME_ORDER) usage_fail("cutting sessions by --session-gap needs clock times, not --time-format order");
        s->session_gap_s = (int64_t)llround(o->session_gap);
    }
}

// ---- reporting ----

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

__attribute__((format(printf, 2, 3)))
static void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->buf && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->buf = xrealloc(b->buf, b->cap);
    }
}

static void sb_json_str(strbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

static void sb_json_list(strbuf *b, const char *const *v, int n) {
    sb_printf(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) sb_printf(b, ", ");
        sb_json_str(b, v[i]);
    }
    sb_printf(b, "]");
}

typedef struct {
    const char *key;
    int64_t value;
} count;

typedef struct {
    count c[64];
    int n;
} counts;

static void put(counts *c, const char *key, int64_t v) {
    CHECK(c->n < 64, "too many summary counts");
    c->c[c->n++] = (count){key, v};
}

static int64_t get(const counts *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->c[i].key, key) == 0) return c->c[i].value;
    return 0;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}


static void phase(const char *what) {
    if (!g_verbose) return;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "grurec-prep: %-28s at %6.2f s, peak RSS %ld MB\n", what, seconds_since(&g_start), ru.ru_maxrss / 1024);
}

static void print_summary(const options *o, const counts *c, const dataset_out *d, const char *unit, double secs) {
    printf("grurec-prep: wrote %s (format %s, time unit %s, fingerprint %s) in %.1f s\n", o->out, o->format, unit,
           d->fingerprint, secs);
    printf("\n  %-44s %12s %12s\n", "step", "sessions", "events");
    printf("  %-44s %12lld %12lld\n", "parsed", (long long)get(c, "input_sessions"), (long long)get(c, "input_events"));
    if (o->since || o->until)
        printf("  %-44s %12s %12lld\n", "events outside --since/--until skipped", "", (long long)get(c, "window_events_removed"));
    if (get(c, "skipped_rows")) printf("  %-44s %12s %12lld\n", "rows of other event types skipped", "", (long long)get(c, "skipped_rows"));
    if (get(c, "bad_lines")) printf("  %-44s %12s %12lld\n", "malformed lines skipped (--max-errors)", "", (long long)get(c, "bad_lines"));
    printf("  %-44s %12s %12lld\n", "- consecutive repeats", "", (long long)get(c, "repeat_events_removed"));
    printf("  %-44s %12lld %12lld\n", "- sessions below --min-session-length", (long long)get(c, "filter_short_sessions_removed"),
           (long long)get(c, "filter_short_session_events_removed"));
    if (o->filt.max_session_length)
        printf("  %-44s %12lld %12lld\n", "- sessions above --max-session-length", (long long)get(c, "filter_long_sessions_removed"),
               (long long)get(c, "filter_long_session_events_removed"));
    printf("  %-44s %12s %12lld\n", "- events of items below --min-item-support", "", (long long)get(c, "filter_rare_item_events_removed"));
    if (o->n_test_inputs) {
        printf("  %-44s %12lld %12lld\n", "test file parsed", (long long)get(c, "test_input_sessions"), (long long)get(c, "test_input_events"));
        printf("  %-44s %12s %12lld\n", "- test file consecutive repeats", "", (long long)get(c, "test_repeat_events_removed"));
    }
    for (int sp = SPLIT_VALID; sp < N_SPLITS; sp++) {
        if (!d->split[sp].present) continue;
        char key[64], label[64];
        snprintf(key, sizeof key, "%s_unknown_item_events", split_names[sp]);
        snprintf(label, sizeof label, "- %s events of items not in train", split_names[sp]);
        printf("  %-44s %12s %12lld\n", label, "", (long long)get(c, key));
        snprintf(key, sizeof key, "%s_short_sessions_removed", split_names[sp]);
        int64_t ns = get(c, key);
        snprintf(key, sizeof key, "%s_short_session_events_removed", split_names[sp]);
        snprintf(label, sizeof label, "- %s sessions left shorter than 2", split_names[sp]);
        printf("  %-44s %12lld %12lld\n", label, (long long)ns, (long long)get(c, key));
    }
    printf("\n  %-6s %10s %12s %9s %21s %21s %7s %s\n", "split", "sessions", "events", "items", "t_min", "t_max", "shards",
           "events/shard min..max");
    for (int sp = 0; sp < N_SPLITS; sp++) {
        const split_out *so = &d->split[sp];
        if (!so->present) continue;
        int64_t lo = INT64_MAX, hi = 0;
        for (int k = 0; k < so->n_shards; k++) {
            if (so->shard_events[k] < lo) lo = so->shard_events[k];
            if (so->shard_events[k] > hi) hi = so->shard_events[k];
        }
        char items[32] = "";
        if (sp == SPLIT_TRAIN) snprintf(items, sizeof items, "%d", d->n_items);
        printf("  %-6s %10lld %12lld %9s %21lld %21lld %7d %lld..%lld\n", split_names[sp], (long long)so->n_sessions,
               (long long)so->n_events, items, (long long)so->t_min, (long long)so->t_max, so->n_shards, (long long)lo,
               (long long)hi);
    }
}

// ---- the pipeline ----

static void read_log(const format_spec *spec, const char *const *paths, int n, clicklog *log, ingest_stats *st, int quiet) {
    for (int i = 0; i < n; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t before = st->events;
        ingest_file(spec, paths[i], log, st);
        if (!quiet && g_verbose)
            fprintf(stderr, "grurec-prep: read %s: %lld events in %.1f s\n", paths[i], (long long)(st->events - before),
                    seconds_since(&t0));
    }
}

static int64_t count_live(const sessions *s) {
    int64_t n = 0;
    for (int64_t i = 0; i < s->n_sessions; i++) n += s->len[i] > 0;
    return n;
}

int main(int argc, char **argv) {
    set_program_name("grurec-prep");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_start = t0;
    options o;
    parse_args(argc, argv, &o);
    format_spec spec;
    build_spec(&o, &spec);
    const int64_t per_day = units_per_day(spec.time);
    if ((o.test_days > 0 || o.valid_days > 0) && per_day == 0)
        usage_fail("--test-days and --valid-days need clock times; with --time-format order use --test-input");
    check_output_path(o.out, o.force);  // fail before the long work, not after
    const int64_t gap = spec.user_col ? spec.session_gap_s * units_per_second(spec.time) : 0;
    counts c = {0};

    // 1-3 on the training log.
    idmap items;
    idmap_init(&items);
    clicklog log;
    clicklog_init(&log, &items);
    ingest_stats st = {.max_errors = o.max_errors};
    read_log(&spec, o.inputs, o.n_inputs, &log, &st, o.quiet);
    put(&c, "input_lines", st.lines);
    put(&c, "input_events", st.events);
    put(&c, "skipped_rows", st.skipped_rows);
    put(&c, "window_events_removed", st.outside_window);
    if (st.events == 0 && st.outside_window)
        input_fail(o.inputs[0], 0, "no events inside --since/--until (%lld events outside it)", (long long)st.outside_window);
    if (st.events == 0) input_fail(o.inputs[0], 0, "no events to read (every row was of another event type)");
    phase("parsed");
    sessions train_s;
    group_sessions(&log, gap, &train_s);
    phase("grouped into sessions");
    if (g_verbose)  // bench/prep_bench.sh reads this line
        fprintf(stderr, "grurec-prep: id maps hold %.1f MB at most (%lld sessions, %d item ids)\n",
                (double)(train_s.keys.peak_bytes + items.peak_bytes) / 1048576.0, (long long)train_s.n_sessions, items.count);
    put(&c, "input_sessions", train_s.n_sessions);
    put(&c, "repeat_events_removed", o.keep_repeats ? 0 : drop_repeats(&train_s));
    filter_stats fs;
    filter_log(&train_s, items.count, &o.filt, &fs);
    put(&c, "filter_short_sessions_removed", fs.short_sessions);
    put(&c, "filter_short_session_events_removed", fs.short_session_events);
    put(&c, "filter_long_sessions_removed", fs.long_sessions);
    put(&c, "filter_long_session_events_removed", fs.long_session_events);
    put(&c, "filter_rare_item_events_removed", fs.rare_item_events);
    put(&c, "filter_iterations", fs.iterations);
    phase("filtered");
    if (count_live(&train_s) == 0)
        input_fail(o.inputs[0], 0, "nothing left after filtering (%lld events read; loosen --min-item-support / --min-session-length)",
                   (long long)st.events);

    // 4: the test split, from the end of the log or from its own file.
    dataset_out d;
    memset(&d, 0, sizeof d);
    sessions test_s;
    memset(&test_s, 0, sizeof test_s);
    session_list all = all_sessions(&train_s), train, test;
    const char *test_source;
    char test_label[96];
    if (o.n_test_inputs) {
        clicklog tlog;
        clicklog_init(&tlog, &items);
        ingest_stats tst = {.max_errors = o.max_errors};
        format_spec whole = spec;  // the window is for --input: a test file is kept whole
        whole.since = INT64_MIN;
        whole.until = INT64_MAX;
        read_log(&whole, o.test_inputs, o.n_test_inputs, &tlog, &tst, o.quiet);
        put(&c, "test_input_events", tst.events);
        put(&c, "bad_lines", st.bad_lines + tst.bad_lines);
        group_sessions(&tlog, gap, &test_s);
        put(&c, "test_input_sessions", test_s.n_sessions);
        put(&c, "test_repeat_events_removed", o.keep_repeats ? 0 : drop_repeats(&test_s));
        train = all;
        test = all_sessions(&test_s);
        d.split[SPLIT_TEST].store = &test_s;
        test_source = o.test_inputs[0];
        snprintf(test_label, sizeof test_label, "the test file");
    } else {
        put(&c, "bad_lines", st.bad_lines);
        int64_t boundary = last_time(&train_s, &all) - (int64_t)llround(o.test_days * (double)per_day);
        split_at(&train_s, &all, boundary, &train, &test);
        session_list_free(&all);
        d.split[SPLIT_TEST].store = &train_s;
        test_source = o.inputs[0];
        snprintf(test_label, sizeof test_label, "the last %g days", o.test_days);
    }
    if (train.n == 0)
        input_fail(o.inputs[0], 0, "no training sessions: every session ends within %s (use fewer --test-days)", test_label);
    if (o.valid_days > 0) {
        session_list rest, valid;
        int64_t boundary = last_time(&train_s, &train) - (int64_t)llround(o.valid_days * (double)per_day);
        split_at(&train_s, &train, boundary, &rest, &valid);
        session_list_free(&train);
        train = rest;
        if (train.n == 0) input_fail(o.inputs[0], 0, "no training sessions left after the last %g days went to validation", o.valid_days);
        d.split[SPLIT_VALID] = (split_out){.present = 1, .store = &train_s, .list = valid, .n_shards = o.eval_shards};
    }

    phase("split");
    // 5: items are those of train; drop the rest from validation and test.
    int32_t *dense = xmalloc((size_t)(items.count ? items.count : 1) * sizeof *dense);
    int64_t *support;
    d.n_items = build_item_map(&train_s, &train, items.count, dense, &support);
    uint8_t *known = xmalloc((size_t)(items.count ? items.count : 1));
    for (int32_t k = 0; k < items.count; k++) known[k] = dense[k] >= 0;
    d.split[SPLIT_TRAIN] = (split_out){.present = 1, .store = &train_s, .list = train, .n_shards = o.shards};
    d.split[SPLIT_TEST].present = 1;
    d.split[SPLIT_TEST].list = test;
    d.split[SPLIT_TEST].n_shards = o.eval_shards;
    for (int sp = SPLIT_VALID; sp < N_SPLITS; sp++) {
        split_out *so = &d.split[sp];
        if (!so->present) continue;
        unknown_stats us;
        drop_unknown_items((sessions *)so->store, &so->list, known, &us);
        so->dropped_unknown_items = us.unknown_item_events;
        static char keys[2][3][64];
        const char *nm = split_names[sp];
        snprintf(keys[sp - 1][0], 64, "%s_unknown_item_events", nm);
        snprintf(keys[sp - 1][1], 64, "%s_short_sessions_removed", nm);
        snprintf(keys[sp - 1][2], 64, "%s_short_session_events_removed", nm);
        put(&c, keys[sp - 1][0], us.unknown_item_events);
        put(&c, keys[sp - 1][1], us.short_sessions);
        put(&c, keys[sp - 1][2], us.short_session_events);
    }
    if (d.split[SPLIT_TEST].list.n == 0)
        input_fail(test_source, 0, "the test split (%s) has no session with 2 or more events of items known from training", test_label);
    if (d.split[SPLIT_VALID].present && d.split[SPLIT_VALID].list.n == 0)
        input_fail(o.inputs[0], 0, "the validation split (last %g days of train) has no session with 2 or more known events", o.valid_days);

    // 6: write. Provenance and counts go into meta.h5 as JSON.
    strbuf src = {0}, filters = {0}, summary = {0};
    sb_printf(&src, "{\"input\": ");
    sb_json_list(&src, o.inputs, o.n_inputs);
    sb_printf(&src, ", \"test_input\": ");
    sb_json_list(&src, o.test_inputs, o.n_test_inputs);
    sb_printf(&src, "}");
    sb_printf(&filters, "{\"format\": \"%s\", \"time_format\": \"%s\", \"keep_repeats\": %s, \"min_session_length\": %d, "
                        "\"max_session_length\": %d, \"min_item_support\": %lld, \"test_days\": %g, \"valid_days\": %g, "
                        "\"session_gap_s\": %lld, \"shards\": %d, \"eval_shards\": %d, \"max_errors\": %lld",
              o.format, time_format_name(spec.time), o.keep_repeats ? "true" : "false", o.filt.min_session_length,
              o.filt.max_session_length, (long long)o.filt.min_item_support, o.test_days, o.valid_days,
              (long long)spec.session_gap_s, o.shards, o.eval_shards, (long long)o.max_errors);
    // The window: as given, and in the log's time unit (null = no bound).
    const char *bound_text[2] = {o.since, o.until}, *bound_name[2] = {"since", "until"};
    const int64_t bound[2] = {spec.since, spec.until};
    for (int b = 0; b < 2; b++) {
        if (!bound_text[b]) { sb_printf(&filters, ", \"%s\": null", bound_name[b]); continue; }
        sb_printf(&filters, ", \"%s\": %lld, \"%s_text\": ", bound_name[b], (long long)bound[b], bound_name[b]);
        sb_json_str(&filters, bound_text[b]);
    }
    sb_printf(&filters, "}");
    d.items = &items;
    d.dense = dense;
    d.support = support;
    d.time_unit = time_unit(spec.time);
    d.source = src.buf;
    d.filters = filters.buf;
    d.compression = o.compression;
    // The split sizes are final now: put them in the summary before writing.
    for (int sp = 0; sp < N_SPLITS; sp++) {
        const split_out *so = &d.split[sp];
        if (!so->present) continue;
        static char keys[N_SPLITS][2][64];
        snprintf(keys[sp][0], 64, "%s_sessions", split_names[sp]);
        snprintf(keys[sp][1], 64, "%s_events", split_names[sp]);
        int64_t ev = 0;
        for (int64_t k = 0; k < so->list.n; k++) ev += so->store->len[so->list.idx[k]];
        put(&c, keys[sp][0], so->list.n);
        put(&c, keys[sp][1], ev);
    }
    put(&c, "train_items", d.n_items);
    sb_printf(&summary, "{");
    for (int i = 0; i < c.n; i++) sb_printf(&summary, "%s\"%s\": %lld", i ? ", " : "", c.c[i].key, (long long)c.c[i].value);
    sb_printf(&summary, "}");
    d.summary = summary.buf;
    phase("items mapped");
    write_dataset(o.out, o.force, &d);
    phase("written");
    if (!o.quiet) print_summary(&o, &c, &d, d.time_unit, seconds_since(&t0));
    // Everything is freed, so that the leak checker (tests/run_all.sh with
    // GRUREC_SANITIZE=1) can find a real leak in a prep run.
    for (int sp = 0; sp < N_SPLITS; sp++) {
        free(d.split[sp].shard_events);
        session_list_free(&d.split[sp].list);
    }
    free(src.buf);
    free(filters.buf);
    free(summary.buf);
    free(dense);
    free(known);
    free(support);
    sessions_free(&train_s);
    sessions_free(&test_s);
    idmap_free(&items);
    return 0;
}
