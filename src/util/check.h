// The one error path of grurec: every failure is reported here and ends the process.
//   CHECK(cond, fmt, ...)        internal / system failure -> "file.c:LINE: message", exit 1
//   input_fail(path, line, ...)  bad user input            -> "PROG: PATH:LINE: message", exit 2
//   usage_fail(...)              bad command line          -> "PROG: message", exit 2
// A cleanup hook (e.g. removing a half-written output directory) runs before exit.
#ifndef GRUREC_CHECK_H
#define GRUREC_CHECK_H

#include <stddef.h>

// C11's noreturn, spelled so that CUDA C++ sources can include this header too.
#ifdef __cplusplus
#define GRUREC_NORETURN [[noreturn]]
extern "C" {
#else
#include <stdnoreturn.h>
#define GRUREC_NORETURN noreturn
#endif

enum { EXIT_INTERNAL = 1, EXIT_INPUT = 2 };

void set_program_name(const char *name);
const char *program_name(void);
// Usage errors end "(see COMMAND --help)"; COMMAND is the program name unless set.
void set_usage_help(const char *command);

// One hook at a time; pass NULL to clear. It must not call the functions below.
void set_fail_cleanup(void (*fn)(void *), void *arg);

// Ends a failed process the way the three below do (the cleanup hook, then the streams
// flushed, then _exit: no exit-time handlers, so HDF5 does not flush the failed files it
// still holds), for callers that printed their own line.
GRUREC_NORETURN void fail_exit(int code);
GRUREC_NORETURN void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GRUREC_NORETURN void input_fail(const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GRUREC_NORETURN void usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// input_fail for an error that every rank of a job detects alike (the same argument, the
// same file, a collective check): printed once, by rank 0, and every rank exits 2.
// usage_fail errors (the command line is every rank's) are printed by rank 0 alone too.
GRUREC_NORETURN void input_fail_all(const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond, ...) \
    do { if (!(cond)) fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
// Zeroed memory for large row-addressed tables, on 2 MiB huge pages where the kernel
// allows (madvise): rows touched at random then cost far fewer TLB misses. Free with free().
void *xcalloc_huge(size_t bytes);
// snprintf that fails (CHECK) instead of truncating: for paths and keys.
void xsnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
