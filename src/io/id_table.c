#include "io/id_table.h"

#include <stdlib.h>
#include <string.h>

#include "io/string_table.h"
#include "io/tensor_io.h"
#include "util/check.h"

int id_table_write(hid_t f, char *const *ids, int64_t n) {
    // The string table's layout: each id and its NUL, NULs up to a whole word; offsets
    // where each starts, the last where the bytes in use end.
    int64_t *off = xmalloc((size_t)(n + 1) * sizeof *off);
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) off[i + 1] = off[i] + (int64_t)strlen(ids[i]) + 1;
    const int64_t size = strtab_size(n, off[n] - n);
    uint8_t *bytes = xcalloc((size_t)size + 4, 1);
    for (int64_t i = 0; i < n; i++) memcpy(bytes + off[i], ids[i], (size_t)(off[i + 1] - off[i] - 1));
    hid_t g = H5Gcreate2(f, "items", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    if (g >= 0) H5Gclose(g);
    if (rc == 0) rc = tensor_write_i64(f, "items/id_offsets", off, (size_t)n + 1);
    if (rc == 0) rc = tensor_write_u8(f, "items/id_bytes", bytes, (size_t)size);
    free(off);
    free(bytes);
    return rc;
}

int id_table_present(hid_t f) { return H5Lexists(f, "items", H5P_DEFAULT) > 0; }

char **id_table_read(hid_t f, const char *path, int64_t n) { return strtab_read(f, "items/id", path, n, (int64_t)1 << 20); }

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
