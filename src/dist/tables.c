// The table module's mode-free part: choosing the mode and the transport once, the
// tables' memory and initial values, checkpoints and checksums. Each mode's step is in
// tables_replicated.c, tables_node.c or tables_sharded.c (whose checkpoint parts are
// tables_parts.c's).
#include "dist/tables_impl.h"

#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/tensor_io.h"
#include "util/check.h"

const char *tables_mode_name(tables_mode m) {
    static const char *const names[] = {"replicated", "node", "sharded"};
    return names[m];
}

const char *tables_transport_name(tables_transport t) {
    static const char *const names[] = {"none", "shared-memory", "mpi", "nccl"};
    return names[t];
}

int tables_mode_parse(const char *name, tables_mode *m) {
    if (strcmp(name, "replicated") == 0) *m = TABLES_REPLICATED;
    else if (strcmp(name, "node") == 0) *m = TABLES_NODE;
    else if (strcmp(name, "sharded") == 0) *m = TABLES_SHARDED;
    else return 0;
    return 1;
}

// The mode asked for: --item-tables, else GRUREC_SHARED_MODEL=0 (replicated), else the
// default (-1): node where it can be had.
static int requested_mode(const char *flag) {
    tables_mode m;
    if (flag && !tables_mode_parse(flag, &m)) usage_fail("--item-tables is replicated, node or sharded, not '%s'", flag);
    if (flag) return (int)m;
    const char *env = getenv("GRUREC_SHARED_MODEL");
    return env && strcmp(env, "0") == 0 ? TABLES_REPLICATED : -1;
}

// Node mode needs CPU ranks that share this machine's memory (comm_shared_memory).
static tables_mode resolve_mode(comm *cm, const tables_options *o) {
    const int want = requested_mode(o->mode);
    comm_check_same_u64(cm, (uint64_t)(int64_t)want, "the item tables' mode (--item-tables, GRUREC_SHARED_MODEL)");
    const int P = comm_size(cm);
    const int node_ok = P > 1 && o->device == BACKEND_CPU && comm_shared_memory(cm);
    if (want == TABLES_NODE && !node_ok && P > 1)  // (one rank: one copy either way)
        input_fail_all("--item-tables", 0, "node needs CPU ranks that share one machine's memory (these run %s; "
                       "GRUREC_COMM_SHM=0 turns the sharing off): use --item-tables replicated",
                       o->device == BACKEND_CPU ? "on several machines, or without shared memory" : "on GPUs");
    if (want == TABLES_SHARDED) return TABLES_SHARDED;
    return want == TABLES_REPLICATED || !node_ok ? TABLES_REPLICATED : TABLES_NODE;
}

// Whether this rank writes the tables outside the step (initial values, checkpoints read):
// every rank its copy, or rank 0 the one copy.
static int writes_tables(const tables *tb) { return !tb->one_copy || comm_rank(tb->cm) == 0; }

// The tables as created (from the seed), where this rank writes them.
static void init_tables(tables *tb) {
    if (writes_tables(tb)) model_init_table_rows(tb->store, &tb->s, tb->c.seed, tb->first, tb->stride, tb->own.n_items);
}

tables *tables_create(comm *cm, const train_config *c, const model_shape *s, const tables_options *o,
                      model_tensors *p) {
    tables *tb = xcalloc(1, sizeof *tb);
    tb->cm = cm;
    tb->c = *c;
    tb->s = *s;
    tb->p = p;
    tb->sparse = o->sparse;
    tb->device = o->device;
    tb->max_rows = o->max_rows;
    tb->n_tables = s->emb_width ? 3 : 2;
    const tables_mode m = resolve_mode(cm, o);
    tb->ops = m == TABLES_NODE ? &tables_node_ops : m == TABLES_SHARDED ? &tables_sharded_ops : &tables_replicated_ops;
    if (!tb->ops->open(tb)) {  // (the same on every rank; the comm said why)
        tb->ops = &tables_replicated_ops;
        CHECK(tb->ops->open(tb), "replicated tables cannot be opened");
    }
    if (tb->ops->carve) {
        tb->ops->carve(tb);
    } else {  // one whole copy, bound into the model
        model_tables_alloc(p, s, &tb->mem);
        table_optim_alloc(&tb->optim, s, c->momentum > 0, &tb->mem);
        tb->store = p;
        tb->own = *s;
        tb->first = 0, tb->stride = 1;
    }
    init_tables(tb);
    return tb;
}

const table_optim *tables_optim(const tables *tb) { return &tb->optim; }

void tables_attach(tables *tb, backend *b) {
    tb->b = b;
    tb->ops->attach(tb);
    // (after the attach, whose exchange settled whether the shared segment serves)
    const int P = comm_size(tb->cm);
    // (sharded tables move their rows through the host's comm, on GPUs too: tables_sharded.c)
    tb->transport = P == 1 ? TRANSPORT_NONE
                  : tb->device == BACKEND_CUDA && tb->mode != TABLES_SHARDED ? TRANSPORT_NCCL
                  : comm_shared_memory(tb->cm) ? TRANSPORT_SHM : TRANSPORT_MPI;
}

void tables_ready(tables *tb) { tb->ops->ready(tb); }

void tables_fetch(tables *tb, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                  const int32_t **bx, const int32_t **by, const int32_t **bneg) {
    if (tb->ops->fetch) {
        tb->ops->fetch(tb, M, x, y, neg, K, bx, by, bneg);
        return;
    }
    *bx = x, *by = y, *bneg = neg;  // (whole tables: the items are their rows)
}
void tables_fetch_inputs(tables *tb, int M, const int32_t *x, const int32_t **bx) {
    const int32_t *none_y, *none_neg;
    if (tb->ops->fetch) tb->ops->fetch(tb, M, x, NULL, NULL, 0, bx, &none_y, &none_neg);
    else *bx = x;
}

void tables_sync(tables *tb, float *header, int M) { tb->sync(tb, header, M); }

void tables_free(tables *tb) {
    if (!tb) return;
    tb->ops->release(tb);
    table_optim_release(&tb->optim, &tb->mem);
    model_tables_release(tb->p, &tb->mem);
    free(tb);
}

tables_mode tables_mode_of(const tables *tb) { return tb->mode; }
tables_transport tables_transport_of(const tables *tb) { return tb->transport; }
const char *tables_summary(const tables *tb) { return tb->ops->summary(tb); }

// The statistics of whichever exchange the mode set up.
const exchange_stats *tables_stats(const tables *tb) {
    return tb->have_slots ? &tb->sl.st : tb->have_ex ? &tb->ex.st : &tb->none;
}
void tables_stats_reset(tables *tb) {
    exchange_stats_reset(tb->have_slots ? &tb->sl.st : tb->have_ex ? &tb->ex.st : &tb->none);
}

uint64_t tables_params_checksum(const tables *tb) {
    if (tb->mode != TABLES_SHARDED) return params_checksum(&tb->s, tb->p);
    model_shape dense_only = tb->s;  // (sharded: the dense weights are what the ranks share)
    dense_only.n_items = 0;
    const model_tensors d = {tb->p->dense, NULL, NULL, NULL};
    return params_checksum(&dense_only, &d);
}

size_t tables_bytes_here(const tables *tb) {
    size_t n = 0;
    for (int t = 0; t < N_TABLES; t++)
        n += model_table_size(&tb->own, t) * (1 + (tb->optim.acc[t] != NULL) + (tb->optim.mom[t] != NULL));
    return n * sizeof(float);
}

void tables_save_model(tables *tb, const char *path, const train_config *c, const char *fingerprint,
                       const char *data_dir, char *const *item_ids) {
    if (tb->ops->save_model) tb->ops->save_model(tb, path, c, fingerprint, data_dir, item_ids);
    else if (comm_rank(tb->cm) == 0) model_save(path, &tb->s, tb->p, c, fingerprint, data_dir, item_ids);
}

void tables_rows_here(const tables *tb, const model_tensors **t, int64_t *first, int64_t *stride, int64_t *n) {
    *t = tb->store;
    *first = tb->first, *stride = tb->stride, *n = tb->own.n_items;
}

int64_t tables_bound_rows(const tables *tb) { return tb->bound_rows; }

int tables_save_parts(tables *tb, const char *path) { return tb->ops->save_parts ? tb->ops->save_parts(tb, path) : 0; }
int tables_in_parts(const tables *tb) { return tb->ops->save_parts != NULL; }

void tables_settle(tables *tb) { tb->ops->settle(tb); }
int tables_one_copy(const tables *tb) { return tb->one_copy; }

void tables_list_tensors(const tables *tb, tensor_list *l) {
    static const char *const names[3][N_TABLES] = {{"params/Wy", "params/by", "params/E"},
                                                   {"optim/acc_Wy", "optim/acc_by", "optim/acc_E"},
                                                   {"optim/mom_Wy", "optim/mom_by", "optim/mom_E"}};
    float *const params[N_TABLES] = {tb->store->Wy, tb->store->by, tb->store->E};
    memset(l, 0, sizeof *l);
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < N_TABLES; t++) {
            float *d = k == 0 ? params[t] : k == 1 ? tb->optim.acc[t] : tb->optim.mom[t];
            if (!d) continue;
            l->name[l->count] = names[k][t];
            l->data[l->count] = d;
            l->n[l->count++] = model_table_size(&tb->own, t);
        }
}

int tables_save(const tables *tb, hid_t f) {
    if (tb->ops->save_parts) return 0;  // (in the parts, tables_save_parts)
    return tables_write_tensors(tb, f);
}

// Reads the module's tensors from F: NULL, or what is wrong.
const char *tables_read_tensors(tables *tb, hid_t f) {
    static char bad[256];
    tensor_list l;
    tables_list_tensors(tb, &l);
    for (int k = 0; k < l.count; k++) {
        const char *why = tensor_read_f32(f, l.name[k], l.data[k], l.n[k]);
        if (why) {
            snprintf(bad, sizeof bad, "%s %s", l.name[k], why);
            return bad;
        }
    }
    return NULL;
}

const char *tables_load(tables *tb, hid_t f) {
    return tb->ops->save_parts ? tables_read_part(tb, f) : tables_read_tensors(tb, f);
}

int tables_write_tensors(const tables *tb, hid_t f) {
    tensor_list l;
    tables_list_tensors(tb, &l);
    for (int k = 0; k < l.count; k++)
        if (tensor_write_f32(f, l.name[k], l.data[k], l.n[k]) < 0) return -1;
    return 0;
}

void tables_reset(tables *tb) {
    if (!writes_tables(tb)) return;
    init_tables(tb);
    for (int t = 0; t < N_TABLES; t++) {
        const size_t n = model_table_size(&tb->own, t) * sizeof(float);
        if (tb->optim.acc[t]) memset(tb->optim.acc[t], 0, n);
        if (tb->optim.mom[t]) memset(tb->optim.mom[t], 0, n);
    }
}

void tables_own_rows(const tables *tb, const row_grads **g) {
    const backend_grads own = backend_gradients(tb->b);
    g[TABLE_WY] = own.Wy;
    g[TABLE_BY] = own.by;
    g[TABLE_E] = own.E;
}

void tables_step_rows(const tables *tb, int *widths, int *caps) {
    const model_shape *s = &tb->s;
    const int B = tb->max_rows, K = tb->c.n_sample;
    // Wy: the columns (targets, negatives) and, with the shared embedding, the inputs
    const int w[N_TABLES] = {s->hid[s->n_layers - 1], 1, s->emb_width}, n[N_TABLES] = {B + K + B, B + K, B};
    memcpy(widths, w, sizeof w);
    memcpy(caps, n, sizeof n);
}

void tables_exchange_init(tables *tb, const exchange_mem *mem) {
    int widths[N_TABLES], caps[N_TABLES];
    tables_step_rows(tb, widths, caps);
    exchange_init(&tb->ex, tb->cm, tb->sparse, tb->s.n_dense, tb->s.n_items, widths, caps, tb->n_tables, mem);
    tb->have_ex = 1;
}
