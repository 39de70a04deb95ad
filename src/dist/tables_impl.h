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
} tables_ops;

struct tables {
    const tables_ops *ops;
    tables_mode mode;
    tables_transport transport;
    comm *cm;
    train_config c;
    model_shape s;
    model_tensors *p;    // the model the tables are bound into
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
};

extern const tables_ops tables_replicated_ops, tables_node_ops;

// The row gradients of this rank's step, per table.
void tables_own_rows(const tables *tb, const row_grads **g);
// A step's rows per rank and their widths, per table (exchange_init's and slots_init's).
void tables_step_rows(const tables *tb, int *widths, int *caps);
// The step exchange over the transport, for this model's rows (MEM: exchange_init's).
void tables_exchange_init(tables *tb, const exchange_mem *mem);

#endif
