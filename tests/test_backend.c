// The whole CPU training step (src/backend/cpu_backend.c with model.c, gru.c, loss.c, optim.c).
//
//  - gradients vs finite differences: every embedding mode (onehot, shared, separate D=5)
//    x layers (6; 6,5) x loss (cross-entropy; bpr-max with elu-0.5; top1 with tanh;
//    cross-entropy with logq=1, sample-alpha 0.5) x dropout (none; hidden 0.3 + embed 0.2,
//    embed only where the mode has an embedding), N = 11 items, M = 4 rows, K = 3
//    negatives, non-zero random hidden states and biases. backend_gradient_step gives the
//    gradient of scale x loss; it is compared with central differences of the returned
//    loss x scale (same step, so the dropout masks are identical; h = 1e-2 in float, the
//    exact float difference of the perturbed values as the denominator) for EVERY dense
//    parameter and every element of the touched rows of Wy, by and E. Tolerance per
//    element: |g - fd| <= 1e-4 + 1e-2 |fd| (float rounding of the loss divided by 2h is
//    ~1e-5; observed worst 3.4e-5, 0.18 of the tolerance, see the log). With ELU the
//    biases are set away from 0 so that no score sits on ELU's kink (a central difference
//    across it is wrong). The touched rows are exactly the expected ones,
//    untouched rows have no gradient row and perturbing them leaves the loss bitwise
//    unchanged; the step changes neither the parameters nor the hidden state;
//  - the loss of one row (M = 1, cross-entropy, with and without logq, every embedding
//    mode) recomputed by hand in double from the parameters: relative 1e-5;
//  - same seed => bitwise identical parameters and states after 20 training steps of two
//    independently created backends (dropout and momentum on); a different seed differs;
//  - backend_train_step changes only the touched rows of Wy / by / E (bitwise), and the
//    touched rows and the dense buffer by exactly the first Adagrad step of the gradient
//    (|got - want| <= 1e-6 + 1e-6 |want|);
//  - the carried state is the dropped output (0 or h_new / (1 - p)); dropout masks depend
//    on the step and the rank, not on anything else.
// backend_clear_gradients is called before every backend_gradient_step: the row
// accumulators must start empty.
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd/config.h"
#include "model/model.h"
#include "data/rng.h"

enum { N_ITEMS = 11, MAXROWS = 4, K = 3 };
#define SCALE 0.25f

typedef struct {
    const char *emb;     // "onehot", "shared" or an embedding width
    const char *layers;  // "6" or "6,5"
    const char *loss, *act, *logq, *alpha;
    const char *p_hid, *p_emb;  // dropout
    int momentum;
} spec;

typedef struct {
    spec sp;
    char name[160];
    train_config c;
    model_shape s;
    model_tensors t;
    backend *b;
    int64_t support[N_ITEMS];
} setup;

static void set(train_config *c, const char *k, const char *v) {
    cr_assert(config_set(c, k, v, "test"), "unknown setting %s", k);
}

static void fill(rng_state *r, float *v, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_next_float(r);
}

static void setup_make(setup *u, const spec *sp, int max_rows, const char *n_sample, uint64_t seed) {
    memset(u, 0, sizeof *u);
    u->sp = *sp;
    snprintf(u->name, sizeof u->name, "emb=%s layers=%s loss=%s act=%s logq=%s dropout=%s/%s", sp->emb, sp->layers,
             sp->loss, sp->act, sp->logq, sp->p_hid, sp->p_emb);
    train_config *c = &u->c;
    config_defaults(c);
    set(c, "layers", sp->layers);
    set(c, "embedding", sp->emb);
    set(c, "loss", sp->loss);
    set(c, "final-act", sp->act);
    set(c, "logq", sp->logq);
    set(c, "sample-alpha", sp->alpha);
    set(c, "n-sample", n_sample);
    set(c, "batch-size", "4");
    set(c, "dropout-hidden", sp->p_hid);
    set(c, "dropout-embed", sp->p_emb);
    set(c, "learning-rate", "0.1");
    set(c, "momentum", sp->momentum ? "0.5" : "0");
    char sd[32];
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)seed);
    set(c, "seed", sd);
    config_validate(c);
    for (int i = 0; i < N_ITEMS; i++) u->support[i] = 1 + (i * 7) % 13;
    model_shape_init(&u->s, c, N_ITEMS);
    tensors_alloc(&u->t, &u->s);
    model_init(&u->t, &u->s, seed);
    // Non-zero biases (the model starts them at 0), so their gradients matter.
    rng_state r;
    rng_state_seed(&r, seed * 7919 + 1);
    fill(&r, u->t.by, N_ITEMS, -0.5f, 0.5f);
    // ELU(0.5) has a kink at 0 (slope 1 above, 0.5 below) where a central difference is
    // wrong: biases of +-(1.5 + U(-0.5, 0.5)) keep every score well off it (a score within
    // h of 0 was seen to fail by 10x), and both branches are still used.
    if (c->loss.act == ACT_ELU)
        for (int i = 0; i < N_ITEMS; i++) u->t.by[i] = (i % 2 ? -1.0f : 1.0f) * (1.5f + u->t.by[i]);
    for (int l = 0; l < u->s.n_layers; l++) fill(&r, layer_b(&u->t, &u->s, l), 3 * (size_t)u->s.hid[l], -0.3f, 0.3f);
    u->b = backend_create(c, &u->s, &u->t, max_rows, 1, 0, u->support);
    // Non-zero hidden states.
    float **st = backend_states(u->b);
    const int *w = backend_state_widths(u->b);
    cr_assert_eq(backend_n_states(u->b), u->s.n_layers);
    for (int l = 0; l < backend_n_states(u->b); l++) {
        cr_assert_eq(w[l], u->s.hid[l]);
        fill(&r, st[l], (size_t)max_rows * w[l], -0.8f, 0.8f);
    }
}

static void setup_free(setup *u) {
    backend_free(u->b);
    tensors_free(&u->t);
}

static size_t wy_width(const setup *u) { return (size_t)u->s.hid[u->s.n_layers - 1]; }

// The batch of the gradient checks: a repeated input (1), a repeated target (2), a
// negative that is also a target (5). Untouched items: 0, 6, 8 (and 1, 4, 7 for Wy/by
// unless Wy is also the input table).
static const int32_t X[MAXROWS] = {1, 4, 1, 7};
static const int32_t Y[MAXROWS] = {2, 5, 9, 2};
static const int32_t NEG[K] = {3, 5, 10};
static const int64_t STEP = 17;

static double loss_at(setup *u) {
    backend_clear_gradients(u->b);
    return SCALE * backend_gradient_step(u->b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
}

// A copy of one table's touched gradient rows.
typedef struct {
    int n, width;
    int32_t rows[32];
    float *grad;
} rows_copy;

static void copy_rows(rows_copy *d, const row_grads *g) {
    cr_assert_leq(g->n, 32);
    d->n = g->n;
    d->width = g->width;
    memcpy(d->rows, g->rows, (size_t)g->n * sizeof(int32_t));
    d->grad = malloc((size_t)g->n * g->width * sizeof(float) + 1);
    memcpy(d->grad, g->grad, (size_t)g->n * g->width * sizeof(float));
}

static void expect_touched(const setup *u, const char *table, const row_grads *g, const int *want, int n_want) {
    int expect[N_ITEMS] = {0}, n = 0;
    for (int k = 0; k < n_want; k++) expect[want[k]] = 1;
    for (int i = 0; i < N_ITEMS; i++) {
        n += expect[i];
        if (expect[i])
            cr_expect_geq(g->slot[i], 0, "%s: %s row %d was touched but has no gradient row", u->name, table, i);
        else
            cr_expect_eq(g->slot[i], -1, "%s: %s row %d was not touched but has a gradient row", u->name, table, i);
    }
    cr_expect_eq(g->n, n, "%s: %s has %d gradient rows, expected %d", u->name, table, g->n, n);
}

typedef struct {
    double worst_ratio, worst_abs;
    int n_checked;
} fd_stats;

// Central difference of the loss x scale with respect to *P, step H (in float; the
// denominator is the exact difference of the two perturbed float values).
static double central_diff(setup *u, float *p, double h) {
    const float keep = *p;
    const float plus = (float)(keep + h), minus = (float)(keep - h);
    *p = plus;
    double lp = loss_at(u);
    *p = minus;
    double lm = loss_at(u);
    *p = keep;
    return (lp - lm) / ((double)plus - (double)minus);
}

// h = 1e-2: float rounding of the loss (~1e-7 relative) divided by 2h is ~1e-5.
static const double FD_H = 1e-2, FD_ATOL = 1e-4, FD_RTOL = 1e-2;

static void fd_one(setup *u, float *p, float g, const char *what, long idx, fd_stats *st) {
    double fd = central_diff(u, p, FD_H);
    double err = fabs(g - fd), ratio = err / (FD_ATOL + FD_RTOL * fabs(fd));
    if (ratio > st->worst_ratio) st->worst_ratio = ratio;
    if (err > st->worst_abs) st->worst_abs = err;
    st->n_checked++;
    cr_expect(ratio <= 1.0, "%s: %s[%ld]: analytic %.7g, finite difference %.7g", u->name, what, idx, g, fd);
}

static void fd_rows(setup *u, const char *table, float *param, const rows_copy *rc, fd_stats *st) {
    for (int k = 0; k < rc->n; k++)
        for (int e = 0; e < rc->width; e++) {
            size_t at = (size_t)rc->rows[k] * rc->width + e;
            fd_one(u, param + at, rc->grad[(size_t)k * rc->width + e], table, (long)at, st);
        }
}

// Perturbing an untouched row must leave the loss bitwise unchanged.
static void untouched_rows_inert(setup *u, const char *table, float *param, int width, const row_grads *g,
                                 double base) {
    for (int i = 0; i < N_ITEMS; i++) {
        if (g->slot[i] >= 0) continue;
        float *p = param + (size_t)i * width, keep = p[0];
        p[0] = keep + 0.5f;
        double l = loss_at(u);
        p[0] = keep;
        cr_expect(l == base, "%s: perturbing untouched %s row %d changed the loss (%.9g vs %.9g)", u->name, table, i,
                  l, base);
    }
}

static void fd_case(const spec *sp) {
    setup u;
    setup_make(&u, sp, MAXROWS, "3", 42);
    const model_shape *s = &u.s;
    const size_t H = wy_width(&u);
    const int shared = strcmp(sp->emb, "shared") == 0;
    // Snapshots: the gradient step must change neither the parameters nor the states.
    float *dense0 = malloc(s->n_dense * sizeof(float)), *Wy0 = malloc(N_ITEMS * H * sizeof(float));
    float *by0 = malloc(N_ITEMS * sizeof(float));
    float *E0 = u.t.E ? malloc((size_t)N_ITEMS * s->emb_width * sizeof(float)) : NULL;
    memcpy(dense0, u.t.dense, s->n_dense * sizeof(float));
    memcpy(Wy0, u.t.Wy, N_ITEMS * H * sizeof(float));
    memcpy(by0, u.t.by, N_ITEMS * sizeof(float));
    if (E0) memcpy(E0, u.t.E, (size_t)N_ITEMS * s->emb_width * sizeof(float));
    float *st0[MAX_LAYERS];
    for (int l = 0; l < s->n_layers; l++) {
        size_t n = (size_t)MAXROWS * s->hid[l];
        st0[l] = malloc(n * sizeof(float));
        memcpy(st0[l], backend_states(u.b)[l], n * sizeof(float));
    }

    const double base = loss_at(&u);
    cr_assert(isfinite(base) && base > 0, "%s: loss %g", u.name, base);
    backend_grads gr = backend_gradients(u.b);
    cr_assert(gr.dense && gr.Wy && gr.by);
    cr_assert_eq(gr.E != NULL, u.t.E != NULL, "%s: E gradients iff the model has E", u.name);
    // Exactly the expected rows are touched.
    const int wy_out[5] = {2, 5, 9, 3, 10}, wy_shared[8] = {2, 5, 9, 3, 10, 1, 4, 7}, in_rows[3] = {1, 4, 7};
    if (shared) expect_touched(&u, "Wy", gr.Wy, wy_shared, 8);
    else expect_touched(&u, "Wy", gr.Wy, wy_out, 5);
    expect_touched(&u, "by", gr.by, wy_out, 5);
    if (gr.E) expect_touched(&u, "E", gr.E, in_rows, 3);
    cr_assert_eq(gr.Wy->width, (int)H);
    cr_assert_eq(gr.by->width, 1);
    if (gr.E) cr_assert_eq(gr.E->width, s->emb_width);

    float *g_dense = malloc(s->n_dense * sizeof(float));
    memcpy(g_dense, gr.dense, s->n_dense * sizeof(float));
    rows_copy g_Wy, g_by, g_E = {0};
    copy_rows(&g_Wy, gr.Wy);
    copy_rows(&g_by, gr.by);
    if (gr.E) copy_rows(&g_E, gr.E);
    untouched_rows_inert(&u, "Wy", u.t.Wy, (int)H, gr.Wy, base);
    untouched_rows_inert(&u, "by", u.t.by, 1, gr.by, base);
    if (u.t.E) untouched_rows_inert(&u, "E", u.t.E, s->emb_width, backend_gradients(u.b).E, base);

    fd_stats st = {0, 0, 0};
    for (size_t i = 0; i < s->n_dense; i++) fd_one(&u, u.t.dense + i, g_dense[i], "dense", (long)i, &st);
    fd_rows(&u, "Wy", u.t.Wy, &g_Wy, &st);
    fd_rows(&u, "by", u.t.by, &g_by, &st);
    if (u.t.E) fd_rows(&u, "E", u.t.E, &g_E, &st);
    cr_log_info("%s: loss %.5f, %d gradients, worst |g - fd| %.2e (%.2f of the tolerance)", u.name, base,
                st.n_checked, st.worst_abs, st.worst_ratio);

    // The same loss again (masks depend on the step only), and nothing was changed.
    cr_expect(loss_at(&u) == base, "%s: the gradient step is not repeatable", u.name);
    cr_expect(memcmp(dense0, u.t.dense, s->n_dense * sizeof(float)) == 0, "%s: dense parameters changed", u.name);
    cr_expect(memcmp(Wy0, u.t.Wy, N_ITEMS * H * sizeof(float)) == 0, "%s: Wy changed", u.name);
    cr_expect(memcmp(by0, u.t.by, N_ITEMS * sizeof(float)) == 0, "%s: by changed", u.name);
    if (E0) cr_expect(memcmp(E0, u.t.E, (size_t)N_ITEMS * s->emb_width * sizeof(float)) == 0, "%s: E changed", u.name);
    for (int l = 0; l < s->n_layers; l++) {
        cr_expect(memcmp(st0[l], backend_states(u.b)[l], (size_t)MAXROWS * s->hid[l] * sizeof(float)) == 0,
                  "%s: the gradient step changed the hidden state of layer %d", u.name, l);
        free(st0[l]);
    }
    free(dense0); free(Wy0); free(by0); free(E0); free(g_dense);
    free(g_Wy.grad); free(g_by.grad); free(g_E.grad);
    setup_free(&u);
}

// Every loss x dropout combination for one embedding mode and one layer stack.
static void fd_all(const char *emb, const char *layers) {
    const struct { const char *loss, *act, *logq; } losses[] = {
        {"cross-entropy", "linear", "0"}, {"bpr-max", "elu-0.5", "0"}, {"top1", "tanh", "0"}, {"cross-entropy", "linear", "1"}};
    const int onehot = strcmp(emb, "onehot") == 0;
    for (int li = 0; li < 4; li++)
        for (int d = 0; d < 2; d++) {
            spec sp = {emb, layers, losses[li].loss, losses[li].act, losses[li].logq, "0.5",
                       d ? "0.3" : "0", d && !onehot ? "0.2" : "0", 0};
            fd_case(&sp);
        }
}

Test(backend_fd, onehot_one_layer) { fd_all("onehot", "6"); }
Test(backend_fd, onehot_two_layers) { fd_all("onehot", "6,5"); }
Test(backend_fd, shared_one_layer) { fd_all("shared", "6"); }
Test(backend_fd, shared_two_layers) { fd_all("shared", "6,5"); }
Test(backend_fd, separate_one_layer) { fd_all("5", "6"); }
Test(backend_fd, separate_two_layers) { fd_all("5", "6,5"); }

// ---------------------------------------------------------------------------------------
// The loss of one row, recomputed by hand (double) from the parameters.

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void hand_loss_case(const char *emb, int logq) {
    spec sp = {emb, "4", "cross-entropy", "linear", logq ? "1" : "0", "0.5", "0", "0", 0};
    setup u;
    setup_make(&u, &sp, 1, "3", 7);
    const model_shape *s = &u.s;
    const int H = 4, H3 = 12;
    const int32_t x = 6, y = 3, neg[K] = {8, 3, 0};  // a negative equal to the target
    // layer-0 pre-activation a = x W (+ b below)
    double a[12] = {0};
    if (s->in_dim[0] == 0) {
        for (int j = 0; j < H3; j++) a[j] = u.t.E[(size_t)x * H3 + j];
    } else {
        const int in = s->in_dim[0];
        const float *e = u.t.E ? u.t.E + (size_t)x * in : u.t.Wy + (size_t)x * in;
        const float *W = layer_W(&u.t, s, 0);
        for (int j = 0; j < H3; j++)
            for (int m = 0; m < in; m++) a[j] += (double)e[m] * W[m * H3 + j];
    }
    const float *U = layer_U(&u.t, s, 0), *b = layer_b(&u.t, s, 0), *h = backend_states(u.b)[0];
    double r[4], z[4], hn[4];
    for (int k = 0; k < H; k++) {
        double sr = a[k] + b[k], sz = a[H + k] + b[H + k];
        for (int m = 0; m < H; m++) sr += (double)h[m] * U[m * H3 + k], sz += (double)h[m] * U[m * H3 + H + k];
        r[k] = sig(sr);
        z[k] = sig(sz);
    }
    for (int k = 0; k < H; k++) {
        double sc = a[2 * H + k] + b[2 * H + k];
        for (int m = 0; m < H; m++) sc += r[m] * h[m] * U[m * H3 + 2 * H + k];
        hn[k] = (1 - z[k]) * h[k] + z[k] * tanh(sc);
    }
    // scores of the columns [y, neg...], logq: q = support (target), support^alpha (samples)
    const int32_t cols[1 + K] = {y, neg[0], neg[1], neg[2]};
    double R[1 + K], mx = -1e300;
    for (int j = 0; j < 1 + K; j++) {
        R[j] = u.t.by[cols[j]];
        for (int k = 0; k < H; k++) R[j] += hn[k] * u.t.Wy[(size_t)cols[j] * H + k];
        if (logq) R[j] -= log((double)u.support[cols[j]]) * (j == 0 ? 1.0 : 0.5);
        if (R[j] > mx) mx = R[j];
    }
    double den = 0;
    for (int j = 0; j < 1 + K; j++) den += exp(R[j] - mx);
    const double want = -log(exp(R[0] - mx) / den + 1e-24);
    int32_t xs[1] = {x}, ys[1] = {y};
    double got = backend_gradient_step(u.b, 1, xs, ys, neg, K, 0.37f, 5);
    cr_expect(fabs(got - want) <= 1e-5 * fabs(want) + 1e-7, "%s: loss %.9g, by hand %.9g (unscaled)", u.name, got,
              want);
    setup_free(&u);
}

Test(backend, loss_by_hand_one_row) {
    const char *embs[3] = {"onehot", "shared", "5"};
    for (int e = 0; e < 3; e++) {
        hand_loss_case(embs[e], 0);
        hand_loss_case(embs[e], 1);
    }
}

// ---------------------------------------------------------------------------------------
// Reproducibility

static void train_20(setup *u, uint64_t data_seed) {
    rng_state r;
    rng_state_seed(&r, data_seed);
    for (int step = 0; step < 20; step++) {
        const int M = step % 5 == 4 ? 3 : MAXROWS;
        int32_t x[MAXROWS], y[MAXROWS], neg[K];
        for (int i = 0; i < M; i++) x[i] = (int32_t)(rng_next_u64(&r) % N_ITEMS), y[i] = (int32_t)(rng_next_u64(&r) % N_ITEMS);
        for (int k = 0; k < K; k++) neg[k] = (int32_t)(rng_next_u64(&r) % N_ITEMS);
        double loss = backend_train_step(u->b, M, x, y, neg, K, SCALE, step);
        cr_assert(isfinite(loss), "%s: step %d loss %g", u->name, step, loss);
    }
}

static int same_params(const setup *a, const setup *b) {
    const model_shape *s = &a->s;
    const size_t H = wy_width(a);
    int same = memcmp(a->t.dense, b->t.dense, s->n_dense * sizeof(float)) == 0 &&
               memcmp(a->t.Wy, b->t.Wy, N_ITEMS * H * sizeof(float)) == 0 &&
               memcmp(a->t.by, b->t.by, N_ITEMS * sizeof(float)) == 0;
    if (a->t.E) same = same && memcmp(a->t.E, b->t.E, (size_t)N_ITEMS * s->emb_width * sizeof(float)) == 0;
    return same;
}

Test(backend, same_seed_same_bits) {
    const char *embs[3] = {"onehot", "shared", "5"};
    for (int e = 0; e < 3; e++) {
        const int onehot = e == 0;
        spec sp = {embs[e], "6,5", "bpr-max", "elu-0.5", "0", "0.5", "0.3", onehot ? "0" : "0.2", 1};
        setup a, b, c;
        setup_make(&a, &sp, MAXROWS, "3", 42);
        setup_make(&b, &sp, MAXROWS, "3", 42);
        setup_make(&c, &sp, MAXROWS, "3", 43);
        cr_assert(same_params(&a, &b), "%s: same seed, different initial parameters", a.name);
        train_20(&a, 99);
        train_20(&b, 99);
        train_20(&c, 99);
        cr_expect(same_params(&a, &b), "%s: same seed, different parameters after 20 steps", a.name);
        for (int l = 0; l < a.s.n_layers; l++)
            cr_expect(memcmp(backend_states(a.b)[l], backend_states(b.b)[l],
                             (size_t)MAXROWS * a.s.hid[l] * sizeof(float)) == 0,
                      "%s: same seed, different hidden state (layer %d)", a.name, l);
        cr_expect(!same_params(&a, &c), "%s: seeds 42 and 43 gave identical parameters", a.name);
        cr_expect(memcmp(a.t.dense, c.t.dense, a.s.n_dense * sizeof(float)) != 0);
        cr_expect(memcmp(a.t.Wy, c.t.Wy, N_ITEMS * wy_width(&a) * sizeof(float)) != 0);
        setup_free(&a);
        setup_free(&b);
        setup_free(&c);
    }
}

// ---------------------------------------------------------------------------------------
// One training step: which rows change, and by how much.

static void expect_table_update(const setup *u, const char *table, const float *before, const float *after,
                                int width, const row_grads *g, float lr) {
    for (int i = 0; i < N_ITEMS; i++) {
        const float *p0 = before + (size_t)i * width, *p1 = after + (size_t)i * width;
        if (g->slot[i] < 0) {
            cr_expect(memcmp(p0, p1, (size_t)width * sizeof(float)) == 0, "%s: untouched %s row %d changed", u->name,
                      table, i);
            continue;
        }
        const float *gr = g->grad + (size_t)g->slot[i] * width;
        for (int e = 0; e < width; e++) {
            double want = p0[e] - lr * gr[e] / sqrt((double)gr[e] * gr[e] + 1e-6);
            cr_expect(fabs(p1[e] - want) <= 1e-6 + 1e-6 * fabs(want), "%s: %s[%d][%d] = %.9g, first Adagrad step %.9g",
                      u->name, table, i, e, p1[e], want);
        }
    }
}

Test(backend, train_step_updates_touched_rows_only) {
    const char *embs[3] = {"onehot", "shared", "5"};
    for (int e = 0; e < 3; e++) {
        spec sp = {embs[e], "6,5", "cross-entropy", "linear", "0", "0.5", "0", "0", 0};
        setup a, b;  // a: gradients only; b: the training step
        setup_make(&a, &sp, MAXROWS, "3", 42);
        setup_make(&b, &sp, MAXROWS, "3", 42);
        const model_shape *s = &b.s;
        const size_t H = wy_width(&b);
        model_tensors before;
        tensors_alloc(&before, s);
        memcpy(before.dense, b.t.dense, s->n_dense * sizeof(float));
        memcpy(before.Wy, b.t.Wy, N_ITEMS * H * sizeof(float));
        memcpy(before.by, b.t.by, N_ITEMS * sizeof(float));
        if (b.t.E) memcpy(before.E, b.t.E, (size_t)N_ITEMS * s->emb_width * sizeof(float));
        float *st0 = malloc((size_t)MAXROWS * s->hid[0] * sizeof(float));
        memcpy(st0, backend_states(b.b)[0], (size_t)MAXROWS * s->hid[0] * sizeof(float));

        double la = backend_gradient_step(a.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
        double lb = backend_train_step(b.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
        cr_expect(la == lb, "%s: train step loss %.9g, gradient step loss %.9g", b.name, lb, la);
        backend_grads g = backend_gradients(a.b);
        const float lr = 0.1f;
        for (size_t i = 0; i < s->n_dense; i++) {
            double want = before.dense[i] - lr * g.dense[i] / sqrt((double)g.dense[i] * g.dense[i] + 1e-6);
            cr_expect(fabs(b.t.dense[i] - want) <= 1e-6 + 1e-6 * fabs(want), "%s: dense[%zu] = %.9g, expected %.9g",
                      b.name, i, b.t.dense[i], want);
        }
        expect_table_update(&b, "Wy", before.Wy, b.t.Wy, (int)H, g.Wy, lr);
        expect_table_update(&b, "by", before.by, b.t.by, 1, g.by, lr);
        if (b.t.E) expect_table_update(&b, "E", before.E, b.t.E, s->emb_width, g.E, lr);
        // Some touched rows really moved (the checks above would pass with a zero gradient).
        cr_expect(memcmp(before.Wy + 2 * H, b.t.Wy + 2 * H, H * sizeof(float)) != 0, "%s: Wy row 2 unchanged", b.name);
        cr_expect_neq(before.by[9], b.t.by[9], "%s: by row 9 unchanged", b.name);
        if (b.t.E)
            cr_expect(memcmp(before.E + 4 * s->emb_width, b.t.E + 4 * s->emb_width, s->emb_width * sizeof(float)) != 0,
                      "%s: E row 4 unchanged", b.name);
        // The training step carries the new state; the gradient step did not.
        cr_expect(memcmp(st0, backend_states(b.b)[0], (size_t)MAXROWS * s->hid[0] * sizeof(float)) != 0,
                  "%s: the training step did not carry the new hidden state", b.name);
        cr_expect(memcmp(st0, backend_states(a.b)[0], (size_t)MAXROWS * s->hid[0] * sizeof(float)) == 0);
        free(st0);
        tensors_free(&before);
        setup_free(&a);
        setup_free(&b);
    }
}

// The state a lane carries is the DROPPED output (as the official code): every carried
// value is 0 or h_new / (1 - p), where h_new is what the same model carries without dropout.
Test(backend, train_step_carries_dropped_state) {
    spec with = {"onehot", "6", "cross-entropy", "linear", "0", "0.5", "0.3", "0", 0};
    spec without = with;
    without.p_hid = "0";
    setup a, b;
    setup_make(&a, &with, MAXROWS, "3", 42);
    setup_make(&b, &without, MAXROWS, "3", 42);
    backend_train_step(a.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    backend_train_step(b.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    const float *sa = backend_states(a.b)[0], *sb = backend_states(b.b)[0];
    int zeros = 0;
    for (int i = 0; i < MAXROWS * 6; i++) {
        cr_assert_neq(sb[i], 0.0f);
        if (sa[i] == 0.0f) {
            zeros++;
            continue;
        }
        cr_expect(fabsf(sa[i] - sb[i] / 0.7f) <= 1e-6f * fabsf(sb[i] / 0.7f), "state[%d] = %g, h_new / 0.7 = %g", i,
                  sa[i], sb[i] / 0.7f);
    }
    cr_expect(zeros > 0 && zeros < MAXROWS * 6, "%d of %d carried values dropped with p = 0.3", zeros, MAXROWS * 6);
    setup_free(&a);
    setup_free(&b);
}

// Dropout masks depend on the step and the rank (and are the same for the same step);
// without dropout neither matters.
static double loss_of(backend *b, int64_t step) {
    backend_clear_gradients(b);  // the row accumulators must start empty
    return backend_gradient_step(b, MAXROWS, X, Y, NEG, K, SCALE, step);
}

Test(backend, dropout_masks_follow_step_and_rank) {
    spec drop = {"shared", "6,5", "cross-entropy", "linear", "0", "0.5", "0.3", "0.2", 0};
    spec none = drop;
    none.p_hid = none.p_emb = "0";
    setup a, n;
    setup_make(&a, &drop, MAXROWS, "3", 42);
    setup_make(&n, &none, MAXROWS, "3", 42);
    const double l17 = loss_of(a.b, 17), l18 = loss_of(a.b, 18);
    cr_expect(l17 != l18, "dropout: the same loss at steps 17 and 18 (%.9g)", l17);
    cr_expect(loss_of(a.b, 17) == l17, "step 17 again gives another loss");
    cr_expect(loss_of(n.b, 17) == loss_of(n.b, 18), "without dropout the step must not matter");
    // Another rank, same parameters and states: other masks.
    backend *r1 = backend_create(&a.c, &a.s, &a.t, MAXROWS, 1, 1, a.support);
    for (int l = 0; l < a.s.n_layers; l++)
        memcpy(backend_states(r1)[l], backend_states(a.b)[l], (size_t)MAXROWS * a.s.hid[l] * sizeof(float));
    cr_expect(loss_of(r1, 17) != l17, "ranks 0 and 1 drew the same masks");
    backend_free(r1);
    setup_free(&a);
    setup_free(&n);
}
