#include "util/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *g_program = "grurec";
static const char *g_help;  // what usage errors point to: "grurec train" -> "grurec train --help"
static void (*g_cleanup)(void *);
static void *g_cleanup_arg;

void set_program_name(const char *name) { g_program = name; }
const char *program_name(void) { return g_program; }
void set_usage_help(const char *command) { g_help = command; }

void set_fail_cleanup(void (*fn)(void *), void *arg) {
    g_cleanup = fn;
    g_cleanup_arg = arg;
}

// Ends a failed process without the exit-time handlers: HDF5's would flush and close the
// files this failure left open (a full disk: a crash inside HDF5), and whatever those files
// held is a failed output the cleanup hook removes. Our own streams are flushed first; an
// MPI job sees this rank exit non-zero and ends as on exit().
noreturn void fail_exit(int code) {
    fflush(stdout);
    void (*fn)(void *) = g_cleanup;
    g_cleanup = NULL;  // a failing cleanup must not recurse
    if (fn) fn(g_cleanup_arg);
    fflush(NULL);
    _exit(code);
}

void fail_at(const char *file, int line, const char *fmt, ...) {
    const char *base = strrchr(file, '/');
    fprintf(stderr, "%s: %s:%d: ", g_program, base ? base + 1 : file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fail_exit(EXIT_INTERNAL);
}

static noreturn void vinput_fail(const char *path, long line, const char *fmt, va_list ap) {
    if (line > 0) fprintf(stderr, "%s: %s:%ld: ", g_program, path, line);
    else fprintf(stderr, "%s: %s: ", g_program, path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fail_exit(EXIT_INPUT);
}

void input_fail(const char *path, long line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vinput_fail(path, line, fmt, ap);
}

// Rank > 0 of a job of several processes, from the launcher's environment (Open MPI,
// PMI, Slurm), so that it is known before and without MPI_Init.
static int is_other_rank(void) {
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof rank_vars / sizeof *rank_vars; i++) {
        const char *v = getenv(rank_vars[i]);
        if (v && *v) return atoi(v) > 0;
    }
    return 0;
}

// Another rank leaves quietly, a moment after rank 0 has said it: the launcher ends the job
// at the first failed rank, and rank 0 must not be killed before its line is out.
static noreturn void other_rank_exit(void) {
    sleep(1);
    fail_exit(EXIT_INPUT);
}

void input_fail_all(const char *path, long line, const char *fmt, ...) {
    if (is_other_rank()) other_rank_exit();  // rank 0 says it
    va_list ap;
    va_start(ap, fmt);
    vinput_fail(path, line, fmt, ap);
}

void usage_fail(const char *fmt, ...) {
    if (is_other_rank()) other_rank_exit();
    fprintf(stderr, "%s: ", g_program);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", g_help ? g_help : g_program);
    fail_exit(EXIT_INPUT);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    CHECK(p, "out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    CHECK(p, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    CHECK(q, "out of memory reallocating to %zu bytes", n);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

void xsnprintf(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < size, "text too long (%d bytes) for its %zu-byte buffer: %.60s...", n, size, buf);
}

void *xcalloc_huge(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return xcalloc(1, bytes);
    void *p = NULL;
    size_t rounded = (bytes + huge - 1) / huge * huge;
    CHECK(posix_memalign(&p, huge, rounded) == 0, "out of memory allocating %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a refusal is harmless
#endif
    memset(p, 0, bytes);
    return p;
}
