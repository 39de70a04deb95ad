// A checkpoint of sharded item tables read whole (model_load: inspect, eval, recommend of
// a manifest), and the checks every reader of its parts makes.
#include "io/model_parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"
#include "io/tensor_io.h"
#include "util/check.h"

void part_path(char *out, size_t size, const char *manifest, int64_t q, int64_t P) {
    xsnprintf(out, size, "%s.part-%lld-of-%lld", manifest, (long long)q, (long long)P);
}

const char *part_mismatch(hid_t g, const char *name, int64_t q, int64_t P, int64_t n_items) {
    static const char *const needed[] = {"part", "parts", "n_items"};
    for (int k = 0; k < 3; k++)
        if (!h5_has_attr(g, needed[k])) return "an attribute is missing";
    if (h5_get_attr_i64(g, "part", name) != q || h5_get_attr_i64(g, "parts", name) != P ||
        h5_get_attr_i64(g, "n_items", name) != n_items)
        return "another rank's or another run's rows";
    return NULL;
}

hid_t part_open_or_exit(const char *manifest, int64_t q, int64_t P, int64_t n_items, char *name, size_t size) {
    part_path(name, size, manifest, q, P);
    hid_t g = h5_open_read(name);  // (missing or damaged: exit 2 naming it)
    const char *bad = part_mismatch(g, name, q, P, n_items);
    if (bad) input_fail(name, 0, "not part %lld of %lld of %s: %s", (long long)q, (long long)P, manifest, bad);
    return g;
}

void rows_into_take(void *ctx, size_t lo, size_t k, const void *v) {
    const rows_into *h = ctx;
    const float *rows = v;
    for (size_t e = 0; e < k; e += h->w) {
        int64_t i = h->item0 + (int64_t)((lo + e) / h->w) * h->step;
        if (h->to_of) i = h->to_of[i];
        if (i < h->first || (i - h->first) % h->stride) continue;  // (new here, or another rank's)
        const int64_t row = (i - h->first) / h->stride;
        CHECK(row < h->n, "item %lld is row %lld of %lld here", (long long)i, (long long)row, (long long)h->n);
        memcpy(h->dst + (size_t)row * h->w, rows + e, h->w * sizeof *rows);
    }
}

void model_read_table_parts(const char *path, int64_t P, const model_shape *s, model_tensors *t) {
    const int64_t N = s->n_items;
    const char *names[3] = {"params/Wy", "params/by", "params/E"};
    float *dst[3] = {t->Wy, t->by, t->E};
    const size_t w[3] = {(size_t)s->hid[s->n_layers - 1], 1, (size_t)s->emb_width};
    char part[4200];
    for (int64_t q = 0; q < P; q++) {
        hid_t f = part_open_or_exit(path, q, P, N, part, sizeof part);
        const size_t n_q = (size_t)((N - q + P - 1) / P);
        for (int k = 0; k < 3; k++) {
            if (!dst[k]) continue;
            rows_into h = {dst[k], w[k], q, P, NULL, 0, 1, N};
            const char *why = tensor_read_rounds(f, names[k], H5T_NATIVE_FLOAT, sizeof(float), n_q * w[k],
                                                 tensor_rows_round(w[k]), rows_into_take, &h);
            if (why) input_fail(part, 0, "damaged: %s %s", names[k], why);
        }
        H5Fclose(f);
    }
}
