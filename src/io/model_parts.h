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
// Wy, by and E (where T has it) of checkpoint PATH, a manifest of P parts, into T's whole
// tables; a missing, damaged or foreign part is an input error (exit 2 naming it).
void model_read_table_parts(const char *path, int64_t P, const model_shape *s, model_tensors *t);

#endif
