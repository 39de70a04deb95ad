// model_save (model/model.h) in parts: the file's layout is model_save's.
#ifndef GRUREC_MODEL_SAVE_H
#define GRUREC_MODEL_SAVE_H

#include <hdf5.h>

#include "model/model.h"
#include "util/check.h"

// model_save in parts, for tables that arrive piece by piece (dist/tables_sharded.c
// streams them from their owners): the temporary file begun, with the dense weights; the
// caller's tensors written into it (params/Wy, ...: a failure is model_save_failed's, with
// the errno); then finished as model_save finishes (ids, attributes, seal, rename).
hid_t model_save_begin(const char *path, const model_shape *s, const float *dense);
GRUREC_NORETURN void model_save_failed(const char *path, int err);
void model_save_end(hid_t f, const char *path, const model_shape *s, const train_config *c, const char *fingerprint,
                    const char *data_dir, char *const *item_ids);

#endif
