#include "formats.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "fields.h"
#include "linereader.h"
#include "util/escape.h"
#include "timeparse.h"

int format_lookup(const char *name, format_spec *s) {
    memset(s, 0, sizeof *s);
    s->name = name;
    s->since = INT64_MIN;
    s->until = INT64_MAX;
    if (strcmp(name, "gru4rec") == 0) {
        // Official GRU4Rec input: TSV with named columns (extra columns allowed).
        s->delim = '\t'; s->header = 1; s->time = TIME_UNIX;
        s->session_col = "SessionId"; s->item_col = "ItemId"; s->time_col = "Time";
    } else if (strcmp(name, "yoochoose") == 0) {
        // yoochoose-clicks.dat: session,ISO-8601 time,item,category; no header.
        s->delim = ','; s->header = 0; s->time = TIME_ISO8601; s->n_cols = 4;
        s->session_col = "0"; s->time_col = "1"; s->item_col = "2";
    } else if (strcmp(name, "diginetica") == 0) {
        // train-item-views.csv: sessionId;userId;itemId;timeframe;eventdate.
        s->delim = ';'; s->header = 1; s->time = TIME_DATE_PLUS_MS; s->n_cols = 5;
        s->session_col = "0"; s->item_col = "2"; s->offset_col = "3"; s->time_col = "4";
    } else if (strcmp(name, "retailrocket") == 0) {
        // events.csv: timestamp,visitorid,event,itemid,transactionid (ms); views only.
        s->delim = ','; s->header = 1; s->time = TIME_UNIX_MS; s->n_cols = 5;
        s->time_col = "0"; s->user_col = "1"; s->event_col = "2"; s->event_keep = "view";
        s->item_col = "3"; s->session_gap_s = 3600;
    } else if (strcmp(name, "csv") == 0) {
        s->delim = ','; s->header = 1; s->time = TIME_UNIX;
    } else {
        return 0;
    }
    return 1;
}

static const char *const time_names[] = {"unix", "unix-ms", "iso8601", "order", "date+ms"};

int time_format_parse(const char *s, time_format *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, time_names[i]) == 0) { *out = (time_format)i; return 1; }
    return 0;
}

const char *time_format_name(time_format t) { return time_names[t]; }

const char *time_unit(time_format t) {
    return t == TIME_UNIX ? "s" : t == TIME_ORDER ? "order" : "ms";
}

int64_t units_per_second(time_format t) { return t == TIME_UNIX ? 1 : t == TIME_ORDER ? 0 : 1000; }
int64_t units_per_day(time_format t) { return 86400 * units_per_second(t); }

int parse_time_bound(const char *text, time_format t, int64_t *out) {
    size_t n = strlen(text);
    int64_t ms;
    if (t != TIME_ORDER && parse_iso8601_ms(text, n, &ms)) {
        if (t != TIME_UNIX) { *out = ms; return 1; }
        *out = ms / 1000 + (ms % 1000 > 0);  // ceiling: events are whole seconds
        return 1;
    }
    switch (t) {
    case TIME_UNIX:
    case TIME_UNIX_MS: return parse_decimal(text, n, 0, out);
    case TIME_ORDER: return parse_i64(text, n, out);
    case TIME_ISO8601:
    case TIME_DATE_PLUS_MS: return 0;  // only the ISO form above
    }
    return 0;
}

// Column NAME resolved against the header fields (or, without a header, digits only).
static int resolve_column(const char *name, const fields *header, int n_cols, const char *path) {
    if (!name) return -1;
    int digits = *name != '\0';
    for (const char *c = name; *c; c++) digits &= isdigit((unsigned char)*c) != 0;
    int idx = -1;
    if (header) idx = find_field(header, name);
    if (idx < 0 && digits) idx = atoi(name);
    if (idx < 0) input_fail(path, 1, "no column named '%s' in the header", name);
    if (idx >= n_cols) input_fail(path, 1, "column %s is out of range: lines have %d columns", name, n_cols);
    return idx;
}

typedef struct {
    int session, user, item, time, offset, event;
    int n_cols;
} columns;

static columns resolve_columns(const format_spec *s, const fields *header, int n_cols, const char *path) {
    columns c;
    c.n_cols = n_cols;
    c.session = resolve_column(s->session_col, header, n_cols, path);
    c.user = resolve_column(s->user_col, header, n_cols, path);
    c.item = resolve_column(s->item_col, header, n_cols, path);
    c.time = resolve_column(s->time_col, header, n_cols, path);
    c.offset = resolve_column(s->offset_col, header, n_cols, path);
    c.event = resolve_column(s->event_col, header, n_cols, path);
    if (c.item < 0) input_fail(path, 1, "no item column (use --item-col)");
    if ((c.session < 0) == (c.user < 0))
        input_fail(path, 1, "give exactly one of a session column (--session-col) or a user column (--user-col)");
    if (c.time < 0 && s->time != TIME_ORDER)
        input_fail(path, 1, "no time column (use --time-col, or --time-format order to use line order)");
    return c;
}

// A line failed to parse: fatal, or counted and skipped under --max-errors.
__attribute__((format(printf, 4, 5)))
static void bad_line(ingest_stats *st, const char *path, long line, const char *fmt, ...) {
    if (st->bad_lines < st->max_errors) { st->bad_lines++; return; }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    input_fail(path, line, "%s%s", msg, st->max_errors ? " (more bad lines than --max-errors)" : "");
}

static int parse_time(const format_spec *s, const fields *f, const columns *c, int64_t order, int64_t *t) {
    const char *p = c->time >= 0 ? f->p[c->time] : NULL;
    size_t n = c->time >= 0 ? f->n[c->time] : 0;
    switch (s->time) {
    case TIME_UNIX: return parse_decimal(p, n, 0, t);
    case TIME_UNIX_MS: return parse_decimal(p, n, 0, t);
    case TIME_ISO8601: return parse_iso8601_ms(p, n, t);
    case TIME_ORDER:
        if (!p) { *t = order; return 1; }
        return parse_i64(p, n, t);
    case TIME_DATE_PLUS_MS: {
        int64_t ms;
        if (!parse_iso8601_ms(p, n, t) || !parse_i64(f->p[c->offset], f->n[c->offset], &ms)) return 0;
        *t += ms;
        return 1;
    }
    }
    return 0;
}

void ingest_file(const format_spec *s, const char *path, clicklog *log, ingest_stats *st) {
    linereader r;
    lr_open(&r, path);
    char *line;
    size_t len;
    fields f, header;
    columns c = {0};
    int have_columns = 0;
    if (s->header) {
        if (!lr_next(&r, &line, &len) || len == 0) input_fail(path, 1, "empty input: expected a header line");
        split_fields(line, len, s->delim, &header);
        if (header.count > MAX_FIELDS) input_fail(path, 1, "more than %d columns", MAX_FIELDS);
        int n_cols = s->n_cols ? s->n_cols : header.count;
        if (header.count != n_cols)
            input_fail(path, 1, "header has %d columns, the %s format has %d", header.count, s->name, n_cols);
        // Header fields point into the reader's buffer: resolve names before reading on.
        c = resolve_columns(s, &header, n_cols, path);
        have_columns = 1;
    }
    int32_t last_key = -1;
    const char *last_key_str = NULL;
    size_t last_key_len = 0;
    int64_t data_lines = 0;
    while (lr_next(&r, &line, &len)) {
        if (len == 0) continue;  // blank lines (e.g. a trailing one) carry no event
        data_lines++;
        st->lines++;
        split_fields(line, len, s->delim, &f);
        if (!have_columns) {
            if (f.count > MAX_FIELDS) input_fail(path, r.line, "more than %d columns", MAX_FIELDS);
            c = resolve_columns(s, NULL, s->n_cols ? s->n_cols : f.count, path);
            have_columns = 1;
        }
        int kc = c.session >= 0 ? c.session : c.user;
        if (f.count != c.n_cols) {
            if (f.count > MAX_FIELDS) bad_line(st, path, r.line, "expected %d columns, found more than %d", c.n_cols, MAX_FIELDS);
            else bad_line(st, path, r.line, "expected %d columns, found %d", c.n_cols, f.count);
            continue;
        }
        if (c.event >= 0 && (f.n[c.event] != strlen(s->event_keep) ||
                             memcmp(f.p[c.event], s->event_keep, f.n[c.event]) != 0)) {
            st->skipped_rows++;
            continue;
        }
        if (f.n[kc] == 0) { bad_line(st, path, r.line, "empty %s id", c.session >= 0 ? "session" : "user"); continue; }
        if (f.n[c.item] == 0) { bad_line(st, path, r.line, "empty item id"); continue; }
        int64_t t;
        if (!parse_time(s, &f, &c, log->n, &t)) {
            int tc = c.time;
            if (s->time == TIME_DATE_PLUS_MS) {
                int64_t dummy;
                if (parse_iso8601_ms(f.p[c.time], f.n[c.time], &dummy)) tc = c.offset;
            }
            char text[ESCAPED_MAX];
            bad_line(st, path, r.line, "cannot parse %s '%s' as %s", tc == c.offset ? "time offset" : "time",
                     escape_text(text, f.p[tc], f.n[tc]), tc == c.offset ? "milliseconds" : time_format_name(s->time));
            continue;
        }
        if (t < s->since || t >= s->until) { st->outside_window++; continue; }  // before any id is stored
        // Consecutive lines of one session are the rule: each run of a key gets an id
        // here without any lookup; runs of the same key are merged after parsing.
        int32_t key;
        if (last_key >= 0 && f.n[kc] == last_key_len && memcmp(f.p[kc], last_key_str, last_key_len) == 0) {
            key = last_key;
        } else {
            key = idmap_append(&log->keys, f.p[kc], f.n[kc]);  // repeats merged by group_sessions
            last_key = key;
            last_key_str = idmap_str(&log->keys, key);
            last_key_len = f.n[kc];
        }
        clicklog_push(log, key, idmap_intern(log->items, f.p[c.item], f.n[c.item]), t);
        st->events++;
    }
    lr_close(&r);
    if (data_lines == 0) input_fail(path, 0, "empty input: no data lines");
}
