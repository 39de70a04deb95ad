#include "io/h5util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <libdeflate.h>

#include "io/h5seal.h"
#include "io/tensor_io.h"

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// "FILE" and "OBJECT" of an HDF5 object, for messages (OBJECT empty for the file itself).
static void object_names(hid_t obj, char *file, size_t file_n, char *name, size_t name_n) {
    file[0] = name[0] = '\0';
    if (H5Fget_name(obj, file, file_n) <= 0) snprintf(file, file_n, "(an HDF5 file)");
    if (H5Iget_name(obj, name, name_n) <= 0 || strcmp(name, "/") == 0) name[0] = '\0';
    if (name[0] == '/') memmove(name, name + 1, strlen(name));
}

void h5_write_fail(hid_t obj, const char *what, ...) {
    const int err = errno;
    char file[4096], name[1024], msg[512];
    object_names(obj, file, sizeof file, name, sizeof name);
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s%s%s (%s)\n", program_name(), file, name, name[0] ? ": " : "", msg,
            err ? strerror(err) : "disk full or I/O error?");
    fail_exit(EXIT_INTERNAL);
}

// An input error about OBJ: "PROG: FILE: OBJECT: WHAT", exit 2.
static GRUREC_NORETURN void read_fail(hid_t obj, const char *what) {
    char file[4096], name[1024];
    object_names(obj, file, sizeof file, name, sizeof name);
    input_fail(file, 0, "%s%s%s", name, name[0] ? ": " : "", what);
}

hid_t h5_create_file(const char *path) {
    h5_quiet();
    hid_t pl = h5seal_fcpl();
    hid_t f = pl >= 0 ? H5Fcreate(path, H5F_ACC_TRUNC, pl, H5P_DEFAULT) : -1;
    const int err = errno;  // (the create's, for the caller's message)
    if (pl >= 0) H5Pclose(pl);
    errno = err;
    return f;
}

static GRUREC_NORETURN void file_fail(const char *path, const char *what, int err) {
    fprintf(stderr, "%s: %s: %s (%s)\n", program_name(), path, what, err ? strerror(err) : "disk full or I/O error?");
    fail_exit(EXIT_INTERNAL);
}

hid_t h5_create(const char *path) {
    errno = 0;
    hid_t f = h5_create_file(path);
    if (f < 0) file_fail(path, "cannot create the HDF5 file", errno);
    return f;
}

void h5_close(hid_t file, const char *path) {
    errno = 0;
    if (H5Fflush(file, H5F_SCOPE_LOCAL) < 0) file_fail(path, "cannot write the file", errno);
    errno = 0;
    if (H5Fclose(file) < 0) file_fail(path, "cannot close the file", errno);
    int err = h5seal_write(path);
    if (err) file_fail(path, "cannot seal the file", err);
}

hid_t h5_open_sealed(const char *path, const char *unsealed) {
    h5_quiet();
    if (access(path, R_OK) != 0) input_fail(path, 0, "cannot read: %s", strerror(errno));
    int sealed;
    const char *why = h5seal_check(path, &sealed);
    if (why) input_fail(path, 0, "%s", why);
    if (!sealed && unsealed) input_fail(path, 0, "%s", unsealed);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) input_fail(path, 0, "cannot open as HDF5");
    return f;
}

hid_t h5_open_read(const char *path) { return h5_open_sealed(path, NULL); }

int h5_readable(const char *path) {
    int sealed;
    if (h5seal_check(path, &sealed)) return 0;
    h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) H5Fclose(f);
    return f >= 0;
}

void h5_attr_i64(hid_t obj, const char *name, int64_t v) {
    errno = 0;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0) h5_write_fail(obj, "cannot write attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
}

// A UTF-8 string type of SIZE bytes (H5T_VARIABLE: variable length). Caller closes.
static hid_t string_type(size_t size) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

// A fixed-size string, NUL included: its size is in the attribute's header, so a reader
// knows it before reading (a variable-length one lives in a heap the reader must trust).
void h5_attr_str(hid_t obj, const char *name, const char *v) {
    errno = 0;
    hid_t t = string_type(strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, v) < 0) h5_write_fail(obj, "cannot write attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

int h5_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

int64_t h5_get_attr_i64(hid_t obj, const char *name, const char *path) {
    if (!h5_has_attr(obj, name)) input_fail(path, 0, "wrong layout: attribute '%s' is missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    int ok = H5Tget_class(t) == H5T_INTEGER;
    int64_t v = 0;
    ok = ok && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0;
    H5Tclose(t);
    H5Aclose(a);
    if (!ok) input_fail(path, 0, "wrong layout: attribute '%s' is not an integer", name);
    return v;
}

// Reads string attribute A of file type FT: a copy, or NULL.
static char *read_string(hid_t a, hid_t ft) {
    if (H5Tis_variable_str(ft) > 0) {  // files of earlier versions
        hid_t t = string_type(H5T_VARIABLE);
        char *v = NULL, *copy = NULL;
        if (H5Aread(a, t, &v) >= 0 && v) {
            copy = xstrdup(v);
            H5free_memory(v);
        }
        H5Tclose(t);
        return copy;
    }
    size_t size = H5Tget_size(ft);
    if (size == 0 || size > ((size_t)1 << 30)) return NULL;
    hid_t t = string_type(size);
    char *v = xmalloc(size + 1);
    v[size] = '\0';
    if (H5Aread(a, t, v) < 0) {
        free(v);
        v = NULL;
    }
    H5Tclose(t);
    return v;
}

char *h5_get_attr_str(hid_t obj, const char *name, const char *path) {
    if (!h5_has_attr(obj, name)) input_fail(path, 0, "wrong layout: attribute '%s' is missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    char *v = H5Tget_class(ft) == H5T_STRING ? read_string(a, ft) : NULL;
    H5Tclose(ft);
    H5Aclose(a);
    if (!v) input_fail(path, 0, "wrong layout: attribute '%s' is not a string", name);
    return v;
}

hid_t h5_create_1d(hid_t file, const char *name, hid_t type, int64_t n, int64_t chunk, int level) {
    errno = 0;
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t c = (hsize_t)(n < chunk ? (n > 0 ? n : 1) : chunk);
    int ok = H5Pset_chunk(pl, 1, &c) >= 0;
    if (ok && level > 0) ok = H5Pset_shuffle(pl) >= 0 && H5Pset_deflate(pl, (unsigned)level) >= 0;
    hid_t d = ok ? H5Dcreate2(file, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT) : -1;
    if (d < 0) h5_write_fail(file, "cannot create dataset %s", name);
    H5Pclose(pl);
    H5Sclose(sp);
    return d;
}

static void transfer(hid_t dset, hid_t memtype, int64_t offset, int64_t count, void *buf, int write) {
    if (count == 0) return;
    errno = 0;
    hsize_t off = (hsize_t)offset, cnt = (hsize_t)count;
    hid_t fs = H5Dget_space(dset);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    if (e >= 0) e = write ? H5Dwrite(dset, memtype, ms, fs, H5P_DEFAULT, buf) : H5Dread(dset, memtype, ms, fs, H5P_DEFAULT, buf);
    if (e < 0) {
        char what[128];
        snprintf(what, sizeof what, "cannot %s %lld elements at %lld", write ? "write" : "read", (long long)count,
                 (long long)offset);
        if (write) h5_write_fail(dset, "%s", what);
        strncat(what, " (damaged file?)", sizeof what - strlen(what) - 1);
        read_fail(dset, what);
    }
    H5Sclose(ms);
    H5Sclose(fs);
}

void h5_write_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, const void *buf) {
    transfer(dset, memtype, offset, count, (void *)buf, 1);
}

void h5_read_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, void *buf) {
    transfer(dset, memtype, offset, count, buf, 0);
}

hid_t h5_open_1d(hid_t file, const char *name, const char *path, int64_t *n) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) input_fail(path, 0, "wrong layout: dataset '%s' is missing", name);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) input_fail(path, 0, "wrong layout: '%s' is not a dataset", name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (rank != 1) input_fail(path, 0, "wrong layout: dataset '%s' has %d dimensions, expected 1", name, rank);
    *n = (int64_t)dims[0];
    return d;
}

void h5_read_checked(hid_t file, const char *name, const char *path, hid_t memtype, size_t elem, int64_t n,
                     int64_t chunk, void *out) {
    int64_t len;
    hid_t d = h5_open_1d(file, name, path, &len);
    hid_t t = H5Dget_type(d);
    const int integer = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == elem;
    H5Tclose(t);
    if (!integer) input_fail(path, 0, "wrong layout: dataset '%s' is not of %zu-byte integers", name, elem);
    if (len != n) input_fail(path, 0, "wrong layout: dataset '%s' has %lld elements, expected %lld", name, (long long)len, (long long)n);
    uint64_t want;
    if (tensor_get_checksum(d, &want) < 0) input_fail(path, 0, "%s: has no checksum (damaged?)", name);
    char *buf = out;
    for (int64_t at = 0; at < n; at += chunk) h5_read_at(d, memtype, at, n - at < chunk ? n - at : chunk, buf + (size_t)at * elem);
    H5Dclose(d);
    if ((size_t)n * elem % 4 != 0 || tensor_checksum(buf, (size_t)n * elem / 4) != want)
        input_fail(path, 0, "%s: damaged: its values fail their checksum", name);
}

void cw_open(chunk_writer *w, hid_t dset, size_t elem, int level) {
    memset(w, 0, sizeof *w);
    hid_t pl = H5Dget_create_plist(dset);
    hsize_t chunk = 0;
    H5_CHECK(H5Pget_chunk(pl, 1, &chunk), "dataset is not chunked");
    CHECK(H5Pget_nfilters(pl) == (level > 0 ? 2 : 0), "dataset filters do not match level %d", level);
    H5Pclose(pl);
    w->sum = TENSOR_CHECKSUM_INIT;
    w->dset = dset;
    w->elem = elem;
    w->chunk = (int64_t)chunk;
    w->level = level;
    size_t bytes = (size_t)chunk * elem;
    w->buf = xmalloc(bytes);
    if (level > 0) {
        w->z = libdeflate_alloc_compressor(level);
        CHECK(w->z, "cannot allocate a deflate compressor");
        w->shuffled = xmalloc(bytes);
        w->packed_cap = libdeflate_zlib_compress_bound(w->z, bytes);
        w->packed = xmalloc(w->packed_cap);
    }
}

// HDF5's shuffle filter: byte k of every element, for k = 0..elem-1, in turn.
static void shuffle_bytes(unsigned char *dst, const unsigned char *src, size_t n, size_t elem) {
    for (size_t k = 0; k < elem; k++)
        for (size_t i = 0; i < n; i++) *dst++ = src[i * elem + k];
}

static void cw_flush(chunk_writer *w) {
    if (w->fill == 0) return;
    // A chunk is always stored whole: pad the last one (readers never see the padding).
    size_t used = (size_t)w->fill * w->elem, bytes = (size_t)w->chunk * w->elem;
    CHECK(used % 4 == 0, "a dataset of %zu-byte elements must end on a whole 32-bit word", w->elem);
    w->sum = tensor_checksum_more(w->sum, w->buf, used / 4);
    if (used < bytes) memset(w->buf + used, 0, bytes - used);
    const void *out = w->buf;
    size_t out_n = bytes;
    if (w->level > 0) {
        shuffle_bytes(w->shuffled, w->buf, (size_t)w->chunk, w->elem);
        out_n = libdeflate_zlib_compress(w->z, w->shuffled, bytes, w->packed, w->packed_cap);
        CHECK(out_n > 0, "deflate failed on a %zu-byte chunk", bytes);
        out = w->packed;
    }
    hsize_t offset = (hsize_t)(w->next_chunk * w->chunk);
    errno = 0;
    if (H5Dwrite_chunk(w->dset, H5P_DEFAULT, 0, &offset, out_n, out) < 0)
        h5_write_fail(w->dset, "cannot write chunk %lld", (long long)w->next_chunk);
    w->next_chunk++;
    w->total += w->fill;
    w->fill = 0;
}

void cw_append(chunk_writer *w, const void *src, int64_t n) {
    const unsigned char *p = src;
    while (n > 0) {
        int64_t take = w->chunk - w->fill < n ? w->chunk - w->fill : n;
        memcpy(w->buf + (size_t)w->fill * w->elem, p, (size_t)take * w->elem);
        w->fill += take;
        p += (size_t)take * w->elem;
        n -= take;
        if (w->fill == w->chunk) cw_flush(w);
    }
}

void cw_close(chunk_writer *w) {
    cw_flush(w);
    errno = 0;
    if (tensor_set_checksum(w->dset, w->sum) < 0) h5_write_fail(w->dset, "cannot write its checksum");
    if (w->z) libdeflate_free_compressor(w->z);
    free(w->buf);
    free(w->shuffled);
    free(w->packed);
    memset(w, 0, sizeof *w);
}
