// Sharded item tables (docs/distributed.md): item i's rows of every table, and their
// Adagrad state, live on rank i mod P alone, at row i / P, so a rank holds 1/P of them.
// A step (tables_fetch, then tables_sync):
//  - fetch: the rows the step needs (the lanes' targets and the shared negatives: Wy and
//    by; the inputs: E, or Wy with the shared embedding) are asked of their owners and
//    copied into a small step table bound into the model as Wy, by, E; the backend is
//    given that table's rows as ids (and their items, for logq);
//  - sync: the header and dense gradients are all-reduced as ever; every fetched row's
//    gradient goes back to its owner in the layout it came in, and the owner sums the
//    contributions in rank order (from +0, as the all-reduce of the replicated mode adds
//    them: the same bits) and applies Adagrad to its rows.
// The requests carry their counts (comm_alltoallv_learn); the replies and gradients, whose
// sizes both sides know, are one comm_alltoallv each, under the comm's deadline.
#include "dist/tables_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensor_io.h"
#include "model/model_save.h"

#include "util/check.h"
#include "util/clock.h"

enum { NEED_COLS = 1, NEED_INPUT = 2 };

typedef struct {
    int P, me, H, ew;
    int shared_input;      // the inputs' rows are Wy's (shared embedding)
    model_tensors shard;   // this rank's rows
    // the step table: its rows' items and what each is needed for
    int32_t *slot_of;      // [n_items]: the step-table row of an item, −1 (reset each step)
    int32_t *items;        // [cap]
    unsigned char *need;   // [cap]
    int n_rows, cap;
    int32_t *bx, *by, *bneg;  // the step's ids as step-table rows
    // asked of the owners: (item, need) pairs grouped by owner, and the row of each
    int64_t *ask_n, *asked_n;  // [P] rows this rank asks of each rank, and each rank of this one
    int64_t *asked_at;         // [P + 1] where each rank's pairs start in ASKED
    int32_t *ask, *ask_row;
    int64_t *at;               // [P + 1] where each owner's rows start
    int32_t *asked;            // the pairs the ranks ask of this one, in rank order (room: P·cap)
    size_t *send_b, *recv_b, *reply_b, *back_b;  // [P] bytes (fetch reply: owners → askers)
    float *sendbuf, *gradbuf;  // the fetch's replies; the gradients sent back (sh_sync)
    size_t send_cap, grad_cap;
    // the owner's sums of this step's rows, per table (rows: local)
    row_grads sum[N_TABLES];
    float *fused;              // header | dense gradients
    // the backend's own sum of the dense gradients where they live in its memory (a GPU's:
    // NCCL, in place; NULL: the host's, with the header)
    const exchange_mem *xm;
    float *zeros;              // [max(H, E)]: a row the step did not touch adds +0, as put's
    const row_grads *mine[N_TABLES];  // this step's gradient rows, in host memory (backend_host_gradients)
} shard_state;

static shard_state *st_of(const tables *tb) { return tb->mode_state; }

// Floats of a row's payload (fetched values or returned gradients): [Wy][by][E] as needed.
static int w_wy(const shard_state *z, int need) {
    return (need & NEED_COLS) || ((need & NEED_INPUT) && z->shared_input) ? z->H : 0;
}
static int w_by(int need) { return need & NEED_COLS ? 1 : 0; }
static int w_e(const shard_state *z, int need) { return (need & NEED_INPUT) && !z->shared_input ? z->ew : 0; }
static int width_of(const shard_state *z, int need) { return w_wy(z, need) + w_by(need) + w_e(z, need); }

static void grow(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return;
    *cap = n + n / 2;
    free(*buf);
    *buf = xmalloc(*cap * sizeof **buf);
}

static int sh_open(tables *tb) {
    tb->mode = TABLES_SHARDED;
    tb->mem = arena_heap();
    tb->one_copy = 0;
    return 1;
}

// This rank's rows, their state, and a step table of as many rows as a step can need.
static void sh_carve(tables *tb) {
    shard_state *z = xcalloc(1, sizeof *z);
    tb->mode_state = z;
    const model_shape *s = &tb->s;
    z->P = comm_size(tb->cm), z->me = comm_rank(tb->cm);
    if (s->n_items < z->P)
        input_fail_all("--item-tables", 0, "sharded needs at least one item per rank (%lld items, %d ranks)",
                       (long long)s->n_items, z->P);
    z->H = s->hid[s->n_layers - 1], z->ew = s->emb_width, z->shared_input = s->emb_width == 0;
    tb->own = *s;
    tb->own.n_items = (s->n_items - z->me + z->P - 1) / z->P;
    tb->first = z->me, tb->stride = z->P;
    model_tables_alloc(&z->shard, &tb->own, &tb->mem);
    table_optim_alloc(&tb->optim, &tb->own, tb->c.momentum > 0, &tb->mem);
    tb->store = &z->shard;
    // the step table: targets, negatives and inputs, each at most once; or an evaluation
    // step's inputs (tables_fetch_inputs)
    z->cap = 2 * tb->max_rows + tb->c.n_sample;
    if (z->cap < tb->c.eval_batch) z->cap = tb->c.eval_batch;
    model_shape step = *s;
    step.n_items = z->cap;
    model_tables_alloc(tb->p, &step, &tb->mem);
    tb->bound_rows = z->cap;  // (a backend that copies the tables, CUDA's, copies these rows)
    z->slot_of = xmalloc((size_t)s->n_items * sizeof *z->slot_of);
    memset(z->slot_of, 0xff, (size_t)s->n_items * sizeof *z->slot_of);
    z->items = xcalloc((size_t)z->cap, sizeof *z->items);
    z->need = xcalloc((size_t)z->cap, 1);
    z->bx = xmalloc((size_t)(z->cap + 1) * sizeof *z->bx);
    z->by = xmalloc((size_t)(tb->max_rows + 1) * sizeof *z->by);
    z->bneg = xmalloc((size_t)(tb->c.n_sample + 1) * sizeof *z->bneg);
    const size_t P = (size_t)z->P;
    z->ask_n = xcalloc(P, sizeof *z->ask_n), z->asked_n = xcalloc(P, sizeof *z->asked_n);
    z->asked_at = xcalloc(P + 1, sizeof *z->asked_at);
    z->at = xcalloc(P + 1, sizeof *z->at);
    z->ask = xmalloc(2 * (size_t)z->cap * sizeof *z->ask), z->ask_row = xmalloc((size_t)z->cap * sizeof *z->ask_row);
    z->asked = xmalloc(2 * P * (size_t)z->cap * sizeof *z->asked);  // (no rank asks more than cap rows)
    z->send_b = xcalloc(P, sizeof(size_t)), z->recv_b = xcalloc(P, sizeof(size_t));
    z->reply_b = xcalloc(P, sizeof(size_t)), z->back_b = xcalloc(P, sizeof(size_t));
    // an owner's union of a step's rows: at most every rank's step table, at most its rows
    const int64_t most = (int64_t)z->cap * z->P < tb->own.n_items ? (int64_t)z->cap * z->P : tb->own.n_items;
    const int w[N_TABLES] = {z->H, 1, z->ew};
    for (int t = 0; t < tb->n_tables; t++) row_grads_init(&z->sum[t], tb->own.n_items, w[t], (int)most);
    z->fused = xmalloc((HDR_N + s->n_dense) * sizeof *z->fused);
    z->zeros = xcalloc((size_t)(z->H > z->ew ? z->H : z->ew), sizeof *z->zeros);
}


// The step-table row of ITEM, added for NEED.
static int32_t step_row(shard_state *z, int32_t item, int need) {
    int32_t r = z->slot_of[item];
    if (r < 0) {
        r = z->slot_of[item] = z->n_rows++;
        z->items[r] = item;
        z->need[r] = 0;
    }
    z->need[r] |= (unsigned char)need;
    return r;
}

static uint64_t sent_bytes(const shard_state *z, const size_t *b) {
    uint64_t n = 0;
    for (int q = 0; q < z->P; q++) n += q == z->me ? 0 : b[q];
    return n;
}

// Owner Q's reply (its rows' values in the order asked) into the step table; this rank's
// own rows straight from its shard.
static void take_rows(void *arg, int q, const void *bytes, size_t n) {
    tables *tb = arg;
    shard_state *z = st_of(tb);
    const model_tensors *o = &z->shard;
    model_tensors *p = tb->p;
    const float *r = bytes;
    for (int64_t b = z->at[q] - z->ask_n[q]; b < z->at[q]; b++) {
        const int k = z->ask_row[b], need = z->need[k];
        const int ww = w_wy(z, need), wb = w_by(need), we = w_e(z, need);
        if (q == z->me) {
            const size_t row = (size_t)(z->items[k] / z->P);
            if (ww) memcpy(p->Wy + (size_t)k * ww, o->Wy + row * ww, (size_t)ww * sizeof *r);
            if (wb) p->by[k] = o->by[row];
            if (we) memcpy(p->E + (size_t)k * we, o->E + row * we, (size_t)we * sizeof *r);
            continue;
        }
        if (ww) memcpy(p->Wy + (size_t)k * ww, r, (size_t)ww * sizeof *r), r += ww;
        if (wb) p->by[k] = *r++;
        if (we) memcpy(p->E + (size_t)k * we, r, (size_t)we * sizeof *r), r += we;
    }
    CHECK((size_t)(r - (const float *)bytes) * sizeof *r == n, "rank %d replied %zu bytes to rank %d", q, n, z->me);
}

static void sh_fetch(tables *tb, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                     const int32_t **bx, const int32_t **by, const int32_t **bneg) {
    shard_state *z = st_of(tb);
    const double t0 = now_s();
    for (int k = 0; k < z->n_rows; k++) z->slot_of[z->items[k]] = -1;  // (last step's rows)
    z->n_rows = 0;
    for (int i = 0; y && i < M; i++) z->by[i] = step_row(z, y[i], NEED_COLS);  // (none: evaluation)
    for (int j = 0; j < K; j++) z->bneg[j] = step_row(z, neg[j], NEED_COLS);
    for (int i = 0; i < M; i++) z->bx[i] = step_row(z, x[i], NEED_INPUT);
    *bx = z->bx, *by = z->by, *bneg = z->bneg;
    // the rows grouped by owner (counting sort, step-table order within an owner)
    const int P = z->P;
    memset(z->ask_n, 0, (size_t)P * sizeof *z->ask_n);
    for (int k = 0; k < z->n_rows; k++) z->ask_n[z->items[k] % P]++;
    int64_t *at = z->at;
    at[0] = 0;
    for (int q = 0; q < P; q++) at[q + 1] = at[q] + z->ask_n[q];
    for (int k = 0; k < z->n_rows; k++) {
        const int64_t a = at[z->items[k] % P]++;
        z->ask[2 * a] = z->items[k], z->ask[2 * a + 1] = z->need[k], z->ask_row[a] = k;
    }
    for (int q = 0; q < P; q++) z->send_b[q] = (size_t)z->ask_n[q] * 2 * sizeof(int32_t);
    comm_alltoallv_learn(tb->cm, z->ask, z->send_b, z->asked, 2 * (size_t)P * (size_t)z->cap * sizeof *z->asked,
                         z->recv_b);
    for (int q = 0; q < P; q++) {
        CHECK(z->recv_b[q] % (2 * sizeof(int32_t)) == 0, "rank %d asked rank %d for %zu bytes", q, z->me, z->recv_b[q]);
        z->asked_n[q] = (int64_t)(z->recv_b[q] / (2 * sizeof(int32_t)));
        z->asked_at[q + 1] = z->asked_at[q] + z->asked_n[q];
    }
    const size_t n_asked = (size_t)z->asked_at[P];
    tb->none.bytes_sparse += sent_bytes(z, z->send_b) + (uint64_t)(P - 1) * sizeof(int64_t);
    // the owner's reply: each asked row's values, in the order asked
    size_t n_send = 0;
    for (size_t a = 0; a < n_asked; a++) n_send += (size_t)width_of(z, z->asked[2 * a + 1]);
    grow(&z->sendbuf, &z->send_cap, n_send + 1);
    const model_tensors *o = &z->shard;
    float *w = z->sendbuf;
    size_t a = 0;
    for (int q = 0; q < P; q++) {
        const float *start = w;
        if (q == z->me) {  // (this rank's own rows go straight from its shard to the step table)
            a += (size_t)z->asked_n[q];
            z->reply_b[q] = 0;
            continue;
        }
        for (int64_t k = 0; k < z->asked_n[q]; k++, a++) {
            const int32_t item = z->asked[2 * a];
            const int need = z->asked[2 * a + 1];
            CHECK(item % P == z->me && need > 0, "rank %d asked rank %d for item %d", q, z->me, item);
            const size_t r = (size_t)(item / P);
            const int ww = w_wy(z, need), wb = w_by(need), we = w_e(z, need);
            if (ww) memcpy(w, o->Wy + r * ww, (size_t)ww * sizeof *w), w += ww;
            if (wb) *w++ = o->by[r];
            if (we) memcpy(w, o->E + r * we, (size_t)we * sizeof *w), w += we;
        }
        z->reply_b[q] = (size_t)(w - start) * sizeof *w;
    }
    // the rows' bytes from each owner, which are the gradients' bytes back to it (sh_sync)
    size_t n_back = 0;
    for (int q = 0; q < P; q++) z->back_b[q] = 0;
    for (int64_t k = 0; k < z->n_rows; k++) z->back_b[z->items[k] % P] += (size_t)width_of(z, z->need[k]) * sizeof(float);
    z->back_b[z->me] = 0;
    for (int q = 0; q < P; q++) n_back += z->back_b[q] / sizeof(float);
    grow(&z->gradbuf, &z->grad_cap, n_back + 1);
    comm_alltoallv_take(tb->cm, z->sendbuf, z->reply_b, z->back_b, take_rows, tb);
    tb->none.bytes_sparse += sent_bytes(z, z->reply_b);
    backend_put_table_rows(tb->b, z->n_rows);  // (a GPU's copy of the step table; the CPU reads it)
    tb->none.seconds += now_s() - t0;
}

// The gradient row of step-table row K in table G (NULL where the step did not touch it).
static const float *grad_row(const row_grads *g, int k) {
    if (!g || g->slot[k] < 0) return NULL;
    return g->grad + (size_t)g->slot[k] * g->width;
}

static void put(float **w, const float *src, int n) {
    if (src) memcpy(*w, src, (size_t)n * sizeof **w);
    else memset(*w, 0, (size_t)n * sizeof **w);
    *w += n;
}

// Adds N floats of SRC to the owner's sum of ITEM's row in G.
static void add_to(row_grads *g, int64_t row, const float *src, int n) {
    float *d = row_grads_row(g, (int32_t)row);  // (zeroed when new: sums start from +0)
    for (int i = 0; i < n; i++) d[i] += src[i];
}

// An own row's gradient in G, or +0s where the step did not touch it (what put sends).
static const float *own_or_zeros(const shard_state *z, const row_grads *g, int k) {
    const float *src = grad_row(g, k);
    return src ? src : z->zeros;
}

// Rank Q's gradients of this owner's rows (in the order Q asked) added to the sums; this
// rank's own from its gradient rows. Called in rank order: the sums' order.
static void take_grads(void *arg, int q, const void *bytes, size_t n) {
    tables *tb = arg;
    shard_state *z = st_of(tb);
    const int P = z->P;
    if (q == z->me) {
        for (int64_t b = z->at[q] - z->ask_n[q]; b < z->at[q]; b++) {
            const int k = z->ask_row[b], need = z->need[k];
            const int64_t row = z->items[k] / P;
            const int ww = w_wy(z, need), wb = w_by(need), we = w_e(z, need);
            if (ww) add_to(&z->sum[TABLE_WY], row, own_or_zeros(z, z->mine[TABLE_WY], k), ww);
            if (wb) add_to(&z->sum[TABLE_BY], row, own_or_zeros(z, z->mine[TABLE_BY], k), 1);
            if (we) add_to(&z->sum[TABLE_E], row, own_or_zeros(z, z->mine[TABLE_E], k), we);
        }
        return;
    }
    size_t a = (size_t)z->asked_at[q];
    const float *r = bytes;
    for (int64_t k = 0; k < z->asked_n[q]; k++, a++) {
        const int64_t row = z->asked[2 * a] / P;
        const int need = z->asked[2 * a + 1];
        const int ww = w_wy(z, need), wb = w_by(need), we = w_e(z, need);
        if (ww) add_to(&z->sum[TABLE_WY], row, r, ww), r += ww;
        if (wb) add_to(&z->sum[TABLE_BY], row, r, 1), r += 1;
        if (we) add_to(&z->sum[TABLE_E], row, r, we), r += we;
    }
    CHECK((size_t)(r - (const float *)bytes) * sizeof *r == n, "rank %d sent %zu gradient bytes to rank %d", q, n,
          z->me);
}

static void sh_sync(tables *tb, float *header, int M) {
    shard_state *z = st_of(tb);
    const double t0 = now_s();
    const int P = z->P;
    const size_t D = tb->s.n_dense;
    // The header and dense gradients summed over the ranks, as in the replicated mode: on
    // the host in one all-reduce; or, where the backend keeps them in its own memory (a
    // GPU), the dense in place there (NCCL, started here and waited for with the rows'
    // download) and the header on the host. One rank: nothing to sum.
    const double tw = now_s();
    if (z->xm) z->xm->allreduce(z->xm->ctx, tb->cm, backend_dense_grads(tb->b), D);
    // the step's row gradients where the host reads them (a GPU's brought down, one wait)
    const backend_grads g = backend_host_gradients(tb->b, P > 1 && !z->xm);
    z->mine[TABLE_WY] = g.Wy, z->mine[TABLE_BY] = g.by, z->mine[TABLE_E] = g.E;
    if (P > 1 && z->xm) {
        comm_allreduce_sum_f32(tb->cm, header, HDR_N);
    } else if (P > 1) {
        memcpy(z->fused, header, HDR_N * sizeof *header);
        memcpy(z->fused + HDR_N, g.dense, D * sizeof *g.dense);
        comm_allreduce_sum_f32(tb->cm, z->fused, HDR_N + D);
        memcpy(header, z->fused, HDR_N * sizeof *header);
        memcpy(backend_dense_grads(tb->b), z->fused + HDR_N, D * sizeof *z->fused);  // (host memory: no xm)
    }
    tb->none.wait_seconds += now_s() - tw;
    if (P > 1) tb->none.bytes_dense += (uint64_t)(2.0 * (P - 1) / P * (double)(HDR_N + D) * sizeof(float));
    // every fetched row's gradient back to its owner, in the layout and order it came in
    float *w = z->gradbuf;  // (as large as the other owners' rows that came in)
    for (int64_t b = 0; b < z->n_rows; b++) {
        const int k = z->ask_row[b], need = z->need[k];
        if (z->items[k] % P == z->me) continue;  // (summed from the gradient rows below)
        const int ww = w_wy(z, need), wb = w_by(need), we = w_e(z, need);
        if (ww) put(&w, grad_row(z->mine[TABLE_WY], k), ww);
        if (wb) put(&w, grad_row(z->mine[TABLE_BY], k), 1);
        if (we) put(&w, grad_row(z->mine[TABLE_E], k), we);
    }
    comm_alltoallv_take(tb->cm, z->gradbuf, z->back_b, z->reply_b, take_grads, tb);
    tb->none.bytes_sparse += sent_bytes(z, z->back_b);
    const float lr = tb->c.learning_rate, mu = tb->c.momentum;
    float *params[N_TABLES] = {z->shard.Wy, z->shard.by, z->shard.E};
    for (int t = 0; t < tb->n_tables; t++) {
        adagrad_rows(params[t], tb->optim.acc[t], tb->optim.mom[t], &z->sum[t], lr, mu);
        if (t == TABLE_WY) tb->none.union_rows += z->sum[t].n;
        row_grads_clear(&z->sum[t]);
    }
    backend_update_dense(tb->b, NULL, 0, 0, D);
    backend_end_step(tb->b, M);
    tb->none.steps++;
    tb->none.seconds += now_s() - t0;
}

static void sh_attach(tables *tb) {
    shard_state *z = st_of(tb);
    backend_step_items(tb->b, z->items);
    // (collective: a GPU's NCCL set up on every rank; the CPU's gradients are host memory)
    if (z->P > 1) z->xm = backend_exchange_mem(tb->b, tb->cm);
    tb->sync = sh_sync;
}

static void sh_nothing(tables *tb) { (void)tb; }

// RUN/model.h5 with no rank holding a whole table: rank 0 gets every rank's rows in rounds
// of a few MB per rank (no message near 2 GiB). Round k brings rows LO.. of every rank,
// which are items LO·P.. in a row: rank 0 puts them in item order and appends them to
// each table's tensor. Every rank takes part in every round, even after rank 0's write
// failed (the failure is reported once the rounds are done).
static void sh_save_model(tables *tb, const char *path, const train_config *c, const char *fingerprint,
                          const char *data_dir, char *const *item_ids) {
    shard_state *z = st_of(tb);
    const model_shape *s = &tb->s;
    const int P = z->P, root = z->me == 0, T = tb->n_tables;
    const int wt = z->H + 1 + z->ew;  // a row of every table
    const int width[N_TABLES] = {z->H, 1, z->ew};
    const char *name[N_TABLES] = {"params/Wy", "params/by", "params/E"};
    hid_t f = root ? model_save_begin(path, s, tb->p->dense) : -1;
    tensor_stream w[N_TABLES];
    int err = 0;
    for (int t = 0; root && t < T; t++) {
        errno = 0;
        if (tensor_stream_open(&w[t], f, name[t], (size_t)s->n_items * width[t]) < 0 && !err) err = errno ? errno : EIO;
    }
    const int64_t most = (s->n_items + P - 1) / P, per = (4 << 20) / wt + 1;
    float *out = xmalloc((size_t)per * wt * sizeof *out);
    float *in = root ? xmalloc((size_t)per * wt * P * sizeof *in) : NULL;
    float *block = root ? xmalloc((size_t)per * P * (size_t)(z->H > z->ew ? z->H : z->ew) * sizeof *block) : NULL;
    size_t *sb = xcalloc((size_t)P, sizeof *sb), *rb = xcalloc((size_t)P, sizeof *rb);
    const float **part = xcalloc((size_t)P, sizeof *part);  // (rank 0: where each rank's rows came)
    for (int64_t lo = 0; lo < most; lo += per) {
        const int64_t n = lo >= tb->own.n_items ? 0 : (tb->own.n_items - lo < per ? tb->own.n_items - lo : per);
        for (int64_t k = 0; k < n; k++) {
            float *o = out + (size_t)k * wt;
            memcpy(o, z->shard.Wy + (size_t)(lo + k) * z->H, (size_t)z->H * sizeof *o);
            o[z->H] = z->shard.by[lo + k];
            if (z->ew) memcpy(o + z->H + 1, z->shard.E + (size_t)(lo + k) * z->ew, (size_t)z->ew * sizeof *o);
        }
        sb[0] = (size_t)n * wt * sizeof(float);
        for (int q = 0; q < P; q++) {
            const int64_t nq = (s->n_items - q + P - 1) / P;
            rb[q] = root ? (size_t)(lo >= nq ? 0 : nq - lo < per ? nq - lo : per) * wt * sizeof(float) : 0;
        }
        comm_alltoallv(tb->cm, out, sb, in, rb);
        if (!root) continue;
        // items LO·P .. END - 1: item LO·P + i is rank i mod P's row LO + i / P
        const int64_t first = lo * P, end = (lo + per) * P < s->n_items ? (lo + per) * P : s->n_items;
        for (int q = 0; q < P; q++) part[q] = q == 0 ? in : part[q - 1] + rb[q - 1] / sizeof(float);
        for (int t = 0, at = 0; t < T; at += width[t], t++) {
            for (int64_t i = 0; i < end - first; i++)
                memcpy(block + (size_t)i * width[t], part[i % P] + (size_t)(i / P) * wt + at,
                       (size_t)width[t] * sizeof *block);
            errno = 0;
            if (tensor_stream_write(&w[t], block, (size_t)(end - first) * width[t]) < 0 && !err) err = errno ? errno : EIO;
        }
    }
    free(out), free(in), free(block), free(sb), free(rb), free(part);
    if (!root) return;
    for (int t = 0; t < T; t++) {
        errno = 0;
        if (tensor_stream_close(&w[t]) < 0 && !err) err = errno ? errno : EIO;
    }
    if (err) model_save_failed(path, err);
    model_save_end(f, path, s, c, fingerprint, data_dir, item_ids);
}

static void sh_release(tables *tb) {
    shard_state *z = st_of(tb);
    if (!z) return;
    model_tables_release(&z->shard, &tb->mem);
    for (int t = 0; t < tb->n_tables; t++) row_grads_free(&z->sum[t]);
    free(z->slot_of), free(z->items), free(z->need), free(z->bx), free(z->by), free(z->bneg);
    free(z->ask_n), free(z->asked_n), free(z->asked_at), free(z->at), free(z->ask), free(z->ask_row), free(z->asked);
    free(z->send_b), free(z->recv_b), free(z->reply_b), free(z->back_b), free(z->sendbuf), free(z->gradbuf);
    free(z->fused), free(z->zeros);
    free(z);
    tb->mode_state = NULL;
}

static const char *sh_summary(const tables *tb) {
    if (tb->device == BACKEND_CUDA && st_of(tb)->xm)
        return "item tables sharded (item i on rank i mod P, in host memory), rows fetched from their owners into "
               "a step table on the GPU and gradients sent back by all-to-all, dense gradients summed by NCCL";
    if (tb->device == BACKEND_CUDA)
        return "item tables sharded (item i on rank i mod P, in host memory), rows fetched from their owners into "
               "a step table on the GPU and gradients sent back by all-to-all";
    return "item tables sharded (item i on rank i mod P), rows fetched from their owners and gradients sent "
           "back by all-to-all";
}

const tables_ops tables_sharded_ops = {
    .open = sh_open,
    .attach = sh_attach,
    .ready = sh_nothing,
    .settle = sh_nothing,
    .release = sh_release,
    .summary = sh_summary,
    .carve = sh_carve,
    .fetch = sh_fetch,
    .save_model = sh_save_model,
    .save_parts = tables_parts_save,
};
