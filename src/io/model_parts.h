// The part files of a checkpoint of sharded item tables (src/dist/tables_parts.c writes
// them): MANIFEST.part-Q-of-P, whose row k is item Q + k·P, with the attributes part,
// parts and n_items; and the tables assembled whole from them.
#ifndef GRUREC_MODEL_PARTS_H
#define GRUREC_MODEL_PARTS_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

// The file name of part Q of P of MANIFEST, into OUT.
void part_path(char *out, size_t size, const char *manifest, int64_t q, int64_t P);
// Whether G (the open file NAME) is part Q of P of a checkpoint of N_ITEMS items: NULL, or
// what is wrong ("an attribute is missing", "another rank's or another run's rows").
const char *part_mismatch(hid_t g, const char *name, int64_t q, int64_t P, int64_t n_items);
// Part Q of P of MANIFEST opened (NAME: its file name); missing, damaged or another's: an
// input error naming it (exit 2).
hid_t part_open_or_exit(const char *manifest, int64_t q, int64_t P, int64_t n_items, char *name, size_t size);
// Where the rows of a table's tensor go as tensor_read_rounds hands them over (TAKE's CTX
// for rows_into_take): its row j is item ITEM0 + j·STEP (part q of P': q, P'; a whole
// table: 0, 1), that item is TO_OF[item] here (NULL: the same), and it is kept where this
// process keeps it: items FIRST, FIRST + STRIDE, ... at rows 0, 1, ... of DST (N of them).
typedef struct {
    float *dst;
    size_t w;
    int64_t item0, step;
    const int64_t *to_of;
    int64_t first, stride, n;
} rows_into;
void rows_into_take(void *ctx, size_t lo, size_t k, const void *v);
// Wy, by and E (where T has it) of checkpoint PATH, a manifest of P parts, into T's whole
// tables; a missing, damaged or foreign part is an input error (exit 2 naming it).
void model_read_table_parts(const char *path, int64_t P, const model_shape *s, model_tensors *t);

#endif
