// Replicated item tables: every rank keeps a copy and its Adagrad state on its own heap
// (or its GPU). A step all-reduces the rows the ranks touched (or the whole tables,
// --sparse-exchange off) over the transport, and every rank applies the same update, so
// the copies stay bitwise equal. One rank: its own gradients, no exchange.
#include "dist/tables_impl.h"

static int rep_open(tables *tb) {
    tb->mode = TABLES_REPLICATED;
    tb->mem = arena_heap();
    tb->one_copy = 0;
    return 1;
}

static void rep_sync_alone(tables *tb, float *header, int M) {
    (void)header;  // (one rank: the sums are its own values)
    backend_apply_update(tb->b, M, NULL, NULL, NULL);
}

static void rep_sync(tables *tb, float *header, int M) {
    const row_grads *mine[N_TABLES], *sums[N_TABLES] = {NULL, NULL, NULL};
    tables_own_rows(tb, mine);
    exchange_step(&tb->ex, header, backend_dense_grads(tb->b), mine, sums);
    backend_apply_update(tb->b, M, sums[TABLE_WY], sums[TABLE_BY], sums[TABLE_E]);
}

static void rep_attach(tables *tb) {
    tb->sync = rep_sync_alone;
    if (comm_size(tb->cm) == 1) return;
    tables_exchange_init(tb, backend_exchange_mem(tb->b, tb->cm));  // (host and MPI, or the GPU's and NCCL)
    tb->sync = rep_sync;
}

static void rep_nothing(tables *tb) { (void)tb; }

static void rep_release(tables *tb) {
    if (tb->have_ex) exchange_free(&tb->ex);
}

static const char *rep_summary(const tables *tb) {
    switch (tb->transport) {
    case TRANSPORT_SHM: return "item tables replicated, gradients summed through shared memory";
    case TRANSPORT_MPI: return "item tables replicated, gradients summed by MPI messages";
    case TRANSPORT_NCCL: return "item tables replicated, gradients summed by NCCL";
    default: return "item tables replicated";
    }
}

const tables_ops tables_replicated_ops = {
    .open = rep_open,
    .attach = rep_attach,
    .ready = rep_nothing,
    .settle = rep_nothing,
    .release = rep_release,
    .summary = rep_summary,
};
