// Item tables once per machine (docs/distributed.md): CPU ranks that share a machine keep
// the tables and their Adagrad state in one segment that every rank maps; rank 0 alone
// writes them outside the step. A step's update is split: rank r of P applies the summed
// gradient to rows r·U/P to (r+1)·U/P − 1 of each union only, and a barrier makes every
// part visible before anyone's next forward pass. The sums are read in place from the
// ranks' slots (dist/slots.h: sparse exchange), or cut from the all-reduced unions (or
// whole tables: --sparse-exchange off, or where the slots' segment cannot be had).
#include "dist/tables_impl.h"

#include "util/check.h"

static int node_open(tables *tb) {
    const size_t bytes = model_tables_bytes(&tb->s, tb->c.momentum > 0);
    void *seg = comm_node_segment(tb->cm, bytes);  // (collective; NULL everywhere, with a line, if not)
    if (!seg) return 0;
    tb->mode = TABLES_NODE;
    tb->mem = arena_region(seg, bytes);
    tb->one_copy = 1;
    return 1;
}

// The gradients read in place: one barrier in slots_step, this rank's range of the dense
// values and part of the rows updated with sums made inside the Adagrad loops, the
// ranges traded around the second barrier.
static void node_sync_in_place(tables *tb, float *header, int M) {
    const row_grads *mine[N_TABLES], *part[N_TABLES] = {NULL, NULL, NULL};
    tables_own_rows(tb, mine);
    slots_step(&tb->sl, header, mine, part);
    backend_update_dense(tb->b, slots_dense_parts(&tb->sl), comm_size(tb->cm), slots_dense_lo(&tb->sl),
                         slots_dense_hi(&tb->sl));
    backend_update_rows(tb->b, part);
    backend_end_step(tb->b, M);
    slots_publish_dense(&tb->sl, tb->p->dense);
    comm_node_barrier(tb->cm);  // every part written before the next step reads it, every slot read before it is rewritten
    slots_fetch_dense(&tb->sl, tb->p->dense);
}

// The sums all-reduced: every rank updates the dense values whole and its part of the rows.
static void node_sync_allreduce(tables *tb, float *header, int M) {
    const int P = comm_size(tb->cm), me = comm_rank(tb->cm);
    const row_grads *mine[N_TABLES], *sums[N_TABLES] = {NULL, NULL, NULL}, *parts[N_TABLES] = {NULL, NULL, NULL};
    tables_own_rows(tb, mine);
    exchange_step(&tb->ex, header, backend_dense_grads(tb->b), mine, sums);
    row_grads part[N_TABLES];
    for (int t = 0; t < tb->n_tables; t++) {
        part[t] = row_grads_part(sums[t], me, P);
        parts[t] = &part[t];
    }
    backend_update_dense(tb->b, NULL, 0, 0, tb->s.n_dense);
    backend_update_rows(tb->b, parts);
    backend_end_step(tb->b, M);
    comm_node_barrier(tb->cm);  // every part written before the next step reads it
}

static void node_attach(tables *tb) {
    int widths[N_TABLES], caps[N_TABLES];
    tables_step_rows(tb, widths, caps);
    if (tb->sparse && slots_init(&tb->sl, tb->cm, tb->s.n_dense, tb->s.n_items, widths, caps, tb->n_tables)) {
        tb->have_slots = 1;
        float *rows[N_TABLES];
        slots_rows(&tb->sl, rows);
        backend_grad_buffers(tb->b, slots_dense(&tb->sl), rows);
        tb->sync = node_sync_in_place;
    } else {
        tables_exchange_init(tb, NULL);
        tb->sync = node_sync_allreduce;
    }
}

static void node_ready(tables *tb) { comm_node_barrier(tb->cm); }  // (rank 0's writes, seen by all)

// A rank's dense optimizer state is current in its range only, where the update is split.
static void node_settle(tables *tb) {
    if (!tb->have_slots) return;
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(tb->b, oa, on);
    for (int k = 0; k < 2; k++)  // acc_dense, mom_dense
        if (oa[k]) slots_gather_dense(&tb->sl, oa[k]);
}

static void node_release(tables *tb) {
    if (tb->have_slots) slots_free(&tb->sl);
    if (tb->have_ex) exchange_free(&tb->ex);
}

static const char *node_summary(const tables *tb) {
    (void)tb;
    return "item tables node, gradients summed through shared memory, the tables kept there once, each rank "
           "updating its part";
}

const tables_ops tables_node_ops = {
    .open = node_open,
    .attach = node_attach,
    .ready = node_ready,
    .settle = node_settle,
    .release = node_release,
    .summary = node_summary,
};
