// The item tables (Wy, by, and E or the one-hot input weights) as one module: where they
// and their Adagrad state live, how a step's row gradients are summed and applied, how
// they go into checkpoints and checksums. The mode is chosen once, at creation:
//   replicated  every rank a copy; a step all-reduces the rows it touched (or the whole
//               tables) and every rank applies the same update (tables_replicated.c);
//   node        CPU ranks on one machine keep one copy in shared memory, and each rank
//               updates its part of a step's rows (tables_node.c).
// Both give the same bits. The training loop calls tables_sync once a step and knows
// nothing of the mode (docs/distributed.md).
#ifndef GRUREC_TABLES_H
#define GRUREC_TABLES_H

#include <hdf5.h>
#include <stdint.h>

#include "backend/backend.h"
#include "comm/comm.h"
#include "dist/exchange.h"
#include "model/model.h"

typedef enum { TABLES_REPLICATED, TABLES_NODE } tables_mode;
// How a step's gradients travel between ranks: not at all (one rank), through the
// machine's shared memory, by MPI messages, or by NCCL (GPUs).
typedef enum { TRANSPORT_NONE, TRANSPORT_SHM, TRANSPORT_MPI, TRANSPORT_NCCL } tables_transport;

typedef struct {
    // --item-tables replicated|node; NULL: GRUREC_SHARED_MODEL=0 (its old switch) means
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
// One step's update, collective, after backend_gradient_step: HEADER (HDR_N floats) is
// summed over the ranks in place; the dense gradients and every table's row gradients
// are summed in rank order and applied where the parameters live; the hidden state of
// the M lanes moves on (backend_end_step). On return every parameter this rank reads in
// the next step is current.
void tables_sync(tables *tb, float *header, int M);
void tables_free(tables *tb);

tables_mode tables_mode_of(const tables *tb);
tables_transport tables_transport_of(const tables *tb);  // (after tables_attach)
const char *tables_mode_name(tables_mode m);             // "replicated", "node"
const char *tables_transport_name(tables_transport t);   // "none", "shared-memory", "mpi", "nccl"
// For the start-up line: how the step's gradients are summed and where the tables live.
const char *tables_summary(const tables *tb);
// The exchange's cost since the last reset (zeros on one rank).
const exchange_stats *tables_stats(const tables *tb);
void tables_stats_reset(tables *tb);
// A checksum of every parameter as this rank sees it (the dense weights and the tables,
// params_checksum): --check-every compares it across ranks.
uint64_t tables_params_checksum(const tables *tb);

// Checkpoints (io/checkpoint.c writes the file, the module its own tensors):
// - collective, before a checkpoint: whatever a rank keeps current in part only is made
//   whole (the dense optimizer state of a dense update split by range);
void tables_settle(tables *tb);
// - on the writing rank: the tables and their state into F (params/Wy, params/by,
//   params/E, optim/acc_Wy, optim/mom_Wy, ...): 0, or -1 (errno as HDF5 left it);
int tables_save(const tables *tb, hid_t f);
// - from F: NULL when whole, else what is wrong ("optim/acc_Wy fails its checksum");
const char *tables_load(tables *tb, hid_t f);
// - 1 where one copy serves every rank: rank 0 alone reads it from a checkpoint (and
//   picks the checkpoint), the others read their own tensors from rank 0's choice;
int tables_one_copy(const tables *tb);
// - as created (from the seed, Adagrad state zero), where this rank writes them: a run
//   whose checkpoints were all damaged starts over.
void tables_reset(tables *tb);

#endif
