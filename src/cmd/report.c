#include "cmd/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/check.h"
#include "util/options.h"

// Nothing here may end the process (report_write runs at the end of training): memory
// comes from malloc/realloc with the failure handled, never from xmalloc.

// ---------------------------------------------------------------------------------
// A small JSON reader: validates a line, then walks it in place.

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static const char *skip_string(const char *p) {  // p at '"'
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;  // includes the end of the text
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (hexval(p[i]) < 0) return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *skip_number(const char *p) {
    const char *q = p;
    if (*q == '-') q++;
    if (*q < '0' || *q > '9') return NULL;
    while (*q >= '0' && *q <= '9') q++;
    if (*q == '.') {
        q++;
        if (*q < '0' || *q > '9') return NULL;
        while (*q >= '0' && *q <= '9') q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (*q < '0' || *q > '9') return NULL;
        while (*q >= '0' && *q <= '9') q++;
    }
    return q;
}

// The end of the JSON value at P, or NULL when it is malformed or cut short.
static const char *skip_value(const char *p, int depth) {
    p = ws(p);
    if (depth > 64) return NULL;
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        const char close = *p == '{' ? '}' : ']';
        const int obj = *p == '{';
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                if (*p != '"' || !(p = skip_string(p))) return NULL;
                p = ws(p);
                if (*p != ':') return NULL;
                p++;
            }
            if (!(p = skip_value(p, depth + 1))) return NULL;
            p = ws(p);
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = ws(p + 1);
        }
    }
    if (strncmp(p, "true", 4) == 0) return p + 4;
    if (strncmp(p, "false", 5) == 0) return p + 5;
    if (strncmp(p, "null", 4) == 0) return p + 4;
    return skip_number(p);
}

static void put_utf8(char *buf, size_t size, size_t *n, unsigned cp) {
    char tmp[4];
    int len;
    if (cp < 0x80) { tmp[0] = (char)cp; len = 1; }
    else if (cp < 0x800) { tmp[0] = (char)(0xC0 | cp >> 6); tmp[1] = (char)(0x80 | (cp & 0x3F)); len = 2; }
    else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | cp >> 12); tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[2] = (char)(0x80 | (cp & 0x3F)); len = 3;
    } else {
        tmp[0] = (char)(0xF0 | cp >> 18); tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[3] = (char)(0x80 | (cp & 0x3F)); len = 4;
    }
    if (*n + (size_t)len < size) {
        memcpy(buf + *n, tmp, (size_t)len);
        *n += (size_t)len;
    }
}

// Decodes the (validated) string at P into BUF (truncated to SIZE-1 bytes).
static void decode_string(const char *p, char *buf, size_t size) {
    size_t n = 0;
    for (p++; *p != '"'; p++) {
        unsigned cp = (unsigned char)*p;
        if (*p == '\\') {
            p++;
            switch (*p) {
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                cp = (unsigned)(hexval(p[1]) << 12 | hexval(p[2]) << 8 | hexval(p[3]) << 4 | hexval(p[4]));
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u' && hexval(p[3]) >= 0 && hexval(p[4]) >= 0 &&
                    hexval(p[5]) >= 0 && hexval(p[6]) >= 0) {
                    unsigned lo = (unsigned)(hexval(p[3]) << 12 | hexval(p[4]) << 8 | hexval(p[5]) << 4 | hexval(p[6]));
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
                put_utf8(buf, size, &n, cp);
                continue;
            default: cp = (unsigned char)*p; break;  // " \ /
            }
        }
        if (n + 1 < size) buf[n++] = (char)cp;
    }
    buf[n] = '\0';
}

// Walks the members of the object at *IT ('{' first): the next key and the start of
// its value; 0 at the end.
static int obj_next(const char **it, char *key, size_t ksz, const char **val) {
    const char *p = ws(*it);
    if (*p == '{') {
        p = ws(p + 1);
        if (*p == '}') return 0;
    } else if (*p == ',') {
        p = ws(p + 1);
    } else {
        return 0;
    }
    if (*p != '"') return 0;
    decode_string(p, key, ksz);
    p = ws(skip_string(p));
    if (*p != ':') return 0;
    p = ws(p + 1);
    *val = p;
    const char *e = skip_value(p, 0);
    if (!e) return 0;
    *it = e;
    return 1;
}

static const char *obj_get(const char *obj, const char *key) {
    char k[128];
    const char *it = obj, *val;
    if (*ws(obj) != '{') return NULL;
    while (obj_next(&it, k, sizeof k, &val))
        if (strcmp(k, key) == 0) return val;
    return NULL;
}

// A number, or a string holding one (the config's values are strings).
static int get_num(const char *obj, const char *key, double *out) {
    const char *v = obj ? obj_get(obj, key) : NULL;
    if (!v) return 0;
    char buf[64];
    const char *s = v;
    if (*v == '"') {
        decode_string(v, buf, sizeof buf);
        s = buf;
    }
    char *end;
    double d = strtod(s, &end);
    if (end == s || (*v == '"' && *end)) return 0;
    if (*v != '"' && !skip_number(v)) return 0;
    *out = d;
    return 1;
}

// The value as text: strings decoded, anything else as written.
static void value_text(const char *v, char *buf, size_t size) {
    if (*v == '"') {
        decode_string(v, buf, size);
        return;
    }
    const char *e = skip_value(v, 0);
    size_t n = e ? (size_t)(e - v) : 0;
    if (n >= size) n = size - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
}

static int get_str(const char *obj, const char *key, char *buf, size_t size) {
    const char *v = obj ? obj_get(obj, key) : NULL;
    if (!v) return 0;
    value_text(v, buf, size);
    return 1;
}

// ---------------------------------------------------------------------------------
// What the page shows

typedef struct {
    double x, y;
} pt;

typedef struct {
    char name[96];
    char tag[32];  // the split of an evaluation series
    int key;       // the rank of a progress series
    pt *v;
    size_t n, cap;
} series;

typedef struct {
    double epoch, loss, events, steps, seconds, eps, gflops;
} epoch_row;

typedef struct {
    double epoch, step, percent, eps, elapsed;
    int has_elapsed, rank;
} progress_row;

typedef struct {
    double epoch, seconds;
    char split[32];
    char *metrics;  // the "metrics" object's text
} eval_row;

typedef struct {
    int oom;
    char *config;  // the "config" object's text
    char dataset[1024], fingerprint[64], ranks[32];
    epoch_row *ep;
    size_t n_ep, cap_ep;
    progress_row *pr;
    size_t n_pr, cap_pr;
    eval_row *ev;
    size_t n_ev, cap_ev;
    long lines, bad_lines, last_bad;
} run_data;

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 1;
    size_t nc = *cap ? 2 * *cap : 16;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

static void series_add(series *s, double x, double y, int *oom) {
    if (!isfinite(x) || !isfinite(y)) return;
    if (!grow((void **)&s->v, &s->cap, s->n, sizeof *s->v)) {
        *oom = 1;
        return;
    }
    s->v[s->n].x = x;
    s->v[s->n].y = y;
    s->n++;
}

static void parse_line(run_data *d, const char *line) {
    char type[32];
    if (!get_str(line, "type", type, sizeof type)) return;
    if (strcmp(type, "config") == 0) {
        const char *c = obj_get(line, "config");
        if (c && *c == '{') {
            const char *e = skip_value(c, 0);
            char *copy = malloc((size_t)(e - c) + 1);
            if (!copy) { d->oom = 1; return; }
            memcpy(copy, c, (size_t)(e - c));
            copy[e - c] = '\0';
            free(d->config);
            d->config = copy;
        }
        get_str(line, "dataset", d->dataset, sizeof d->dataset);
        get_str(line, "fingerprint", d->fingerprint, sizeof d->fingerprint);
        get_str(line, "ranks", d->ranks, sizeof d->ranks);
    } else if (strcmp(type, "epoch") == 0) {
        epoch_row r = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        if (!get_num(line, "epoch", &r.epoch)) return;
        get_num(line, "loss", &r.loss);
        get_num(line, "events", &r.events);
        get_num(line, "steps", &r.steps);
        get_num(line, "seconds", &r.seconds);
        get_num(line, "events_per_s", &r.eps);
        get_num(line, "gflops", &r.gflops);
        if (!grow((void **)&d->ep, &d->cap_ep, d->n_ep, sizeof *d->ep)) { d->oom = 1; return; }
        d->ep[d->n_ep++] = r;
    } else if (strcmp(type, "progress") == 0) {
        progress_row r = {NAN, NAN, NAN, NAN, NAN, 0, -1};
        if (!get_num(line, "events_per_s", &r.eps)) return;
        get_num(line, "epoch", &r.epoch);
        get_num(line, "step", &r.step);
        get_num(line, "percent", &r.percent);
        r.has_elapsed = get_num(line, "elapsed_s", &r.elapsed) || get_num(line, "elapsed", &r.elapsed);
        double rank;
        if (get_num(line, "rank", &rank) && rank >= 0 && rank < 1e6) r.rank = (int)rank;
        if (!grow((void **)&d->pr, &d->cap_pr, d->n_pr, sizeof *d->pr)) { d->oom = 1; return; }
        d->pr[d->n_pr++] = r;
    } else if (strcmp(type, "eval") == 0) {
        eval_row r = {NAN, NAN, "", NULL};
        const char *m = obj_get(line, "metrics");
        if (!m || *m != '{' || !get_num(line, "epoch", &r.epoch)) return;
        get_num(line, "seconds", &r.seconds);
        if (!get_str(line, "split", r.split, sizeof r.split)) snprintf(r.split, sizeof r.split, "?");
        const char *e = skip_value(m, 0);
        r.metrics = malloc((size_t)(e - m) + 1);
        if (!r.metrics) { d->oom = 1; return; }
        memcpy(r.metrics, m, (size_t)(e - m));
        r.metrics[e - m] = '\0';
        if (!grow((void **)&d->ev, &d->cap_ev, d->n_ev, sizeof *d->ev)) { free(r.metrics); d->oom = 1; return; }
        d->ev[d->n_ev++] = r;
    }
}

static void run_data_free(run_data *d) {
    free(d->config);
    free(d->ep);
    free(d->pr);
    for (size_t i = 0; i < d->n_ev; i++) free(d->ev[i].metrics);
    free(d->ev);
}

enum { MAX_WARNINGS = 10 };

static void warn_bad_line(const char *path, long line, long *warned) {
    if (++*warned <= MAX_WARNINGS) fprintf(stderr, "%s: warning: %s:%ld: not a JSON object, ignored\n", program_name(), path, line);
}

// Reads PATH line by line; returns 0, or errno when it cannot be read.
static int read_metrics(const char *path, run_data *d) {
    FILE *f = fopen(path, "r");
    if (!f) return errno ? errno : EIO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long prev_bad = 0, warned = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        d->lines++;
        const char *p = ws(line);
        if (!*p) continue;
        const char *e = *p == '{' ? skip_value(p, 0) : NULL;
        if (!e || *ws(e)) {
            // A malformed line in the middle is worth a word; a cut last line is not.
            if (prev_bad) warn_bad_line(path, prev_bad, &warned);
            prev_bad = d->lines;
            d->bad_lines++;
            d->last_bad = d->lines;
            continue;
        }
        if (prev_bad) {
            warn_bad_line(path, prev_bad, &warned);
            prev_bad = 0;
        }
        parse_line(d, p);
    }
    if (warned > MAX_WARNINGS)
        fprintf(stderr, "%s: warning: %s: %ld more lines that are not JSON objects ignored\n", program_name(), path,
                warned - MAX_WARNINGS);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    free(line);
    fclose(f);
    return err;
}

// ---------------------------------------------------------------------------------
// HTML and SVG

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

typedef struct {
    const series *s;
    const char *color;
    int dashed, markers, line;  // dashed: 0 solid, 1 dashes, 2 dots
} chart_series;

static const char *const dash_attr[3] = {"", " stroke-dasharray=\"6 4\"", " stroke-dasharray=\"2 3\""};

enum { CW = 720, CH = 330, ML = 78, MR = 20, MT = 34, MB = 64 };

// One chart as inline SVG. Markers carry data-chart=ID and a tooltip with their value.
// Tick labels: 600k rather than 6e+05.
static void fmt_tick(char *buf, size_t size, double v) {
    double a = fabs(v);
    if (a >= 1e9) snprintf(buf, size, "%.4gG", v / 1e9);
    else if (a >= 1e6) snprintf(buf, size, "%.4gM", v / 1e6);
    else if (a >= 1e4) snprintf(buf, size, "%.4gk", v / 1e3);
    else snprintf(buf, size, "%.4g", v);
}

static void svg_chart(FILE *f, const char *id, const char *title, const char *xlabel, const char *ylabel,
                      const chart_series *cs, int ns, int y_from_zero, int int_x, const char *empty_note) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < cs[k].s->n; i++) {
            pt p = cs[k].s->v[i];
            if (p.x < x0) x0 = p.x;
            if (p.x > x1) x1 = p.x;
            if (p.y < y0) y0 = p.y;
            if (p.y > y1) y1 = p.y;
        }
    fprintf(f, "<figure>\n<svg class=\"chart\" id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", id,
            CW, CH, CW, CH);
    fprintf(f, "<title>");
    html_esc(f, title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", CW, CH);
    fprintf(f, "<text x=\"%d\" y=\"20\" class=\"ct\">", ML);
    html_esc(f, title);
    fputs("</text>\n", f);
    const int pw = CW - ML - MR, ph = CH - MT - MB;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", ML, MT, pw, ph);
    if (!(x0 <= x1)) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"note\">", ML + pw / 2, MT + ph / 2);
        html_esc(f, empty_note ? empty_note : "no data");
        fputs("</text>\n</svg>\n</figure>\n", f);
        return;
    }
    if (y_from_zero && y0 > 0) y0 = 0;
    if (x1 - x0 < 1e-12) { x0 -= 1; x1 += 1; }
    else { double xp = 0.03 * (x1 - x0); x0 -= xp; x1 += xp; }  // room for the edge markers
    if (y1 - y0 < 1e-12 * (fabs(y0) + 1)) {
        double pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
        y0 -= pad;
        y1 += pad;
        if (y_from_zero && y0 < 0 && y1 > 0) y0 = 0;
    } else {
        double pad = 0.05 * (y1 - y0);
        y1 += pad;
        if (!(y_from_zero && y0 == 0)) y0 -= pad;
    }
    double xs = nice_step(x1 - x0, 6), ys = nice_step(y1 - y0, 5);
    if (int_x && xs < 1) xs = 1;
    char tick[32];
#define PX(x) (ML + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (MT + ph - ((y) - y0) / (y1 - y0) * ph)
    fputs("<g class=\"grid\">\n", f);
    // Ticks as start + n·step (no accumulated error), at most 40: values far from the
    // range's size (an epoch of 1e17) must not make the loop spin.
    const double ty0 = ceil(y0 / ys) * ys, tx0 = ceil(x0 / xs) * xs;
    for (int n = 0; n < 40 && isfinite(ty0) && ty0 + n * ys <= y1 + 1e-9 * ys; n++) {
        const double t = ty0 + n * ys;
        double y = PY(t), tv = fabs(t) < 1e-12 * ys ? 0 : t;
        fmt_tick(tick, sizeof tick, tv);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                ML, y, ML + pw, y, ML - 6, y + 4, tick);
    }
    for (int n = 0; n < 40 && isfinite(tx0) && tx0 + n * xs <= x1 + 1e-9 * xs; n++) {
        const double t = tx0 + n * xs;
        double x = PX(t), tv = fabs(t) < 1e-12 * xs ? 0 : t;
        fmt_tick(tick, sizeof tick, tv);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                x, MT, x, MT + ph, x, MT + ph + 16, tick);
    }
    fputs("</g>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"al\">", ML + pw / 2, MT + ph + 34);
    html_esc(f, xlabel);
    fprintf(f, "</text>\n<text x=\"16\" y=\"%d\" text-anchor=\"middle\" class=\"al\" transform=\"rotate(-90 16 %d)\">",
            MT + ph / 2, MT + ph / 2);
    html_esc(f, ylabel);
    fputs("</text>\n", f);
    for (int k = 0; k < ns; k++) {
        const series *s = cs[k].s;
        if (s->n == 0) continue;
        if (cs[k].line && s->n > 1) {
            // At most about 2000 vertices per line: long runs log many progress lines.
            size_t stride = s->n > 2000 ? (s->n + 1999) / 2000 : 1;
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"", cs[k].color,
                    dash_attr[cs[k].dashed]);
            for (size_t i = 0; i < s->n; i += stride) fprintf(f, "%.1f,%.1f ", PX(s->v[i].x), PY(s->v[i].y));
            if ((s->n - 1) % stride) fprintf(f, "%.1f,%.1f", PX(s->v[s->n - 1].x), PY(s->v[s->n - 1].y));
            fputs("\"/>\n", f);
        }
        if (cs[k].markers)
            for (size_t i = 0; i < s->n; i++) {
                fprintf(f, "<circle data-chart=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", id, PX(s->v[i].x),
                        PY(s->v[i].y), cs[k].color);
                html_esc(f, s->name);
                fprintf(f, ": %.6g at %s %.6g</title></circle>\n", s->v[i].y, xlabel, s->v[i].x);
            }
    }
#undef PX
#undef PY
    // legend, below the axis label
    int lx = ML;
    for (int k = 0; k < ns; k++) {
        if (cs[k].s->n == 0) continue;
        int ly = CH - 10;
        if (cs[k].line && cs[k].s->n > 1)
            fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s/>", lx, ly - 4,
                    lx + 22, ly - 4, cs[k].color, dash_attr[cs[k].dashed]);
        else
            fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"%s\"/>", lx + 11, ly - 4, cs[k].color);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lg\">", lx + 27, ly);
        html_esc(f, cs[k].s->name);
        fputs("</text>\n", f);
        lx += 40 + 7 * (int)strlen(cs[k].s->name);
    }
    fputs("</svg>\n</figure>\n", f);
}

static int new_series(series **all, size_t *n, size_t *cap, const char *name, int key) {
    if (!grow((void **)all, cap, *n, sizeof **all)) return -1;
    series *s = &(*all)[*n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->key = key;
    return (int)(*n)++;
}

static void fmt_num(char *buf, size_t size, double v, const char *fmt) {
    if (isfinite(v)) snprintf(buf, size, fmt, v);
    else snprintf(buf, size, "–");
}

static void write_page(FILE *f, const char *run_dir, run_data *d) {
    int oom = 0;
    char buf[4096];
    const char *title_run = run_dir;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>grurec run ", f);
    html_esc(f, title_run);
    fputs("</title>\n<style>\n"
          "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1120px;"
          "color:#222;padding:0 16px}\n"
          "h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}\n"
          "table{border-collapse:collapse;font-size:0.92em}td,th{border:1px solid #ddd;padding:3px 10px;text-align:left}\n"
          "th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
          "figure{margin:12px 0}svg.chart{max-width:100%;height:auto;font-size:12px}\n"
          ".grid line{stroke:#e6e6e6}.grid text{fill:#555}.ct{font-size:15px;font-weight:600}.al{fill:#333}"
          ".lg{fill:#333}.note{fill:#888;font-size:14px}\n"
          ".meta td:first-child{font-weight:600;background:#fafafa}.small{color:#777;font-size:0.85em}\n"
          "</style>\n</head>\n<body>\n", f);
    fputs("<h1>grurec run <code>", f);
    html_esc(f, run_dir);
    fputs("</code></h1>\n", f);
    time_t now = time(NULL);
    struct tm tmv;
    char when[64] = "";
    if (gmtime_r(&now, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tmv);
    fprintf(f, "<p class=\"small\">Made by grurec %s from metrics.jsonl (%ld lines", GRUREC_VERSION, d->lines);
    if (d->bad_lines) fprintf(f, ", %ld not JSON objects and ignored", d->bad_lines);
    fputs(") on ", f);
    html_esc(f, when);
    fputs(".</p>\n<table class=\"meta\">\n", f);
    const char *rows[][2] = {{"dataset", d->dataset}, {"fingerprint", d->fingerprint}, {"ranks", d->ranks}};
    for (int i = 0; i < 3; i++) {
        fprintf(f, "<tr><td>%s</td><td>", rows[i][0]);
        html_esc(f, rows[i][1][0] ? rows[i][1] : "(not recorded)");
        fputs("</td></tr>\n", f);
    }
    double total_s = 0, total_ev = 0;
    for (size_t i = 0; i < d->n_ep; i++) {
        if (isfinite(d->ep[i].seconds)) total_s += d->ep[i].seconds;
        if (isfinite(d->ep[i].events)) total_ev += d->ep[i].events;
    }
    fprintf(f, "<tr><td>epochs</td><td>%zu (%.0f events in %.1f s of training)</td></tr>\n", d->n_ep, total_ev, total_s);
    fputs("</table>\n", f);

    // Final metrics: the last evaluation of each split.
    if (d->n_ev) {
        fputs("<h2>Evaluation</h2>\n<table>\n<tr><th>split</th><th>epoch</th>", f);
        const eval_row *last = &d->ev[d->n_ev - 1];
        char key[128];
        const char *it = last->metrics, *val;
        while (obj_next(&it, key, sizeof key, &val)) {
            fputs("<th>", f);
            html_esc(f, key);
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        for (size_t i = 0; i < d->n_ev; i++) {
            const eval_row *e = &d->ev[i];
            fputs("<tr><td>", f);
            html_esc(f, e->split);
            fprintf(f, "</td><td class=\"n\">%.0f</td>", e->epoch);
            it = last->metrics;
            while (obj_next(&it, key, sizeof key, &val)) {
                double v;
                if (get_num(e->metrics, key, &v)) fprintf(f, v == floor(v) && fabs(v) >= 2 ? "<td class=\"n\">%.0f</td>" : "<td class=\"n\">%.4f</td>", v);
                else fputs("<td></td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }

    fputs("<h2>Training</h2>\n", f);
    // Loss per epoch
    series loss = {.name = "mean training loss"};
    for (size_t i = 0; i < d->n_ep; i++) series_add(&loss, d->ep[i].epoch, d->ep[i].loss, &oom);
    chart_series cl = {&loss, palette[0], 0, 1, 1};
    svg_chart(f, "loss", "Loss per epoch", "epoch", "loss", &cl, 1, 0, 1, "no epoch finished");

    // Recall@C (solid), MRR@C (dashed) and NDCG@C (dotted; absent from runs made before
    // NDCG) per evaluation, one colour per split. C = 20, or the largest cutoff evaluated
    // when 20 was not.
    int cut = 0, has20 = 0;
    for (size_t i = 0; i < d->n_ev; i++) {
        char key[128];
        const char *it = d->ev[i].metrics, *val;
        while (obj_next(&it, key, sizeof key, &val)) {
            int c;
            if (sscanf(key, "recall@%d", &c) == 1) {
                if (c == 20) has20 = 1;
                if (c > cut) cut = c;
            }
        }
    }
    if (has20) cut = 20;
    series *es = NULL;
    size_t n_es = 0, cap_es = 0;
    char rk[32], mk[32], nk[32];
    snprintf(rk, sizeof rk, "recall@%d", cut);
    snprintf(mk, sizeof mk, "mrr@%d", cut);
    snprintf(nk, sizeof nk, "ndcg@%d", cut);
    for (size_t i = 0; i < d->n_ev && !oom; i++) {
        const eval_row *e = &d->ev[i];
        int at = -1;
        for (size_t k = 0; k < n_es; k += 3)
            if (strcmp(es[k].tag, e->split) == 0) at = (int)k;
        if (at < 0) {
            char name[96];
            snprintf(name, sizeof name, "Recall@%d (%s)", cut, e->split);
            at = new_series(&es, &n_es, &cap_es, name, 0);
            snprintf(name, sizeof name, "MRR@%d (%s)", cut, e->split);
            if (at < 0 || new_series(&es, &n_es, &cap_es, name, 0) < 0) { oom = 1; break; }
            snprintf(name, sizeof name, "NDCG@%d (%s)", cut, e->split);
            if (new_series(&es, &n_es, &cap_es, name, 0) < 0) { oom = 1; break; }
            snprintf(es[at].tag, sizeof es[at].tag, "%s", e->split);
        }
        double v;
        if (get_num(e->metrics, rk, &v)) series_add(&es[at], e->epoch, v, &oom);
        if (get_num(e->metrics, mk, &v)) series_add(&es[at + 1], e->epoch, v, &oom);
        if (get_num(e->metrics, nk, &v)) series_add(&es[at + 2], e->epoch, v, &oom);
    }
    chart_series ce[18];
    int nce = 0;
    for (size_t k = 0; k < n_es && nce < 18; k++)
        ce[nce++] = (chart_series){&es[k], palette[(k / 3) % 10], (int)(k % 3), 1, 1};
    snprintf(buf, sizeof buf, "Recall@%d, MRR@%d and NDCG@%d per evaluation", cut ? cut : 20, cut ? cut : 20,
             cut ? cut : 20);
    svg_chart(f, "eval", buf, "epoch", "metric", ce, nce, 1, 1, "no evaluation recorded");

    // Events/s over training time: the progress lines (one series per rank when they
    // carry one), and each epoch's average. Time is the progress line's own elapsed
    // time when it has one, else rebuilt: the seconds of the epochs before it plus the
    // time its events took at its rate; else the step.
    int by_time = 1;
    for (size_t i = 0; i < d->n_pr && by_time; i++) {
        const progress_row *p = &d->pr[i];
        if (p->has_elapsed) continue;
        int found = 0;
        for (size_t j = 0; j < d->n_ep; j++) found |= d->ep[j].epoch == p->epoch && isfinite(d->ep[j].events);
        by_time = found && isfinite(p->percent) && p->eps > 0;
    }
    series *ps = NULL;
    size_t n_ps = 0, cap_ps = 0;
    for (size_t i = 0; i < d->n_pr && !oom; i++) {
        const progress_row *p = &d->pr[i];
        int at = -1;
        for (size_t k = 0; k < n_ps; k++)
            if (ps[k].key == p->rank) at = (int)k;
        if (at < 0) {
            char name[96];
            if (p->rank >= 0) snprintf(name, sizeof name, "rank %d", p->rank);
            else snprintf(name, sizeof name, "progress lines");
            if ((at = new_series(&ps, &n_ps, &cap_ps, name, p->rank)) < 0) { oom = 1; break; }
        }
        double x = p->step;
        if (by_time) {
            if (p->has_elapsed) {
                x = p->elapsed;
            } else {
                double before = 0, events = NAN;
                for (size_t j = 0; j < d->n_ep; j++) {
                    if (d->ep[j].epoch < p->epoch && isfinite(d->ep[j].seconds)) before += d->ep[j].seconds;
                    if (d->ep[j].epoch == p->epoch) events = d->ep[j].events;
                }
                x = before + p->percent / 100.0 * events / p->eps;
            }
        }
        series_add(&ps[at], x, p->eps, &oom);
    }
    series epav = {.name = "epoch average"};
    double acc = 0;
    for (size_t i = 0; i < d->n_ep; i++) {
        if (isfinite(d->ep[i].seconds)) acc += d->ep[i].seconds;
        series_add(&epav, by_time ? acc : d->ep[i].steps, d->ep[i].eps, &oom);
    }
    chart_series cp[17];
    int ncp = 0;
    for (size_t k = 0; k < n_ps && ncp < 16; k++) cp[ncp++] = (chart_series){&ps[k], palette[k % 10], 0, 0, 1};
    cp[ncp++] = (chart_series){&epav, "#444", 1, 1, d->n_pr == 0};
    svg_chart(f, "speed", "Training events/s", by_time ? "seconds of training" : "step", "events/s", cp, ncp, 1, !by_time,
              "no progress or epoch lines");
    if (d->n_pr == 0)
        fputs("<p class=\"small\">No progress lines (the run had <code>--log-every 0</code>): the points are the "
              "epochs' averages, at the end of each epoch.</p>\n",
              f);

    // Epochs as a table
    if (d->n_ep) {
        fputs("<table>\n<tr><th>epoch</th><th>loss</th><th>events</th><th>seconds</th><th>events/s</th><th>GFLOP/s</th></tr>\n", f);
        for (size_t i = 0; i < d->n_ep; i++) {
            const epoch_row *e = &d->ep[i];
            char a[6][48];
            fmt_num(a[0], 48, e->epoch, "%.0f");
            fmt_num(a[1], 48, e->loss, "%.6f");
            fmt_num(a[2], 48, e->events, "%.0f");
            fmt_num(a[3], 48, e->seconds, "%.3f");
            fmt_num(a[4], 48, e->eps, "%.0f");
            fmt_num(a[5], 48, e->gflops, "%.2f");
            fputs("<tr>", f);
            for (int c = 0; c < 6; c++) fprintf(f, "<td class=\"n\">%s</td>", a[c]);
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }

    // Configuration
    fputs("<h2>Configuration</h2>\n", f);
    if (d->config) {
        fputs("<table class=\"meta\" id=\"config\">\n<tr><th>setting</th><th>value</th></tr>\n", f);
        char key[128];
        const char *it = d->config, *val;
        while (obj_next(&it, key, sizeof key, &val)) {
            value_text(val, buf, sizeof buf);
            fputs("<tr><td>", f);
            html_esc(f, key);
            fputs("</td><td>", f);
            html_esc(f, buf);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    } else {
        fputs("<p>No configuration line in metrics.jsonl.</p>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    free(loss.v);
    free(epav.v);
    for (size_t k = 0; k < n_es; k++) free(es[k].v);
    free(es);
    for (size_t k = 0; k < n_ps; k++) free(ps[k].v);
    free(ps);
    if (oom) d->oom = 1;
}

int report_write(const char *run_dir) {
    char metrics[4096], out[4096], tmp[4096];
    if (snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run_dir) >= (int)sizeof metrics ||
        snprintf(out, sizeof out, "%s/report.html", run_dir) >= (int)sizeof out ||
        snprintf(tmp, sizeof tmp, "%s/.report.html.tmp-%ld", run_dir, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "%s: warning: no report: the run directory's name is too long\n", program_name());
        return 1;
    }
    run_data d;
    memset(&d, 0, sizeof d);
    int err = read_metrics(metrics, &d);
    if (err) {
        fprintf(stderr, "%s: warning: no report: cannot read %s: %s\n", program_name(), metrics, strerror(err));
        run_data_free(&d);
        return 1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "%s: warning: no report: cannot write %s: %s\n", program_name(), tmp, strerror(errno));
        run_data_free(&d);
        return 1;
    }
    write_page(f, run_dir, &d);
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (!bad && d.oom) {
        bad = 1;
        e = ENOMEM;
    }
    run_data_free(&d);
    if (bad || rename(tmp, out) != 0) {
        if (!bad) e = errno;
        fprintf(stderr, "%s: warning: no report: cannot write %s: %s\n", program_name(), out, strerror(e ? e : EIO));
        unlink(tmp);
        return 1;
    }
    return 0;
}

static const char *const report_usage =
    "usage: grurec report RUN\n"
    "\n"
    "Writes RUN/report.html from RUN/metrics.jsonl: one self-contained page (inline SVG,\n"
    "no script, no network) with the loss per epoch, Recall@20, MRR@20 and NDCG@20 per\n"
    "evaluation (and a table of every metric of every evaluation),\n"
    "events/s over the training time, the dataset, its fingerprint, the ranks and the\n"
    "run's configuration. grurec train writes it at the end of every run; this command\n"
    "makes it again (e.g. for a run stopped early).\n"
    "\n"
    "Exit status: 0 done, 1 the page could not be written, 2 bad usage or no RUN/metrics.jsonl.\n";

int cmd_report(int argc, char **argv, comm *cm) {
    const char *run = NULL;
    opt_parser op;
    for (opt_begin(&op, "report", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(report_usage, stdout); return 0; }
        else if (!opt_positional(&op)) opt_unknown(&op);
        else if (run) usage_fail("report takes one run directory");
        else run = op.arg;
    }
    if (!run) usage_fail("report needs a run directory: grurec report RUN");
    if (comm_rank(cm) != 0) return 0;
    char path[4096];
    xsnprintf(path, sizeof path, "%s/metrics.jsonl", run);
    struct stat st;
    if (stat(path, &st) != 0) input_fail(path, 0, "cannot read: %s (is %s a run directory?)", strerror(errno), run);
    if (report_write(run) != 0) return EXIT_INTERNAL;
    fprintf(stderr, "%s: wrote %s/report.html\n", program_name(), run);
    return 0;
}
