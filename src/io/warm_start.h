// Warm start (train --warm-start FROM): a new run on a new dataset begins from another
// run's model instead of from random numbers. Items are matched by original id: an item of
// both keeps its rows of every item table (output weights and bias, input embedding where
// there is one) and their Adagrad accumulators and momenta; a new item gets the rows a
// fresh model would give it (model_init, the same seed rule); an item of FROM alone is
// dropped. The GRU weights and their optimizer state are carried over. Settings that shape
// the model (layers, embedding, loss and final activation) must equal FROM's.
#ifndef GRUREC_WARM_START_H
#define GRUREC_WARM_START_H

#include <stdint.h>

#include "backend/backend.h"
#include "cmd/config.h"
#include "data/dataset.h"
#include "model/model.h"

typedef struct {
    char path[4096];    // the file read: FROM itself, or a run directory's newest checkpoint (else model.h5)
    int64_t kept, added, dropped;
    int optimizer;      // 1: FROM held optimizer state (a checkpoint); 0: a model file (accumulators start at 0)
} warm_start_info;

// Checks FROM against C before anything is written: a shape setting that differs, a file
// that is damaged or holds no item ids (and whose dataset cannot supply them) is an input
// error naming FROM. Fills W (path, counts against M's items).
void warm_start_check(const char *from, const train_config *c, const dataset_meta *m, warm_start_info *w);
// The item tables' rows of this rank (tables_rows_here: items FIRST, FIRST + STRIDE, ...,
// N of them, at rows 0, 1, ... of T's tables and of O's state; every item, stride 1, where
// the tables are whole) set from W's file: a kept item's row and its Adagrad state from
// FROM's, the other rows as they are (fresh). FROM's tables (whole, or the parts of a
// sharded checkpoint) are read in rounds of a few MB, never whole. Called where this
// rank writes the tables, before warm_start_load.
void warm_start_load_rows(const warm_start_info *w, const model_shape *s, const dataset_meta *m,
                          const model_tensors *t, const table_optim *o, int64_t first, int64_t stride, int64_t n);
// The dense weights of P and their state in B from W's file, then B's device copy from the
// host's (the tables' rows included).
void warm_start_load(const warm_start_info *w, const model_shape *s, model_tensors *p, backend *b);

#endif
