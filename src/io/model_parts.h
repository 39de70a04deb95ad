// The item tables of a sharded checkpoint, assembled whole from its parts.
#ifndef GRUREC_MODEL_PARTS_H
#define GRUREC_MODEL_PARTS_H

#include <stdint.h>

#include "model/model.h"

// Wy, by and E (where T has it) of checkpoint PATH, a manifest of P parts, into T's whole
// tables; a missing, damaged or foreign part is an input error (exit 2 naming it).
void model_read_table_parts(const char *path, int64_t P, const model_shape *s, model_tensors *t);

#endif
