// Resumable checkpoints (DESIGN §6): RUN/ckpt-STEP.h5 holds the parameters, the optimizer
// state, the epoch and global step, and every rank's lanes (sessions, positions, stream
// cursor) and hidden states. Random numbers are counter-based (seed, step, rank), so no
// generator state is needed: a resumed run continues bit for bit.
#ifndef GRUREC_CHECKPOINT_H
#define GRUREC_CHECKPOINT_H

#include <stdint.h>

#include "backend/backend.h"
#include "dist/tables.h"
#include "comm/comm.h"
#include "cmd/config.h"
#include "data/lanes.h"
#include "model/model.h"

typedef struct {
    int64_t epoch;      // the epoch to run (1-based)
    int started;        // 1: resume inside it with the saved lanes; 0: it starts afresh
    int64_t step;       // global steps done
} ckpt_position;

// Collective. Rank 0 writes RUN/ckpt-STEP.h5 (temporary name, fsync, rename), every
// tensor with its checksum (TB's: tables_settle first, then tables_save) and the original
// ITEM_IDS (rank 0's; NULL: none), and keeps the newest KEEP of those it has gone past. Returns 0
// on success; on a failed write (a full disk) rank 0 says "writing checkpoint PATH failed
// (why); the previous checkpoint is kept", removes the temporary file, the previous
// checkpoints stay valid, and every rank gets non-zero.
int checkpoint_save(comm *cm, const char *run, const train_config *c, const model_shape *s, const model_tensors *p,
                    backend *b, tables *tb, const lanes *ln, const ckpt_position *pos, const char *fingerprint,
                    const char *data_dir, char *const *item_ids, int keep);
// Collective. Loads the newest checkpoint of RUN whose checksums verify (a damaged one is
// reported by name and skipped) into P, B's optimizer state, LN and the hidden states.
// Returns 0 when RUN has none. Refuses (input error, never "damaged") a checkpoint of
// another dataset (FINGERPRINT) or another model configuration, and another world
// size unless RESHARD (then parameters and optimizer state are taken and the epoch in
// progress starts over on the new ranks: not bit for bit). The item tables and their
// optimizer state are TB's (tables_load; with one copy for every rank, rank 0 alone
// reads it: the caller's tables_ready then shows it to the others).
int checkpoint_load(comm *cm, const char *run, const train_config *c, const model_shape *s, model_tensors *p,
                    backend *b, tables *tb, lanes *ln, ckpt_position *pos, const char *fingerprint, int reshard);
// A 64-bit checksum of every parameter (replicas and resumed runs compare it).
uint64_t params_checksum(const model_shape *s, const model_tensors *p);

#endif
