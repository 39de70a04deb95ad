// A checkpoint of sharded item tables read whole (model_load: inspect, eval, recommend of
// a manifest): the tables come from its parts PATH.part-Q-of-P, whose row k is item
// Q + k·P (src/dist/tables_parts.c writes them). The whole tables must fit this process.
#include "io/model_parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"
#include "io/tensor_io.h"
#include "util/check.h"

void model_read_table_parts(const char *path, int64_t P, const model_shape *s, model_tensors *t) {
    const int64_t N = s->n_items;
    const char *names[3] = {"params/Wy", "params/by", "params/E"};
    float *dst[3] = {t->Wy, t->by, t->E};
    const int w[3] = {s->hid[s->n_layers - 1], 1, s->emb_width};
    char part[4200];
    for (int64_t q = 0; q < P; q++) {
        xsnprintf(part, sizeof part, "%s.part-%lld-of-%lld", path, (long long)q, (long long)P);
        hid_t f = h5_open_read(part);  // (a damaged or missing part: exit 2 naming it)
        if (h5_get_attr_i64(f, "part", part) != q || h5_get_attr_i64(f, "parts", part) != P ||
            h5_get_attr_i64(f, "n_items", part) != N)
            input_fail(part, 0, "not part %lld of %lld of this checkpoint", (long long)q, (long long)P);
        const int64_t n_q = (N - q + P - 1) / P;
        for (int k = 0; k < 3; k++) {
            if (!dst[k]) continue;
            float *rows = xmalloc(((size_t)n_q * w[k] + 1) * sizeof *rows);
            const char *why = tensor_read_f32(f, names[k], rows, (size_t)n_q * w[k]);
            if (why) input_fail(part, 0, "damaged: %s %s", names[k], why);
            for (int64_t j = 0; j < n_q; j++)
                memcpy(dst[k] + (size_t)(q + j * P) * w[k], rows + (size_t)j * w[k], (size_t)w[k] * sizeof *rows);
            free(rows);
        }
        H5Fclose(f);
    }
}
