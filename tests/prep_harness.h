// Helpers shared by the grurec-prep tests: temporary directories and input files
// (plain or gzip), running a program without a shell and capturing its output, and
// reading back what grurec-prep wrote (dataset.h, plus a few HDF5 look-ups).
//
// Every helper that cannot do its job fails the current Criterion test.
#ifndef GRUREC_PREP_HARNESS_H
#define GRUREC_PREP_HARNESS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "data/dataset.h"

// ---- temporary directory of the running test ----

// The current test's directory: made by th_setup (mkdtemp under /tmp), removed with
// everything in it by th_teardown. Use them as a suite's .init / .fini.
extern char *th_dir;
void th_setup(void);
void th_teardown(void);

// cr_skip_test that first removes the test's directory (a skipped test's .fini does not run).
#define TH_SKIP(...)                                      \
    do {                                                  \
        char th_skip_msg_[1024];                          \
        snprintf(th_skip_msg_, sizeof th_skip_msg_, __VA_ARGS__); \
        th_teardown();                                    \
        cr_skip_test("%s", th_skip_msg_);                 \
    } while (0)

char *th_mkdtemp(void);            // a fresh /tmp/grurec-test-XXXXXX (caller frees)
void th_rmtree(const char *path);  // rm -r, quietly

// "th_dir/NAME" (or "DIR/NAME"); the strings live until th_teardown.
const char *th_path(const char *name);
const char *th_join(const char *dir, const char *name);
// printf into a string that lives until th_teardown.
const char *th_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// ---- files ----

void th_write(const char *path, const char *text);  // TEXT as is
void th_write_n(const char *path, const void *data, size_t n);
void th_write_gz(const char *path, const char *text);  // gzip (zlib gzopen/gzwrite)
void th_write_gz_n(const char *path, const void *data, size_t n);
void th_truncate(const char *path, off_t size);
off_t th_file_size(const char *path);
int th_exists(const char *path);
int th_is_dir(const char *path);
// Number of entries of DIR whose name starts with PREFIX.
int th_count_prefix(const char *dir, const char *prefix);
// Whole file, NUL-terminated (caller frees); NULL when it cannot be read.
char *th_read_file(const char *path, size_t *n);

// ---- running programs (fork + execv, no shell) ----

typedef struct {
    int status;         // exit status; 128 + signal number when killed
    char *out, *err;    // stdout and stderr, NUL-terminated
    size_t out_len, err_len;
} th_result;

// Runs BIN with ARGS (NULL-terminated, argv[0] excluded). Free with th_result_free.
void th_run(const char *bin, const char *const *args, th_result *r);
void th_result_free(th_result *r);
// grurec-prep with the arguments given (NULL-terminated).
void th_prep(th_result *r, ...) __attribute__((sentinel));
void th_synth(th_result *r, ...) __attribute__((sentinel));
// Lines of TEXT (a last line without "\n" counts).
int th_count_lines(const char *text);
// Asserts a failed run: exit status 2, exactly one stderr line that starts with
// "grurec-prep: " followed by WHERE (e.g. "PATH:3: " or "PATH: "), and no
// output directory OUT nor any OUT.tmp-* next to it.
void th_assert_input_error(const th_result *r, const char *where, const char *out);

// ---- reading what grurec-prep wrote ----

// Looks KEY up in a flat JSON object ("key": integer). Returns 1 and sets *v if found.
int th_json_i64(const char *json, const char *key, int64_t *v);
// Summary count KEY of an open dataset (the test fails when it is missing).
int64_t th_summary(const dataset_meta *m, const char *key);
// Text of the object that is the value of KEY in JSON ("{...}"), or NULL (caller frees).
char *th_json_object(const char *json, const char *key);
// The "key": integer pairs of a flat object, in order. Returns the count; free with th_pairs_free.
int th_json_pairs(const char *obj, char ***keys, int64_t **values);
void th_pairs_free(char **keys, int64_t *values, int n);

// Integer / string attribute of the root group of an HDF5 file.
int64_t th_attr_i64(const char *file, const char *name);
char *th_attr_str(const char *file, const char *name);  // caller frees
int th_has_attr(const char *file, const char *name);
// Chunk length of 1-D dataset NAME, 0 when it is not chunked.
int64_t th_chunk_len(const char *file, const char *name);
// /session_ids of a shard file (free with th_strings_free).
char **th_session_ids(const char *file, int64_t *n);
void th_strings_free(char **v, int64_t n);
// Path of a shard file of the dataset at DIR (lives until th_teardown).
const char *th_shard_path(const char *dir, int split, int shard, int n_shards);

#endif
