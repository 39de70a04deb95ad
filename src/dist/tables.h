// The item tables (Wy, by, and E or the one-hot input weights) as one module: where they
// and their Adagrad state live, how a step's row gradients are summed and applied, how
// they go into checkpoints and checksums. The mode is chosen once, at creation:
//   replicated  every rank a copy; a step all-reduces the rows it touched (or the whole
//               tables) and every rank applies the same update (tables_replicated.c);
//   node        CPU ranks on one machine keep one copy in shared memory, and each rank
//               updates its part of a step's rows (tables_node.c);
//   sharded     item i's rows and their state live on rank i mod P alone: a step fetches
//               the rows it needs from their owners and sends their gradients back
//               (tables_sharded.c), so a rank holds 1/P of the tables.
// All three give the same bits. The training loop calls tables_sync once a step and knows
// nothing of the mode (docs/distributed.md).
#ifndef GRUREC_TABLES_H
#define GRUREC_TABLES_H

#include <hdf5.h>
#include <stdint.h>

#include "backend/backend.h"
#include "comm/comm.h"
#include "dist/exchange.h"
#include "model/model.h"

typedef enum { TABLES_REPLICATED, TABLES_NODE, TABLES_SHARDED } tables_mode;
// How a step's gradients travel between ranks: not at all (one rank), through the
// machine's shared memory, by MPI messages, or by NCCL (GPUs).
typedef enum { TRANSPORT_NONE, TRANSPORT_SHM, TRANSPORT_MPI, TRANSPORT_NCCL } tables_transport;

typedef struct {
    // --item-tables replicated|node|sharded; NULL: GRUREC_SHARED_MODEL=0 (its old switch) means
    // replicated, else the default: node for CPU ranks on one machine, else replicated
    const char *mode;
    int sparse;            // --sparse-exchange: the touched rows (1) or whole tables (0)
    backend_device device;
    int max_rows;          // a rank's lanes (B): with the config's negatives, bounds a step's rows
} tables_options;

typedef struct tables tables;

// NAME ("replicated", "node") as a mode: 1, or 0 when it names none.
int tables_mode_parse(const char *name, tables_mode *m);

// Collective. Resolves the mode (the same on every rank; an impossible --item-tables is a
// usage error), carves the tables and their Adagrad state from that mode's memory, binds
// them into P's Wy, by, E, and initialises them from C's seed (model_init_tables) where
// this rank writes them. A node mode whose shared segment cannot be had falls back to
// replicated (with a line saying why).
tables *tables_create(comm *cm, const train_config *c, const model_shape *s, const tables_options *o,
                      model_tensors *p);
// The tables' Adagrad state, which the training backend borrows (backend_create_trainer).
const table_optim *tables_optim(const tables *tb);
// Collective: the step's sums, set up for the training backend B (created from P and
// tables_optim). Settles the transport.
void tables_attach(tables *tb, backend *b);
// Collective: after the tables were initialised or read from a checkpoint, before any
// rank reads them (one copy: every rank sees rank 0's writes).
void tables_ready(tables *tb);
// Before the step's backend_gradient_step (collective with sharded tables): the ids to
// give it for the inputs X and targets Y (M each) and the negatives NEG (K). Where the
// tables are whole, X, Y and NEG themselves; sharded, the rows the step needs are fetched
// from their owners into a step table bound into the model, and the ids are its rows.
void tables_fetch(tables *tb, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                  const int32_t **bx, const int32_t **by, const int32_t **bneg);
// Evaluation over sharded tables (src/eval/evaluate_sharded.c), collective, every rank
// with its M lanes (0 too):
// - the inputs X's rows fetched into the model's tables as tables_fetch does (at most
//   the config's eval_batch), *BX their rows;
void tables_fetch_inputs(tables *tb, int M, const int32_t *x, const int32_t **bx);
// - the rank of each of this rank's M targets Y among all items, scored from the top
//   layer's outputs H (M × H): every rank scores its own rows for every rank's lanes (the
//   outputs all-gathered), and the counts above and equal to each target's score are
//   summed over the ranks; RANK[i] is what metrics' rank_of gives for whole tables.
void tables_rank_targets(tables *tb, int M, const float *h, const int32_t *y, tie_mode ties, double *rank);
// One step's update, collective, after backend_gradient_step: HEADER (HDR_N floats) is
// summed over the ranks in place; the dense gradients and every table's row gradients
// are summed in rank order and applied where the parameters live; the hidden state of
// the M lanes moves on (backend_end_step). On return every parameter this rank reads in
// the next step is current.
void tables_sync(tables *tb, float *header, int M);
void tables_free(tables *tb);

tables_mode tables_mode_of(const tables *tb);
tables_transport tables_transport_of(const tables *tb);  // (after tables_attach)
const char *tables_mode_name(tables_mode m);             // "replicated", "node", "sharded"
const char *tables_transport_name(tables_transport t);   // "none", "shared-memory", "mpi", "nccl"
// For the start-up line: how the step's gradients are summed and where the tables live.
const char *tables_summary(const tables *tb);
// The exchange's cost since the last reset (zeros on one rank).
const exchange_stats *tables_stats(const tables *tb);
void tables_stats_reset(tables *tb);
// A checksum of every parameter this rank keeps a copy of (the dense weights and the
// tables, params_checksum; sharded: the dense weights): --check-every compares it across ranks.
uint64_t tables_params_checksum(const tables *tb);
// Bytes of model state on this rank: the tables and their Adagrad state where this rank
// keeps them (the start-up line; the dense weights' are the caller's).
size_t tables_bytes_here(const tables *tb);
// Collective: the model file PATH (model_save's, with C, FINGERPRINT, DATA_DIR and
// ITEM_IDS) written by rank 0. Sharded tables are streamed from their owners in rounds of
// a few MB per rank, so no rank holds a whole table (as with checkpoints); a failed write
// ends the job as model_save's does.
void tables_save_model(tables *tb, const char *path, const train_config *c, const char *fingerprint,
                       const char *data_dir, char *const *item_ids);
// The item rows this rank keeps: items FIRST, FIRST + STRIDE, ... (N of them) at rows
// 0, 1, ... of T (every item, stride 1, where the tables are whole on every rank).
void tables_rows_here(const tables *tb, const model_tensors **t, int64_t *first, int64_t *stride, int64_t *n);
// The rows of the tables bound into the model where they are not the whole tables
// (model_shape's table_rows, for the training backend): 0, or (sharded) the step table's.
int64_t tables_bound_rows(const tables *tb);

// Checkpoints (io/checkpoint.c writes the file, the module its own tensors):
// - collective, before a checkpoint: whatever a rank keeps current in part only is made
//   whole (the dense optimizer state of a dense update split by range);
void tables_settle(tables *tb);
// - on the writing rank: the tables and their state into F (params/Wy, params/by,
//   params/E, optim/acc_Wy, optim/mom_Wy, ...): 0, or -1 (errno as HDF5 left it);
int tables_save(const tables *tb, hid_t f);
// - from F: NULL when whole, else what is wrong ("optim/acc_Wy fails its checksum");
const char *tables_load(tables *tb, hid_t f);
// - collective, before rank 0 writes checkpoint PATH: a rank's part of sharded tables into
//   PATH.part-R-of-P (written, sealed, synced and renamed; PATH, the manifest, comes last):
//   0, else the errno of the failed write on some rank (on every rank); 0 where whole;
int tables_save_parts(tables *tb, const char *path);
// - 1 where the ranks read their own parts of a checkpoint and must agree on which one;
int tables_in_parts(const tables *tb);
// - 1 where one copy serves every rank: rank 0 alone reads it from a checkpoint (and
//   picks the checkpoint), the others read their own tensors from rank 0's choice;
int tables_one_copy(const tables *tb);
// - as created (from the seed, Adagrad state zero), where this rank writes them: a run
//   whose checkpoints were all damaged starts over.
void tables_reset(tables *tb);

#endif
