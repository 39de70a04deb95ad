// The table module's inside, shared by its modes (tables.c, tables_replicated.c,
// tables_node.c): nothing else includes it.
#ifndef GRUREC_TABLES_IMPL_H
#define GRUREC_TABLES_IMPL_H

#include "dist/slots.h"
#include "dist/tables.h"

typedef struct {
    // where the tables and their state are carved (1), or 0 where this mode cannot be had
    int (*open)(tables *tb);
    void (*attach)(tables *tb);  // sets tb->sync
    void (*ready)(tables *tb);
    void (*settle)(tables *tb);
    void (*release)(tables *tb);
    const char *(*summary)(const tables *tb);
    // (optional, sharded) where the tables differ from one whole copy per rank or machine:
    void (*carve)(tables *tb);  // the tables, their state and the step table allocated
    void (*fetch)(tables *tb, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                  const int32_t **bx, const int32_t **by, const int32_t **bneg);
    void (*save_model)(tables *tb, const char *path, const train_config *c, const char *fingerprint,
                       const char *data_dir, char *const *item_ids);
    int (*save_parts)(tables *tb, const char *path);
} tables_ops;

struct tables {
    const tables_ops *ops;
    tables_mode mode;
    tables_transport transport;
    comm *cm;
    train_config c;
    model_shape s;
    model_tensors *p;    // the model the tables are bound into
    model_tensors *store;// where this rank's rows live: P, or (sharded) its rows alone
    model_shape own;     // the shape of STORE's tables: S, or (sharded) n_items = its rows
    int64_t first, stride;  // STORE's row k is item first + k·stride
    int64_t bound_rows;  // the rows of the tables bound into P where not whole: 0, or (sharded) the step table's
    backend *b;
    arena mem;           // where the tables and their Adagrad state are carved
    table_optim optim;
    backend_device device;
    int sparse, max_rows, n_tables;
    int one_copy;        // one copy for the machine: rank 0 writes it outside the step
    void (*sync)(tables *tb, float *header, int M);
    exchange ex;         // the all-reduce of the step's rows (or whole tables)
    int have_ex;
    slots sl;            // node: the gradients read in place
    int have_slots;
    exchange_stats none; // (one rank: nothing exchanged)
    void *mode_state;    // the mode's own (sharded: tables_sharded.c)
};

extern const tables_ops tables_replicated_ops, tables_node_ops, tables_sharded_ops;

// The row gradients of this rank's step, per table.
void tables_own_rows(const tables *tb, const row_grads **g);
// A step's rows per rank and their widths, per table (exchange_init's and slots_init's).
void tables_step_rows(const tables *tb, int *widths, int *caps);
// The module's tensors in checkpoints, as every checkpoint so far names them (params/Wy,
// ..., optim/acc_Wy, ..., optim/mom_Wy, ...), with this rank's rows of each.
typedef struct {
    const char *name[3 * N_TABLES];
    float *data[3 * N_TABLES];
    size_t n[3 * N_TABLES];
    int count;
} tensor_list;
void tables_list_tensors(const tables *tb, tensor_list *l);
// The module's tensors (this rank's rows, tables_rows_here) into F or from F (NULL, or
// what is wrong); a part file of a checkpoint, read by this rank (tables_parts.c).
int tables_write_tensors(const tables *tb, hid_t f);
const char *tables_read_tensors(tables *tb, hid_t f);
const char *tables_read_part(tables *tb, hid_t f);
int tables_parts_save(tables *tb, const char *path);
// The step exchange over the transport, for this model's rows (MEM: exchange_init's).
void tables_exchange_init(tables *tb, const exchange_mem *mem);

#endif
