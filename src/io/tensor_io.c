#include "io/tensor_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"

uint64_t tensor_checksum_more(uint64_t h, const void *v, size_t n_words) {
    const uint32_t *w = v;
    for (size_t i = 0; i < n_words; i++) h = (h ^ w[i]) * 0x100000001B3ull;
    return h;
}

uint64_t tensor_checksum(const void *v, size_t n_words) {
    return tensor_checksum_more(TENSOR_CHECKSUM_INIT, v, n_words);
}

int tensor_set_checksum(hid_t d, uint64_t sum) {
    int64_t v = (int64_t)sum;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(d, "checksum", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return ok ? 0 : -1;
}

int tensor_get_checksum(hid_t d, uint64_t *sum) {
    int64_t v = 0;
    hid_t a = H5Aexists(d, "checksum") > 0 ? H5Aopen(d, "checksum", H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    *sum = (uint64_t)v;
    return ok ? 0 : -1;
}

// The dataset NAME of N elements of FILE_TYPE, chunked (a MiB-element chunk at most), or -1.
static hid_t create_words(hid_t f, const char *name, hid_t file_type, size_t n) {
    hsize_t dims = n, chunk = n < (1u << 20) ? (n ? n : 1) : (1u << 20);
    hid_t sp = H5Screate_simple(1, &dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = sp >= 0 && pl >= 0 && H5Pset_chunk(pl, 1, &chunk) >= 0
                  ? H5Dcreate2(f, name, file_type, sp, H5P_DEFAULT, pl, H5P_DEFAULT) : -1;
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return d;
}

// N elements of ELEM bytes, checksummed as N * ELEM / 4 words (bytes come in whole words).
static int write_words(hid_t f, const char *name, hid_t file_type, hid_t mem_type, const void *v, size_t n,
                       size_t elem) {
    hid_t d = create_words(f, name, file_type, n);
    int ok = d >= 0 && (n == 0 || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    if (ok) ok = tensor_set_checksum(d, tensor_checksum(v, n * elem / 4)) == 0;
    if (d >= 0) H5Dclose(d);
    return ok ? 0 : -1;
}

int tensor_stream_open(tensor_stream *w, hid_t f, const char *name, size_t n) {
    *w = (tensor_stream){create_words(f, name, H5T_IEEE_F32LE, n), n, 0, TENSOR_CHECKSUM_INIT, 0};
    w->failed = w->d < 0;
    return w->failed ? -1 : 0;
}

int tensor_stream_write(tensor_stream *w, const float *v, size_t k) {
    if (w->failed || k == 0) return w->failed ? -1 : 0;
    hsize_t at = w->at, count = k;
    hid_t fs = at + k <= w->n ? H5Dget_space(w->d) : -1, ms = H5Screate_simple(1, &count, NULL);
    w->failed = fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &count, NULL) < 0 ||
                H5Dwrite(w->d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v) < 0;
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    w->sum = tensor_checksum_more(w->sum, v, k);
    w->at += k;
    return w->failed ? -1 : 0;
}

int tensor_stream_close(tensor_stream *w) {
    if (!w->failed && (w->at != w->n || tensor_set_checksum(w->d, w->sum) < 0)) w->failed = 1;
    if (w->d >= 0) H5Dclose(w->d);
    w->d = -1;
    return w->failed ? -1 : 0;
}

int tensor_write_f32(hid_t f, const char *name, const float *v, size_t n) {
    return write_words(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v, n, 4);
}

int tensor_write_u8(hid_t f, const char *name, const uint8_t *v, size_t n) {
    if (n % 4) return -1;
    return write_words(f, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, v, n, 1);
}

int tensor_write_i64(hid_t f, const char *name, const int64_t *v, size_t n) {
    return write_words(f, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n, 8);
}

static const char *read_words(hid_t f, const char *name, hid_t mem_type, void *v, size_t n, size_t elem) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return "is missing";
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return "cannot be opened";
    const char *why = NULL;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || dims[0] != n)
        why = "has another size than the model's config";
    if (sp >= 0) H5Sclose(sp);
    uint64_t sum = 0;
    if (!why && tensor_get_checksum(d, &sum) < 0)
        why = "has no checksum (damaged, or written by a grurec before models had them)";
    if (!why && n > 0 && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) why = "cannot be read";
    if (!why && tensor_checksum(v, n * elem / 4) != sum) why = "fails its checksum";
    H5Dclose(d);
    return why;
}

const char *tensor_read_f32(hid_t f, const char *name, float *v, size_t n) {
    return read_words(f, name, H5T_NATIVE_FLOAT, v, n, 4);
}

const char *tensor_read_i64(hid_t f, const char *name, int64_t *v, size_t n) {
    return read_words(f, name, H5T_NATIVE_INT64, v, n, 8);
}

const char *tensor_read_rounds(hid_t f, const char *name, hid_t mem_type, size_t elem, size_t n, size_t round,
                               tensor_round_fn take, void *ctx) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return "cannot be opened";
    const char *why = NULL;
    uint64_t sum = 0, h = TENSOR_CHECKSUM_INIT;
    hsize_t dims[2] = {0, 0};
    hid_t fs = H5Dget_space(d);
    if (fs < 0) why = "cannot be opened";
    else if (H5Sget_simple_extent_ndims(fs) != 1 || H5Sget_simple_extent_dims(fs, dims, NULL) != 1 || dims[0] != n)
        why = "has another size than the model's config";
    else if (tensor_get_checksum(d, &sum) < 0) why = "has no checksum (damaged, or written by a grurec before models had them)";
    void *buf = xmalloc((n < round ? n : round) * elem + 4);
    for (size_t lo = 0; lo < n && !why; lo += round) {
        hsize_t off = lo, cnt = n - lo < round ? n - lo : round;
        hid_t ms = H5Screate_simple(1, &cnt, NULL);
        if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL) < 0 ||
            H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) < 0) {
            why = "cannot be read";
        } else {
            h = tensor_checksum_more(h, buf, (size_t)cnt * elem / 4);
            if (take) take(ctx, lo, (size_t)cnt, buf);
        }
        if (ms >= 0) H5Sclose(ms);
    }
    if (!why && h != sum) why = "fails its checksum";
    free(buf);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return why;
}

// NAME (N elements of ELEM bytes) against its checksum, read in rounds of the file's own
// chunks (1M elements), so that verifying a file holds no tensor whole.
static const char *verify_words(hid_t f, const char *name, hid_t mem_type, size_t n, size_t elem) {
    return tensor_read_rounds(f, name, mem_type, elem, n, (size_t)1 << 20, NULL, NULL);
}

typedef struct {
    int count;
    char bad[256];
} verify_walk;

static herr_t verify_one(hid_t f, const char *name, const H5O_info_t *info, void *arg) {
    verify_walk *w = arg;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
    const size_t elem = t >= 0 ? H5Tget_size(t) : 0;
    const int is_float = t >= 0 && H5Tget_class(t) == H5T_FLOAT;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    const char *why = n > ((hssize_t)1 << 36) ? "has an impossible size" : "cannot be opened";
    if (n > ((hssize_t)1 << 36)) {
    } else if (n >= 0 && elem == 4 && is_float) {
        why = verify_words(f, name, H5T_NATIVE_FLOAT, (size_t)n, 4);
    } else if (n >= 0 && elem == 8 && !is_float) {
        why = verify_words(f, name, H5T_NATIVE_INT64, (size_t)n, 8);
    } else if (n >= 0 && elem == 1 && !is_float) {  // a string table's bytes: whole words
        why = n % 4 ? "is not a whole number of words" : verify_words(f, name, H5T_NATIVE_UINT8, (size_t)n, 1);
    }
    if (why) {
        snprintf(w->bad, sizeof w->bad, "%s %s", name, why);
        return 1;  // stop the walk
    }
    w->count++;
    return 0;
}

const char *tensor_verify_all(hid_t f, int *count) {
    static verify_walk w;
    memset(&w, 0, sizeof w);
    herr_t e = H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, verify_one, &w);
    *count = w.count;
    if (w.bad[0]) return w.bad;
    return e < 0 ? "its objects cannot be listed" : NULL;
}
