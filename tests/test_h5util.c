// io/h5util, io/h5seal and io/string_table: every read or write failure names the file
// and the dataset (issue 18, finding 7) with the right exit status; the seal finds any
// flipped byte, a cut-short file and a foreign one; string tables refuse offsets that
// would lead a reader out of its buffer, even in a file whose checksums agree.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5seal.h"
#include "io/h5util.h"
#include "io/string_table.h"
#include "io/tensor_io.h"
#include "prep_harness.h"
#include "util/check.h"

TestSuite(h5util, .init = th_setup, .fini = th_teardown);

// Runs FN(ARG) in a child process: its exit status and the first line of its stderr.
typedef struct {
    int status;
    char err[1024];
} child_result;

static void in_child(void (*fn)(const char *), const char *arg, child_result *r) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    memset(r->err, 0, sizeof r->err);
    size_t got = 0;
    ssize_t k;
    while (got < sizeof r->err - 1 && (k = read(fds[0], r->err + got, sizeof r->err - 1 - got)) > 0) got += (size_t)k;
    close(fds[0]);
    char *nl = strchr(r->err, '\n');
    if (nl) *nl = '\0';
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A sealed file with dataset "items": int32 0..9, deflated, with its checksum.
static void write_items(const char *path) {
    hid_t f = h5_create(path);
    hid_t d = h5_create_1d(f, "items", H5T_STD_I32LE, 10, 4, 1);
    chunk_writer w;
    cw_open(&w, d, sizeof(int32_t), 1);
    for (int32_t i = 0; i < 10; i++) cw_append(&w, &i, 1);
    cw_close(&w);
    H5Dclose(d);
    h5_close(f, path);
}

static void read_past_the_end(const char *path) {
    hid_t f = h5_open_read(path);
    int64_t n;
    hid_t d = h5_open_1d(f, "items", path, &n);
    int32_t buf[10];
    h5_read_at(d, H5T_NATIVE_INT32, 5, 10, buf);  // 5 + 10 > 10: HDF5 refuses the selection
}

Test(h5util, a_failed_read_names_the_file_and_the_dataset) {
    const char *path = th_path("a.h5");
    write_items(path);
    child_result r;
    in_child(read_past_the_end, path, &r);
    cr_assert_eq(r.status, 2, "exit %d: %s", r.status, r.err);
    cr_assert_str_eq(r.err, th_fmt("grurec: %s: items: cannot read 10 elements at 5 (damaged file?)", path));
}

static void write_to_a_file_opened_for_reading(const char *path) {
    hid_t f = h5_open_read(path);
    int64_t n;
    hid_t d = h5_open_1d(f, "items", path, &n);
    const int32_t v[3] = {1, 2, 3};
    h5_write_at(d, H5T_NATIVE_INT32, 0, 3, v);
}

Test(h5util, a_failed_write_names_the_file_and_the_dataset_and_exits_1) {
    const char *path = th_path("a.h5");
    write_items(path);
    child_result r;
    in_child(write_to_a_file_opened_for_reading, path, &r);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    const char *want = th_fmt("grurec: %s: items: cannot write 3 elements at 0 (", path);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "'%s' does not start with '%s'", r.err, want);
}

static void create_in_a_missing_directory(const char *path) { h5_create(path); }

Test(h5util, a_file_that_cannot_be_created_is_named) {
    const char *path = th_path("missing/a.h5");
    child_result r;
    in_child(create_in_a_missing_directory, path, &r);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, th_fmt("grurec: %s: cannot create the HDF5 file (", path)), "%s", r.err);
}

static void flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) cr_assert_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

Test(h5util, the_seal_finds_every_flipped_byte_after_it) {
    const char *path = th_path("a.h5"), *copy = th_path("b.h5");
    write_items(path);
    int sealed = 0;
    cr_assert_null(h5seal_check(path, &sealed));
    cr_assert_eq(sealed, 1);
    const long n = file_size(path);
    for (long at = H5SEAL_BLOCK; at < n; at += 7) {  // every 7th byte of the HDF5 part
        copy_file(path, copy);
        flip_byte(copy, at);
        const char *why = h5seal_check(copy, &sealed);
        cr_assert_not_null(why, "byte %ld flipped, not seen", at);
        cr_assert_str_eq(why, "damaged: its bytes do not match the checksum they were written with");
    }
    copy_file(path, copy);
    flip_byte(copy, 30);  // a digit of the seal's length
    cr_assert_not_null(h5seal_check(copy, &sealed));
    copy_file(path, copy);
    flip_byte(copy, 400);  // the user block's padding: nothing HDF5 or grurec reads
    cr_assert_null(h5seal_check(copy, &sealed));
    cr_assert(truncate(copy, n - 1) == 0);
    cr_assert_not_null(strstr(h5seal_check(copy, &sealed), "cut short or extended"));
}

Test(h5util, an_unsealed_hdf5_file_is_told_apart_from_a_foreign_one) {
    const char *path = th_path("plain.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    H5Fclose(f);
    int sealed = 1;
    cr_assert_null(h5seal_check(path, &sealed));
    cr_assert_eq(sealed, 0, "an HDF5 file without a user block is unsealed, not damaged");
    th_write(th_path("text"), "SessionId\tItemId\tTime\n");
    cr_assert_str_eq(h5seal_check(th_path("text"), &sealed),
                     "not an HDF5 file, nor one grurec sealed (damaged, or not written by grurec)");
}

Test(h5util, a_string_table_reads_back) {
    const char *path = th_path("t.h5");
    const char *ids[] = {"a", "", "hello", "x#2", "ünï"};
    int64_t chars = 0;
    for (int i = 0; i < 5; i++) chars += (int64_t)strlen(ids[i]);
    hid_t f = h5_create(path);
    strtab_writer w;
    strtab_begin(&w, f, "ids", 5, chars, 4, 1);  // chunks of 4: several of them
    for (int i = 0; i < 5; i++) strtab_add(&w, ids[i], strlen(ids[i]));
    strtab_end(&w);
    h5_close(f, path);
    f = h5_open_read(path);
    char **got = strtab_read(f, "ids", path, 5, 4);
    H5Fclose(f);
    for (int i = 0; i < 5; i++) cr_assert_str_eq(got[i], ids[i]);
    free(got);
}

// A sealed table whose offsets agree with their checksum but not with the bytes.
static const int64_t *g_offsets;
static void write_table(const char *path) {
    static const char bytes[8] = {'a', 'b', 0, 'c', 0, 0, 0, 0};
    hid_t f = h5_create(path);
    hid_t d = h5_create_1d(f, "ids_bytes", H5T_STD_U8LE, 8, 8, 0);
    h5_write_at(d, H5T_NATIVE_UINT8, 0, 8, bytes);
    tensor_set_checksum(d, tensor_checksum(bytes, 2));
    H5Dclose(d);
    d = h5_create_1d(f, "ids_offsets", H5T_STD_I64LE, 3, 3, 0);
    h5_write_at(d, H5T_NATIVE_INT64, 0, 3, g_offsets);
    tensor_set_checksum(d, tensor_checksum(g_offsets, 6));
    H5Dclose(d);
    h5_close(f, path);
}

static void read_table(const char *path) {
    hid_t f = h5_open_read(path);
    free(strtab_read(f, "ids", path, 2, 8));
}

static void expect_refused(const int64_t *offsets, const char *why) {
    g_offsets = offsets;
    const char *path = th_path("bad.h5");
    write_table(path);
    child_result r;
    in_child(read_table, path, &r);
    cr_assert_eq(r.status, 2, "offsets %lld %lld %lld: exit %d: %s", (long long)offsets[0], (long long)offsets[1],
                 (long long)offsets[2], r.status, r.err);
    cr_assert_not_null(strstr(r.err, th_fmt("grurec: %s: ", path)), "%s", r.err);
    cr_assert_not_null(strstr(r.err, why), "'%s' does not say '%s'", r.err, why);
}

Test(h5util, string_table_offsets_are_checked_before_use) {
    g_offsets = (const int64_t[]){0, 3, 5};
    write_table(th_path("good.h5"));
    hid_t f = h5_open_read(th_path("good.h5"));
    char **ok = strtab_read(f, "ids", th_path("good.h5"), 2, 8);
    H5Fclose(f);
    cr_assert_str_eq(ok[0], "ab");
    cr_assert_str_eq(ok[1], "c");
    free(ok);
    expect_refused((const int64_t[]){0, 3, 900}, "offsets 0..900 for 8 bytes");
    expect_refused((const int64_t[]){1, 3, 5}, "offsets 1..");
    expect_refused((const int64_t[]){0, 5, 5}, "string 1 has no bytes");
    expect_refused((const int64_t[]){0, 2, 5}, "string 0 does not end where its offsets say");
}

// tensor_verify_all reads in rounds (a tensor is not held whole): a tensor of several
// rounds, of floats, int64 and bytes, passes; one value changed in its last round fails.
Test(h5util, tensors_of_several_rounds_verify_and_a_changed_value_is_found) {
    const size_t n = ((size_t)5 << 19) + 3;  // 2.5 rounds of 1M elements
    float *v = malloc(n * sizeof *v);
    int64_t *w = malloc(n * sizeof *w);
    uint8_t *b = malloc(4 * n);
    cr_assert(v && w && b);
    for (size_t i = 0; i < n; i++) v[i] = (float)i * 0.5f, w[i] = (int64_t)i * 3 - 7;
    for (size_t i = 0; i < 4 * n; i++) b[i] = (uint8_t)(i * 7);
    const char *path = th_path("t.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    cr_assert_eq(tensor_write_f32(f, "f", v, n), 0);
    cr_assert_eq(tensor_write_i64(f, "i", w, n), 0);
    cr_assert_eq(tensor_write_u8(f, "b", b, 4 * n), 0);
    int count = 0;
    cr_assert_null(tensor_verify_all(f, &count));
    cr_assert_eq(count, 3);
    hid_t d = H5Dopen2(f, "i", H5P_DEFAULT);  // one value in the last round, the checksum kept
    hsize_t off = n - 2, one = 1;
    int64_t x = 12345;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &one, NULL);
    cr_assert(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &one, NULL) >= 0);
    cr_assert(H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &x) >= 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
    const char *bad = tensor_verify_all(f, &count);
    cr_assert(bad && strcmp(bad, "i fails its checksum") == 0, "verify: %s", bad ? bad : "(passed)");
    H5Fclose(f);
    free(v), free(w), free(b);
}
