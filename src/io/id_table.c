#include "io/id_table.h"

#include <stdlib.h>
#include <string.h>

#include "io/tensor_io.h"
#include "util/check.h"

int id_table_write(hid_t f, char *const *ids, int64_t n) {
    int64_t *off = xmalloc((size_t)(n + 1) * sizeof *off);
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) off[i + 1] = off[i] + (int64_t)strlen(ids[i]);
    uint8_t *bytes = xmalloc((size_t)off[n] + 1);
    for (int64_t i = 0; i < n; i++) memcpy(bytes + off[i], ids[i], (size_t)(off[i + 1] - off[i]));
    hid_t g = H5Gcreate2(f, "items", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    if (g >= 0) H5Gclose(g);
    if (rc == 0) rc = tensor_write_i64(f, "items/id_offsets", off, (size_t)n + 1);
    if (rc == 0) rc = tensor_write_u8(f, "items/id_bytes", bytes, (size_t)off[n]);
    free(off);
    free(bytes);
    return rc;
}

int id_table_present(hid_t f) { return H5Lexists(f, "items", H5P_DEFAULT) > 0; }

char **id_table_read(hid_t f, const char *path, int64_t n) {
    int64_t nb = tensor_length(f, "items/id_bytes");
    if (nb < 0 || nb > 4096 * (n + 1)) input_fail(path, 0, "damaged: items/id_bytes is missing or of an impossible size");
    int64_t *off = xmalloc((size_t)(n + 1) * sizeof *off);
    uint8_t *bytes = xmalloc((size_t)nb + 1);
    const char *why = tensor_read_i64(f, "items/id_offsets", off, (size_t)n + 1);
    if (why) input_fail(path, 0, "damaged: items/id_offsets %s", why);
    if ((why = tensor_read_u8(f, "items/id_bytes", bytes, (size_t)nb))) input_fail(path, 0, "damaged: items/id_bytes %s", why);
    // Checksums pass; still, nothing is used before the offsets are known to fit.
    if (off[0] != 0 || off[n] != nb) input_fail(path, 0, "damaged: the item id offsets do not cover items/id_bytes");
    char **ids = xmalloc((size_t)(n ? n : 1) * sizeof *ids);
    for (int64_t i = 0; i < n; i++) {
        if (off[i + 1] < off[i] || memchr(bytes + off[i], 0, (size_t)(off[i + 1] - off[i])))
            input_fail(path, 0, "damaged: item id %lld is not well formed", (long long)i);
        size_t len = (size_t)(off[i + 1] - off[i]);
        ids[i] = xmalloc(len + 1);
        memcpy(ids[i], bytes + off[i], len);
        ids[i][len] = '\0';
    }
    free(off);
    free(bytes);
    return ids;
}

void id_table_free(char **ids, int64_t n) {
    if (!ids) return;
    for (int64_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

typedef struct {
    const char *id;
    int64_t index;
} id_ref;

static int by_id(const void *a, const void *b) { return strcmp(((const id_ref *)a)->id, ((const id_ref *)b)->id); }

static id_ref *sorted_refs(char *const *ids, int64_t n) {
    id_ref *r = xmalloc((size_t)(n ? n : 1) * sizeof *r);
    for (int64_t i = 0; i < n; i++) r[i] = (id_ref){ids[i] ? ids[i] : "", i};
    qsort(r, (size_t)n, sizeof *r, by_id);
    return r;
}

int64_t id_match(char *const *from, int64_t n_from, char *const *to, int64_t n_to, int64_t *from_of) {
    id_ref *a = sorted_refs(from, n_from), *b = sorted_refs(to, n_to);
    for (int64_t j = 0; j < n_to; j++) from_of[j] = -1;
    int64_t i = 0, j = 0, kept = 0;
    while (i < n_from && j < n_to) {
        int c = strcmp(a[i].id, b[j].id);
        if (c < 0) i++;
        else if (c > 0) j++;
        else from_of[b[j++].index] = a[i++].index, kept++;
    }
    free(a);
    free(b);
    return kept;
}
