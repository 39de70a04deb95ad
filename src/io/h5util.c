#include "io/h5util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <libdeflate.h>

#include "util/check.h"

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t h5_create(const char *path) {
    h5_quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(f, "cannot create HDF5 file %s", path);
    return f;
}

hid_t h5_open_read(const char *path) {
    h5_quiet();
    if (access(path, R_OK) != 0) input_fail(path, 0, "cannot read: %s", strerror(errno));
    if (H5Fis_hdf5(path) <= 0) input_fail(path, 0, "not an HDF5 file");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) input_fail(path, 0, "cannot open as HDF5");
    return f;
}

void h5_close(hid_t file, const char *path) {
    H5_CHECK(H5Fflush(file, H5F_SCOPE_LOCAL), "cannot flush %s (disk full?)", path);
    H5_CHECK(H5Fclose(file), "cannot close %s (disk full?)", path);
}

void h5_attr_i64(hid_t obj, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a, "cannot create attribute %s", name);
    H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, &v), "cannot write attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
}

hid_t h5_vlen_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

void h5_attr_str(hid_t obj, const char *name, const char *v) {
    hid_t t = h5_vlen_string_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a, "cannot create attribute %s", name);
    H5_CHECK(H5Awrite(a, t, &v), "cannot write attribute %s", name);
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

char *h5_get_attr_str(hid_t obj, const char *name, const char *path) {
    if (!h5_has_attr(obj, name)) input_fail(path, 0, "wrong layout: attribute '%s' is missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    int ok = H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0;
    char *v = NULL, *copy = NULL;
    if (ok) {
        hid_t t = h5_vlen_string_type();
        ok = H5Aread(a, t, &v) >= 0 && v;
        if (ok) {
            copy = xstrdup(v);
            H5free_memory(v);
        }
        H5Tclose(t);
    }
    H5Tclose(ft);
    H5Aclose(a);
    if (!ok) input_fail(path, 0, "wrong layout: attribute '%s' is not a string", name);
    return copy;
}

hid_t h5_create_1d(hid_t file, const char *name, hid_t type, int64_t n, int64_t chunk, int level) {
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t c = (hsize_t)(n < chunk ? (n > 0 ? n : 1) : chunk);
    H5_CHECK(H5Pset_chunk(pl, 1, &c), "chunking %s", name);
    if (level > 0) {
        H5_CHECK(H5Pset_shuffle(pl), "shuffle filter for %s", name);
        H5_CHECK(H5Pset_deflate(pl, (unsigned)level), "deflate filter for %s", name);
    }
    hid_t d = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5_CHECK(d, "cannot create dataset %s", name);
    H5Pclose(pl);
    H5Sclose(sp);
    return d;
}

static void transfer(hid_t dset, hid_t memtype, int64_t offset, int64_t count, void *buf, int write) {
    if (count == 0) return;
    hsize_t off = (hsize_t)offset, cnt = (hsize_t)count;
    hid_t fs = H5Dget_space(dset);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL), "selecting elements");
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    herr_t e = write ? H5Dwrite(dset, memtype, ms, fs, H5P_DEFAULT, buf)
                     : H5Dread(dset, memtype, ms, fs, H5P_DEFAULT, buf);
    H5_CHECK(e, "cannot %s %lld elements at %lld (disk full or damaged file?)", write ? "write" : "read",
            (long long)count, (long long)offset);
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

void cw_open(chunk_writer *w, hid_t dset, size_t elem, int level) {
    memset(w, 0, sizeof *w);
    hid_t pl = H5Dget_create_plist(dset);
    hsize_t chunk = 0;
    H5_CHECK(H5Pget_chunk(pl, 1, &chunk), "dataset is not chunked");
    CHECK(H5Pget_nfilters(pl) == (level > 0 ? 2 : 0), "dataset filters do not match level %d", level);
    H5Pclose(pl);
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
    H5_CHECK(H5Dwrite_chunk(w->dset, H5P_DEFAULT, 0, &offset, out_n, out),
             "cannot write chunk %lld (disk full?)", (long long)w->next_chunk);
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
    if (w->z) libdeflate_free_compressor(w->z);
    free(w->buf);
    free(w->shuffled);
    free(w->packed);
    memset(w, 0, sizeof *w);
}
