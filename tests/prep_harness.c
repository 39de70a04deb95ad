#define _XOPEN_SOURCE 700  // nftw
#include "prep_harness.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "io/h5util.h"
#include "io/string_table.h"

char *th_dir;

// Strings handed out by th_path / th_fmt, freed by th_teardown.
static char **g_strings;
static size_t g_n_strings, g_cap_strings;

static const char *keep(char *s) {
    if (g_n_strings == g_cap_strings) {
        g_cap_strings = g_cap_strings ? 2 * g_cap_strings : 64;
        g_strings = realloc(g_strings, g_cap_strings * sizeof *g_strings);
        cr_assert_not_null(g_strings);
    }
    g_strings[g_n_strings++] = s;
    return s;
}

char *th_mkdtemp(void) {
    char *t = strdup("/tmp/grurec-test-XXXXXX");
    cr_assert_not_null(mkdtemp(t), "mkdtemp: %s", strerror(errno));
    return t;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void th_rmtree(const char *path) {
    if (path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void th_setup(void) { th_dir = th_mkdtemp(); }

void th_teardown(void) {
    th_rmtree(th_dir);
    free(th_dir);
    th_dir = NULL;
    for (size_t i = 0; i < g_n_strings; i++) free(g_strings[i]);
    free(g_strings);
    g_strings = NULL;
    g_n_strings = g_cap_strings = 0;
}

const char *th_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0);
    char *s = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return keep(s);
}

const char *th_join(const char *dir, const char *name) { return th_fmt("%s/%s", dir, name); }

const char *th_path(const char *name) {
    cr_assert_not_null(th_dir, "th_path outside a test with th_setup");
    return th_join(th_dir, name);
}

// ---- files ----

void th_write_n(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, f), n, "short write to %s", path);
    cr_assert_eq(fclose(f), 0, "close %s", path);
}

void th_write(const char *path, const char *text) { th_write_n(path, text, strlen(text)); }

void th_write_gz_n(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb1");
    cr_assert_not_null(g, "gzopen %s", path);
    const char *p = data;
    while (n > 0) {  // gzwrite takes an unsigned count
        unsigned take = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        cr_assert_eq(gzwrite(g, p, take), (int)take, "gzwrite %s", path);
        p += take;
        n -= take;
    }
    cr_assert_eq(gzclose(g), Z_OK, "gzclose %s", path);
}

void th_write_gz(const char *path, const char *text) { th_write_gz_n(path, text, strlen(text)); }

void th_truncate(const char *path, off_t size) {
    cr_assert_eq(truncate(path, size), 0, "truncate %s: %s", path, strerror(errno));
}

off_t th_file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

int th_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int th_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int th_count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    size_t pl = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, pl) == 0) n++;
    closedir(d);
    return n;
}

char *th_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; (got = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

// ---- running programs ----

typedef struct {
    char *buf;
    size_t len, cap;
} growbuf;

static void gb_read(growbuf *b, int fd, int *open) {
    if (b->cap - b->len < 65536) {
        b->cap = b->cap * 2 + 65536;
        b->buf = realloc(b->buf, b->cap + 1);
    }
    ssize_t n = read(fd, b->buf + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
        *open = 0;
        return;
    }
    b->len += (size_t)n;
}

void th_run(const char *bin, const char *const *args, th_result *r) {
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    cr_assert_eq(pipe(po), 0);
    cr_assert_eq(pipe(pe), 0);
    size_t n = 0;
    while (args[n]) n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)bin;
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        execv(bin, argv);
        dprintf(STDERR_FILENO, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free(argv);
    close(po[1]);
    close(pe[1]);
    growbuf out = {0}, err = {0};
    int out_open = 1, err_open = 1;
    while (out_open || err_open) {
        struct pollfd p[2] = {{out_open ? po[0] : -1, POLLIN, 0}, {err_open ? pe[0] : -1, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            cr_assert(errno == EINTR, "poll: %s", strerror(errno));
            continue;
        }
        if (out_open && p[0].revents) gb_read(&out, po[0], &out_open);
        if (err_open && p[1].revents) gb_read(&err, pe[0], &err_open);
    }
    close(po[0]);
    close(pe[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert(errno == EINTR, "waitpid: %s", strerror(errno));
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!out.buf) out.buf = malloc(1);
    if (!err.buf) err.buf = malloc(1);
    out.buf[out.len] = '\0';
    err.buf[err.len] = '\0';
    r->out = out.buf;
    r->out_len = out.len;
    r->err = err.buf;
    r->err_len = err.len;
}

void th_result_free(th_result *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static void run_va(th_result *r, const char *bin, va_list ap) {
    const char *args[256];
    int n = 0;
    for (const char *a; (a = va_arg(ap, const char *));) {
        cr_assert(n < 255, "too many arguments");
        args[n++] = a;
    }
    args[n] = NULL;
    th_run(bin, args, r);
}

void th_prep(th_result *r, ...) {
    va_list ap;
    va_start(ap, r);
    run_va(r, GRUREC_PREP_BIN, ap);
    va_end(ap);
}

void th_synth(th_result *r, ...) {
    va_list ap;
    va_start(ap, r);
    run_va(r, GRUREC_SYNTH_BIN, ap);
    va_end(ap);
}

int th_count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    size_t len = strlen(text);
    if (len && text[len - 1] != '\n') n++;
    return n;
}

void th_assert_input_error(const th_result *r, const char *where, const char *out) {
    cr_assert_eq(r->status, 2, "exit status %d, want 2; stderr: %s", r->status, r->err);
    cr_assert_eq(th_count_lines(r->err), 1, "want one stderr line, got: %s", r->err);
    const char *want = th_fmt("grurec-prep: %s", where);
    cr_assert(strncmp(r->err, want, strlen(want)) == 0, "stderr '%s' does not start with '%s'", r->err, want);
    if (!out) return;
    cr_assert(!th_exists(out), "output %s was left behind", out);
    const char *slash = strrchr(out, '/');
    const char *dir = slash ? th_fmt("%.*s", (int)(slash - out), out) : ".";
    const char *base = slash ? slash + 1 : out;
    cr_assert_eq(th_count_prefix(dir, th_fmt("%s.tmp-", base)), 0, "a temporary %s.tmp-* was left in %s", base, dir);
}

// ---- JSON (flat objects of integers, as grurec-prep and compute_counts.py write them) ----

static const char *skip_ws(const char *p) {
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

int th_json_i64(const char *json, const char *key, int64_t *v) {
    const char *want = th_fmt("\"%s\"", key);
    for (const char *p = json; (p = strstr(p, want)); p++) {
        const char *q = skip_ws(p + strlen(want));
        if (*q != ':') continue;  // a string value, not a key
        q = skip_ws(q + 1);
        char *end;
        errno = 0;
        long long x = strtoll(q, &end, 10);
        if (end == q || errno) return 0;
        *v = x;
        return 1;
    }
    return 0;
}

int64_t th_summary(const dataset_meta *m, const char *key) {
    int64_t v = 0;
    cr_assert(th_json_i64(m->summary, key, &v), "summary has no '%s': %s", key, m->summary);
    return v;
}

char *th_json_object(const char *json, const char *key) {
    const char *want = th_fmt("\"%s\"", key);
    for (const char *p = json; (p = strstr(p, want)); p++) {
        const char *q = skip_ws(p + strlen(want));
        if (*q != ':') continue;
        q = skip_ws(q + 1);
        if (*q != '{') return NULL;
        int depth = 0;
        for (const char *e = q; *e; e++) {
            if (*e == '{') depth++;
            else if (*e == '}' && --depth == 0) return strndup(q, (size_t)(e - q + 1));
        }
        return NULL;
    }
    return NULL;
}

int th_json_pairs(const char *obj, char ***keys, int64_t **values) {
    int n = 0, cap = 16;
    *keys = malloc((size_t)cap * sizeof **keys);
    *values = malloc((size_t)cap * sizeof **values);
    const char *p = skip_ws(obj);
    cr_assert_eq(*p, '{', "not an object: %.40s", obj);
    p++;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}' || *p == '\0') break;
        cr_assert_eq(*p, '"', "expected a key at: %.40s", p);
        const char *k = ++p;
        while (*p && *p != '"') p++;
        char *key = strndup(k, (size_t)(p - k));
        p = skip_ws(p + 1);
        cr_assert_eq(*p, ':', "expected ':' after \"%s\"", key);
        p = skip_ws(p + 1);
        char *end;
        long long x = strtoll(p, &end, 10);
        cr_assert(end != p, "\"%s\" has no integer value", key);
        if (n == cap) {
            cap *= 2;
            *keys = realloc(*keys, (size_t)cap * sizeof **keys);
            *values = realloc(*values, (size_t)cap * sizeof **values);
        }
        (*keys)[n] = key;
        (*values)[n] = x;
        n++;
        p = skip_ws(end);
        if (*p == ',') p++;
    }
    return n;
}

void th_pairs_free(char **keys, int64_t *values, int n) {
    for (int i = 0; i < n; i++) free(keys[i]);
    free(keys);
    free(values);
}

// ---- HDF5 ----

int64_t th_attr_i64(const char *file, const char *name) {
    hid_t f = h5_open_read(file);
    int64_t v = h5_get_attr_i64(f, name, file);
    H5Fclose(f);
    return v;
}

char *th_attr_str(const char *file, const char *name) {
    hid_t f = h5_open_read(file);
    char *v = h5_get_attr_str(f, name, file);
    H5Fclose(f);
    return v;
}

int th_has_attr(const char *file, const char *name) {
    hid_t f = h5_open_read(file);
    int v = h5_has_attr(f, name);
    H5Fclose(f);
    return v;
}

int64_t th_chunk_len(const char *file, const char *name) {
    hid_t f = h5_open_read(file);
    int64_t n;
    hid_t d = h5_open_1d(f, name, file, &n);
    hid_t pl = H5Dget_create_plist(d);
    hsize_t c = 0;
    int64_t out = H5Pget_layout(pl) == H5D_CHUNKED && H5Pget_chunk(pl, 1, &c) == 1 ? (int64_t)c : 0;
    H5Pclose(pl);
    H5Dclose(d);
    H5Fclose(f);
    return out;
}

char **th_session_ids(const char *file, int64_t *n) {
    hid_t f = h5_open_read(file);
    *n = h5_get_attr_i64(f, "n_sessions", file);
    char **ids = strtab_read(f, "session_ids", file, *n, DATASET_CHUNK);
    H5Fclose(f);
    return ids;
}

void th_strings_free(char **v, int64_t n) {
    (void)n;
    free(v);  // (string_table.h: one allocation)
}

const char *th_shard_path(const char *dir, int split, int shard, int n_shards) {
    char buf[4096];
    dataset_shard_path(buf, sizeof buf, dir, split, shard, n_shards);
    return th_fmt("%s", buf);
}
