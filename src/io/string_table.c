#include "io/string_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"

static void dataset_name(char *buf, size_t size, const char *name, const char *part) {
    xsnprintf(buf, size, "%s_%s", name, part);
}

int64_t strtab_size(int64_t n, int64_t chars) { return (chars + n + 3) / 4 * 4; }

void strtab_begin(strtab_writer *w, hid_t f, const char *name, int64_t n, int64_t chars, int64_t chunk, int level) {
    memset(w, 0, sizeof *w);
    char key[256];
    w->n = n;
    w->size = strtab_size(n, chars);
    dataset_name(key, sizeof key, name, "bytes");
    w->d_bytes = h5_create_1d(f, key, H5T_STD_U8LE, w->size, chunk, level);
    dataset_name(key, sizeof key, name, "offsets");
    w->d_offsets = h5_create_1d(f, key, H5T_STD_I64LE, n + 1, chunk, level);
    cw_open(&w->bytes, w->d_bytes, 1, level);
    cw_open(&w->offsets, w->d_offsets, sizeof(int64_t), level);
    cw_append(&w->offsets, &w->at, 1);
}

void strtab_add(strtab_writer *w, const char *s, size_t len) {
    CHECK(w->added < w->n && w->at + (int64_t)len + 1 <= w->size, "string table: more strings or bytes than announced");
    static const char nul = '\0';
    cw_append(&w->bytes, s, (int64_t)len);
    cw_append(&w->bytes, &nul, 1);
    w->at += (int64_t)len + 1;
    w->added++;
    cw_append(&w->offsets, &w->at, 1);
}

void strtab_end(strtab_writer *w) {
    CHECK(w->added == w->n && w->size - w->at < 4, "string table: %lld strings of %lld bytes, %lld of %lld announced",
          (long long)w->added, (long long)w->at, (long long)w->n, (long long)w->size);
    static const char pad[4] = {0, 0, 0, 0};
    cw_append(&w->bytes, pad, w->size - w->at);
    cw_close(&w->bytes);
    cw_close(&w->offsets);
    H5Dclose(w->d_bytes);
    H5Dclose(w->d_offsets);
    memset(w, 0, sizeof *w);
}

char **strtab_read(hid_t f, const char *name, const char *path, int64_t n, int64_t chunk) {
    char key[256];
    dataset_name(key, sizeof key, name, "offsets");
    int64_t *off = xmalloc((size_t)(n + 1) * sizeof *off);
    h5_read_checked(f, key, path, H5T_NATIVE_INT64, sizeof *off, n + 1, chunk, off);
    dataset_name(key, sizeof key, name, "bytes");
    int64_t size;
    hid_t d = h5_open_1d(f, key, path, &size);
    H5Dclose(d);
    // Each string holds at least its NUL: offsets rise from 0 to the bytes in use.
    if (off[0] != 0 || off[n] > size || size - off[n] >= 4)
        input_fail(path, 0, "%s_offsets: damaged: offsets %lld..%lld for %lld bytes", name, (long long)off[0],
                   (long long)off[n], (long long)size);
    for (int64_t i = 0; i < n; i++)
        if (off[i + 1] <= off[i]) input_fail(path, 0, "%s_offsets: damaged: string %lld has no bytes", name, (long long)i);
    // One allocation: the N pointers, then the bytes they point into.
    char **ids = xmalloc((size_t)n * sizeof *ids + (size_t)(size ? size : 1));
    char *bytes = (char *)(ids + n);
    h5_read_checked(f, key, path, H5T_NATIVE_UINT8, 1, size, chunk, bytes);
    for (int64_t i = 0; i < n; i++) {
        size_t len = (size_t)(off[i + 1] - off[i] - 1);
        if (memchr(bytes + off[i], '\0', len + 1) != bytes + off[i] + len)
            input_fail(path, 0, "%s: damaged: string %lld does not end where its offsets say", key, (long long)i);
        ids[i] = bytes + off[i];
    }
    free(off);
    return ids;
}
