// The CUDA backend (src/cuda/cuda_backend.cu) against the CPU backend (src/backend/cpu_backend.c),
// both through src/backend/backend.h, on the tiny models of tests/test_backend.c:
//
//  - one gradient step, every embedding mode (onehot, shared, separate D=5) x layers (6;
//    6,5) x loss (cross-entropy with logq 0 and 1, bpr, top1, bpr-max with bpreg 0.5,
//    top1-max), dropout on (hidden 0.3, embed 0.2 where the mode has an embedding),
//    momentum 0.5, non-zero hidden states and biases, a batch with repeated items: the
//    loss, the dense gradient, the touched rows of Wy / by / E (same rows, same order)
//    and their gradients; then backend_apply_update: parameters, optimizer arrays and
//    the carried hidden states;
//  - five backend_train_steps (new inputs each step, a lanes_step row move, a short last
//    step): GPU vs CPU within 1e-3 of each tensor's scale, and two fresh GPU runs
//    bitwise equal (every reduction on the GPU has a fixed order);
//  - the GPU gradient step changes neither the parameters nor the hidden state and
//    repeats bitwise; its dropout masks follow the step and the rank as the CPU's;
//  - evaluation: backend_eval_step metrics (hits exact, MRR/NDCG sums within 1e-6 relative),
//    backend_feed and backend_score_all scores, on 200 items;
//  - backend_move_rows and backend_zero_states on the device;
//  - sharded tables: a backend of a step table (table_rows, backend_step_items, the rows
//    put up, the gradients brought down) trains bitwise as
//    the backend of the whole tables on the same device;
//  - backend_free gives back every byte of device memory (training and scoring backends);
//  - backend_choose_device("auto") picks CUDA exactly when a usable GPU exists (runs
//    everywhere, never skips).
//
// Tolerance rule of every CPU-vs-GPU tensor comparison: element e passes when
//   |gpu[e] - cpu[e]| <= rel * max_e' |cpu[e']| + 1e-6
// with rel = 1e-4 after one step (1e-3 after five). The rule is relative to the tensor's
// largest value, not element-wise: cuBLAS adds the terms of a product in another order
// than OpenBLAS, so an element that cancels to near 0 can differ from the CPU's by far
// more than 1e-4 of itself while the difference stays ~1e-7 of the tensor's scale.
// Losses are compared with a plain relative 1e-4 (1e-3 after several steps). The most
// sensitive tensors are the momenta after the first Adagrad step (lr·g/sqrt(g² + 1e-6)
// magnifies a gradient difference up to 100 times where |g| < 1e-3): with the CPU backend
// on both sides but different OpenBLAS kernels (OPENBLAS_CORETYPE Prescott vs SkylakeX,
// half the values differing in their bits) the worst difference was 0.08 of the tolerance.
//
// Without a usable GPU (no driver: CUDA error 35) every GPU test ends with cr_skip_test
// and the runtime's reason (listed with --verbose), after a "SKIP: ..." line on stderr
// (shown in any run). Each Criterion test runs in its own
// process, so the device chosen by backend_choose_device does not leak between tests.
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd/config.h"
#include "device_info.h"
#include "device_sampler.h"
#include "eval/metrics.h"
#include "model/model.h"
#include "model/optim.h"
#include "data/rng.h"

enum { N_ITEMS = 11, MAXROWS = 4, K = 3, N_EVAL = 200, EVAL_ROWS = 8, N_OPT = 8 };
#define SCALE 0.25f
static const int64_t STEP = 17;

// Ends the test as skipped (with the CUDA runtime's reason) where no GPU can be used.
// Criterion lists skips with --verbose only: the line on stderr shows in any run.
static void need_gpu(const char *test) {
    char why[256] = "unknown";
    if (cuda_usable_devices(why, (int)sizeof why) > 0) return;
    fprintf(stderr, "SKIP: %s: no usable GPU: %s\n", test, why);
    cr_skip_test("no usable GPU: %s", why);
}

// ---------------------------------------------------------------------------------------
// Setups (as tests/test_backend.c): a config, random parameters and hidden states, copied
// into each backend's own tensors.

typedef struct {
    const char *emb;     // "onehot", "shared" or an embedding width
    const char *layers;  // "6" or "6,5"
    const char *loss, *act, *logq, *bpreg;  // bpreg NULL: the default
    const char *p_hid, *p_emb;              // dropout
    int momentum;
} spec;

typedef struct {
    char name[200];
    train_config c;
    model_shape s;
    model_tensors ref;  // the initial parameters
    int64_t support[N_EVAL];
    int max_rows;
    float *states0[MAX_LAYERS];  // the initial hidden states, max_rows x hid[l]
} setup;

// One backend with its own copy of the parameters.
typedef struct {
    model_tensors t;
    backend *b;
} side;

static void set(train_config *c, const char *k, const char *v) {
    cr_assert(config_set(c, k, v, "test"), "unknown setting %s", k);
}

static void fill(rng_state *r, float *v, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_next_float(r);
}

static size_t wy_size(const setup *u) { return (size_t)u->s.n_items * u->s.hid[u->s.n_layers - 1]; }
static size_t e_size(const setup *u) { return u->ref.E ? (size_t)u->s.n_items * u->s.emb_width : 0; }
static size_t state_size(const setup *u, int l) { return (size_t)u->max_rows * u->s.hid[l]; }

static void copy_tensors(model_tensors *dst, const model_tensors *src, const setup *u) {
    memcpy(dst->dense, src->dense, u->s.n_dense * sizeof(float));
    memcpy(dst->Wy, src->Wy, wy_size(u) * sizeof(float));
    memcpy(dst->by, src->by, (size_t)u->s.n_items * sizeof(float));
    if (src->E) memcpy(dst->E, src->E, e_size(u) * sizeof(float));
}

static void setup_make(setup *u, const spec *sp, int n_items, int max_rows, uint64_t seed) {
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "emb=%s layers=%s loss=%s act=%s logq=%s bpreg=%s dropout=%s/%s momentum=%d",
             sp->emb, sp->layers, sp->loss, sp->act, sp->logq, sp->bpreg ? sp->bpreg : "default", sp->p_hid, sp->p_emb,
             sp->momentum);
    u->max_rows = max_rows;
    train_config *c = &u->c;
    config_defaults(c);
    set(c, "layers", sp->layers);
    set(c, "embedding", sp->emb);
    set(c, "loss", sp->loss);
    set(c, "final-act", sp->act);
    set(c, "logq", sp->logq);
    if (sp->bpreg) set(c, "bpreg", sp->bpreg);
    set(c, "sample-alpha", "0.5");
    set(c, "n-sample", "3");  // K negatives
    char rows[32];
    snprintf(rows, sizeof rows, "%d", max_rows);
    set(c, "batch-size", rows);
    set(c, "dropout-hidden", sp->p_hid);
    set(c, "dropout-embed", sp->p_emb);
    set(c, "learning-rate", "0.1");
    set(c, "momentum", sp->momentum ? "0.5" : "0");
    char sd[32];
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)seed);
    set(c, "seed", sd);
    config_validate(c);
    cr_assert_leq(n_items, N_EVAL);
    for (int i = 0; i < n_items; i++) u->support[i] = 1 + (i * 7) % 13;
    model_shape_init(&u->s, c, n_items);
    tensors_alloc(&u->ref, &u->s);
    model_init(&u->ref, &u->s, seed);
    // Non-zero biases (the model starts them at 0), so their gradients matter.
    rng_state r;
    rng_state_seed(&r, seed * 7919 + 1);
    fill(&r, u->ref.by, (size_t)n_items, -0.5f, 0.5f);
    // ELU has a kink at 0: biases of +-(1.5 + U(-0.5, 0.5)) keep every score off it, so
    // the two backends cannot take different branches.
    if (c->loss.act == ACT_ELU)
        for (int i = 0; i < n_items; i++) u->ref.by[i] = (i % 2 ? -1.0f : 1.0f) * (1.5f + u->ref.by[i]);
    for (int l = 0; l < u->s.n_layers; l++)
        fill(&r, layer_b(&u->ref, &u->s, l), 3 * (size_t)u->s.hid[l], -0.3f, 0.3f);
    for (int l = 0; l < u->s.n_layers; l++) {
        u->states0[l] = malloc(state_size(u, l) * sizeof(float));
        cr_assert(u->states0[l]);
        fill(&r, u->states0[l], state_size(u, l), -0.8f, 0.8f);
    }
}

static void setup_free(setup *u) {
    tensors_free(&u->ref);
    for (int l = 0; l < u->s.n_layers; l++) free(u->states0[l]);
}

// A backend on DEV with a copy of U's parameters and U's hidden states (written to the
// host copy, then backend_sync_to_device: a no-op on the CPU).
static void side_make(side *sd, const setup *u, backend_device dev, int for_training, int rank) {
    tensors_alloc(&sd->t, &u->s);
    copy_tensors(&sd->t, &u->ref, u);
    cr_assert_eq(backend_choose_device(dev == BACKEND_CUDA ? "cuda" : "cpu", 0, 0), dev);
    sd->b = backend_create(&u->c, &u->s, &sd->t, u->max_rows, for_training, rank, u->support);
    cr_assert_eq(backend_n_states(sd->b), u->s.n_layers);
    float **st = backend_states(sd->b);
    const int *w = backend_state_widths(sd->b);
    for (int l = 0; l < u->s.n_layers; l++) {
        cr_assert_eq(w[l], u->s.hid[l]);
        memcpy(st[l], u->states0[l], state_size(u, l) * sizeof(float));
    }
    backend_sync_to_device(sd->b);
}

static void side_free(side *sd) {
    backend_free(sd->b);
    tensors_free(&sd->t);
}

// ---------------------------------------------------------------------------------------
// Comparisons

static double g_worst;  // the largest |gpu - cpu| / tolerance seen in the current case

static double max_abs(const float *v, size_t n) {
    double m = 0.0;
    for (size_t e = 0; e < n; e++)
        if (fabs(v[e]) > m) m = fabs(v[e]);
    return m;
}

// The tolerance rule of the header: |gpu - cpu| <= rel * max |cpu| + 1e-6, every element.
static int close_tensor(const char *ctx, const char *what, const float *cpu, const float *gpu, size_t n, double rel) {
    if (n == 0) return 1;
    const double mx = max_abs(cpu, n), tol = rel * mx + 1e-6;
    size_t bad = 0, first = 0;
    for (size_t e = 0; e < n; e++) {
        const double d = fabs((double)gpu[e] - (double)cpu[e]);
        if (d <= tol) {
            if (d / tol > g_worst) g_worst = d / tol;
        } else if (bad++ == 0) {  // NaN lands here too
            first = e;
        }
    }
    cr_expect(bad == 0,
              "%s: %s: %zu of %zu values differ by more than %.3g (%.0e x max |cpu| %.5g + 1e-6); first [%zu]: "
              "cpu %.9g, gpu %.9g",
              ctx, what, bad, n, tol, rel, mx, first, (double)cpu[first], (double)gpu[first]);
    return bad == 0;
}

static void expect_cuda(cudaError_t e, const char *what) {
    cr_assert_eq(e, cudaSuccess, "%s: %s (CUDA error %d)", what, cudaGetErrorString(e), (int)e);
}

// A host copy of N floats of device memory (the CUDA backend's gradients). The backend
// works on its own non-blocking stream: wait for the whole device first.
static float *device_to_host(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    cr_assert(h);
    expect_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    if (n) expect_cuda(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy of a gradient");
    return h;
}

// Row gradients: the same rows in the same order (ids on the host in both backends), and
// the gradient rows (on the device for CUDA) within 1e-4 of the tensor's scale.
static void compare_row_grads(const char *ctx, const char *table, const row_grads *c, const row_grads *g) {
    cr_assert(c && g, "%s: %s: row gradients missing (cpu %p, gpu %p)", ctx, table, (const void *)c, (const void *)g);
    cr_expect_eq(g->n, c->n, "%s: %s: %d gradient rows on the GPU, %d on the CPU", ctx, table, g->n, c->n);
    cr_expect_eq(g->width, c->width, "%s: %s: gradient width %d on the GPU, %d on the CPU", ctx, table, g->width,
                 c->width);
    if (g->n != c->n || g->width != c->width) return;
    for (int k = 0; k < c->n; k++)
        cr_expect_eq(g->rows[k], c->rows[k], "%s: %s: gradient row %d is table row %d on the GPU, %d on the CPU", ctx,
                     table, k, (int)g->rows[k], (int)c->rows[k]);
    const size_t n = (size_t)c->n * c->width;
    float *gh = device_to_host(g->grad, n);
    char what[64];
    snprintf(what, sizeof what, "%s row gradients", table);
    close_tensor(ctx, what, c->grad, gh, n, 1e-4);
    free(gh);
}

// Parameters of two backends (host copies: sync_to_host first).
static void compare_params(const setup *u, const char *ctx, const side *c, const side *g, double rel) {
    close_tensor(ctx, "dense parameters", c->t.dense, g->t.dense, u->s.n_dense, rel);
    close_tensor(ctx, "Wy", c->t.Wy, g->t.Wy, wy_size(u), rel);
    close_tensor(ctx, "by", c->t.by, g->t.by, (size_t)u->s.n_items, rel);
    cr_assert_eq(c->t.E != NULL, g->t.E != NULL);
    if (c->t.E) close_tensor(ctx, "E", c->t.E, g->t.E, e_size(u), rel);
}

static const char *const OPT_NAMES[N_OPT] = {"dense acc", "dense mom", "Wy acc", "Wy mom",
                                             "by acc",    "by mom",    "E acc",  "E mom"};

static void compare_optim(const char *ctx, backend *c, backend *g, double rel) {
    float *ac[N_OPT], *ag[N_OPT];
    size_t sc[N_OPT], sg[N_OPT];
    const int nc = backend_optim_arrays(c, ac, sc), ng = backend_optim_arrays(g, ag, sg);
    cr_assert_eq(nc, N_OPT);
    cr_assert_eq(ng, N_OPT);
    for (int k = 0; k < N_OPT; k++) {
        cr_expect_eq(sg[k], sc[k], "%s: %s: %zu values on the GPU, %zu on the CPU", ctx, OPT_NAMES[k], sg[k], sc[k]);
        cr_expect_eq(ag[k] != NULL, ac[k] != NULL, "%s: %s present on one backend only", ctx, OPT_NAMES[k]);
        if (ac[k] && ag[k] && sc[k] == sg[k]) close_tensor(ctx, OPT_NAMES[k], ac[k], ag[k], sc[k], rel);
    }
}

static void compare_states(const setup *u, const char *ctx, backend *c, backend *g, double rel) {
    for (int l = 0; l < u->s.n_layers; l++) {
        char what[64];
        snprintf(what, sizeof what, "hidden state of layer %d", l);
        close_tensor(ctx, what, backend_states(c)[l], backend_states(g)[l], state_size(u, l), rel);
    }
}

// Two backends' parameters, optimizer arrays and hidden states are bitwise equal.
static void expect_same_bits(const setup *u, const char *ctx, const side *a, const side *b) {
    cr_expect(memcmp(a->t.dense, b->t.dense, u->s.n_dense * sizeof(float)) == 0, "%s: dense parameters differ", ctx);
    cr_expect(memcmp(a->t.Wy, b->t.Wy, wy_size(u) * sizeof(float)) == 0, "%s: Wy differs", ctx);
    cr_expect(memcmp(a->t.by, b->t.by, (size_t)u->s.n_items * sizeof(float)) == 0, "%s: by differs", ctx);
    if (a->t.E) cr_expect(memcmp(a->t.E, b->t.E, e_size(u) * sizeof(float)) == 0, "%s: E differs", ctx);
    float *oa[N_OPT], *ob[N_OPT];
    size_t sa[N_OPT], sb[N_OPT];
    backend_optim_arrays(a->b, oa, sa);
    backend_optim_arrays(b->b, ob, sb);
    for (int k = 0; k < N_OPT; k++) {
        cr_assert_eq(sa[k], sb[k]);
        if (sa[k]) cr_expect(memcmp(oa[k], ob[k], sa[k] * sizeof(float)) == 0, "%s: %s differs", ctx, OPT_NAMES[k]);
    }
    for (int l = 0; l < u->s.n_layers; l++)
        cr_expect(memcmp(backend_states(a->b)[l], backend_states(b->b)[l], state_size(u, l) * sizeof(float)) == 0,
                  "%s: hidden state of layer %d differs", ctx, l);
}

static int close_loss(double cpu, double gpu, double rel) { return fabs(gpu - cpu) <= rel * fabs(cpu); }

// ---------------------------------------------------------------------------------------
// One gradient step and one update: GPU = CPU within 1e-4 of each tensor's scale.

// Every kind of repetition: input 1 twice; input 2 also a target (shared mode: one Wy
// row gets both output and input gradients); target 2 twice; target 5 also a negative;
// negative 3 twice.
static const int32_t X[MAXROWS] = {1, 4, 1, 2};
static const int32_t Y[MAXROWS] = {2, 5, 9, 2};
static const int32_t NEG[K] = {3, 5, 3};

typedef struct {
    const char *loss, *act, *logq, *bpreg;
} loss_spec;

static const loss_spec LOSSES[] = {
    {"cross-entropy", "linear", "0", NULL}, {"cross-entropy", "linear", "1", NULL}, {"bpr", "tanh", "0", NULL},
    {"top1", "tanh", "0", NULL},            {"bpr-max", "elu-0.5", "0", "0.5"},    {"top1-max", "linear", "0", NULL}};
enum { N_LOSSES = (int)(sizeof LOSSES / sizeof LOSSES[0]) };

static spec make_spec(const char *emb, const char *layers, const loss_spec *ls) {
    const int onehot = strcmp(emb, "onehot") == 0;  // onehot has no embedding to drop
    spec sp = {emb, layers, ls->loss, ls->act, ls->logq, ls->bpreg, "0.3", onehot ? "0" : "0.2", 1};
    return sp;
}

static void parity_case(const spec *sp) {
    setup u;
    setup_make(&u, sp, N_ITEMS, MAXROWS, 42);
    const char *ctx = u.name;
    side c, g;
    side_make(&c, &u, BACKEND_CPU, 1, 0);
    side_make(&g, &u, BACKEND_CUDA, 1, 0);
    g_worst = 0.0;

    backend_clear_gradients(c.b);
    backend_clear_gradients(g.b);
    const double lc = backend_gradient_step(c.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    const double lg = backend_gradient_step(g.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    cr_assert(isfinite(lc), "%s: CPU loss %g", ctx, lc);
    cr_expect(close_loss(lc, lg, 1e-4), "%s: loss %.9g on the GPU, %.9g on the CPU", ctx, lg, lc);

    const backend_grads gc = backend_gradients(c.b), gg = backend_gradients(g.b);
    cr_assert(gc.dense && gg.dense, "%s: no dense gradient", ctx);
    float *dense = device_to_host(gg.dense, u.s.n_dense);
    cr_expect(max_abs(gc.dense, u.s.n_dense) > 0, "%s: the CPU dense gradient is all zeros", ctx);
    close_tensor(ctx, "dense gradient", gc.dense, dense, u.s.n_dense, 1e-4);
    free(dense);
    compare_row_grads(ctx, "Wy", gc.Wy, gg.Wy);
    compare_row_grads(ctx, "by", gc.by, gg.by);
    cr_expect_eq(gg.E != NULL, gc.E != NULL, "%s: E gradients on one backend only", ctx);
    if (gc.E && gg.E) compare_row_grads(ctx, "E", gc.E, gg.E);

    backend_apply_update(c.b, MAXROWS, NULL, NULL, NULL);
    backend_apply_update(g.b, MAXROWS, NULL, NULL, NULL);
    backend_sync_to_host(c.b);
    backend_sync_to_host(g.b);
    cr_expect(memcmp(c.t.Wy, u.ref.Wy, wy_size(&u) * sizeof(float)) != 0, "%s: the CPU update changed no Wy", ctx);
    compare_params(&u, ctx, &c, &g, 1e-4);
    compare_optim(ctx, c.b, g.b, 1e-4);
    compare_states(&u, ctx, c.b, g.b, 1e-4);
    cr_log_info("%s: loss %.6f (gpu - cpu %.2e); worst difference %.2f of the tolerance", ctx, lc, lg - lc, g_worst);

    side_free(&c);
    side_free(&g);
    setup_free(&u);
}

static void parity_all(const char *emb, const char *layers) {
    char test[64];
    snprintf(test, sizeof test, "cuda_parity (embedding %s, layers %s)", emb, layers);
    need_gpu(test);
    for (int li = 0; li < N_LOSSES; li++) {
        spec sp = make_spec(emb, layers, &LOSSES[li]);
        parity_case(&sp);
    }
}

Test(cuda_parity, onehot_one_layer) { parity_all("onehot", "6"); }
Test(cuda_parity, onehot_two_layers) { parity_all("onehot", "6,5"); }
Test(cuda_parity, shared_one_layer) { parity_all("shared", "6"); }
Test(cuda_parity, shared_two_layers) { parity_all("shared", "6,5"); }
Test(cuda_parity, separate_one_layer) { parity_all("5", "6"); }
Test(cuda_parity, separate_two_layers) { parity_all("5", "6,5"); }

// ---------------------------------------------------------------------------------------
// Several training steps: GPU ~ CPU (1e-3 of each tensor's scale); GPU = GPU bitwise.

enum { N_STEPS = 5 };

// A plan as lanes_step makes them (src[k] >= k: rows move towards 0; -1: a new session,
// zeros), covering every row, so that the later full steps use no stale row.
static const int32_t LANES_PLAN[MAXROWS] = {1, -1, 3, -1};

// The same data for every backend: random items (repeats are frequent among 11), a row
// move after step 1, and a short last step (M = 3).
static void run_steps(const setup *u, side *sd, double *losses) {
    rng_state r;
    rng_state_seed(&r, 99);
    const uint64_t n = (uint64_t)u->s.n_items;
    for (int step = 0; step < N_STEPS; step++) {
        const int M = step == N_STEPS - 1 ? MAXROWS - 1 : MAXROWS;
        int32_t x[MAXROWS], y[MAXROWS], neg[K];
        for (int i = 0; i < M; i++) {
            x[i] = (int32_t)(rng_next_u64(&r) % n);
            y[i] = (int32_t)(rng_next_u64(&r) % n);
        }
        for (int k = 0; k < K; k++) neg[k] = (int32_t)(rng_next_u64(&r) % n);
        losses[step] = backend_train_step(sd->b, M, x, y, neg, K, SCALE, step);
        if (step == 1) backend_move_rows(sd->b, LANES_PLAN, MAXROWS);
    }
    backend_sync_to_host(sd->b);
}

static void steps_case(const spec *sp) {
    setup u;
    setup_make(&u, sp, N_ITEMS, MAXROWS, 42);
    const char *ctx = u.name;
    side c, g1, g2;
    side_make(&c, &u, BACKEND_CPU, 1, 0);
    side_make(&g1, &u, BACKEND_CUDA, 1, 0);
    side_make(&g2, &u, BACKEND_CUDA, 1, 0);
    double lc[N_STEPS], l1[N_STEPS], l2[N_STEPS];
    run_steps(&u, &c, lc);
    run_steps(&u, &g1, l1);
    run_steps(&u, &g2, l2);
    g_worst = 0.0;
    for (int step = 0; step < N_STEPS; step++) {
        cr_assert(isfinite(lc[step]), "%s: step %d: CPU loss %g", ctx, step, lc[step]);
        cr_expect(close_loss(lc[step], l1[step], 1e-3), "%s: step %d: loss %.9g on the GPU, %.9g on the CPU", ctx,
                  step, l1[step], lc[step]);
        cr_expect(l1[step] == l2[step], "%s: step %d: two GPU runs, losses %.17g and %.17g", ctx, step, l1[step],
                  l2[step]);
    }
    compare_params(&u, ctx, &c, &g1, 1e-3);
    compare_optim(ctx, c.b, g1.b, 1e-3);
    compare_states(&u, ctx, c.b, g1.b, 1e-3);
    expect_same_bits(&u, ctx, &g1, &g2);
    cr_log_info("%s: %d steps, worst GPU - CPU difference %.2f of the tolerance", ctx, N_STEPS, g_worst);
    side_free(&c);
    side_free(&g1);
    side_free(&g2);
    setup_free(&u);
}

Test(cuda_train, steps_match_cpu_and_repeat_bitwise) {
    need_gpu("cuda_train::steps_match_cpu_and_repeat_bitwise");
    const char *embs[3] = {"onehot", "shared", "5"};
    const loss_spec *losses[3] = {&LOSSES[1], &LOSSES[4], &LOSSES[5]};  // CE + logq, bpr-max, top1-max
    for (int e = 0; e < 3; e++)
        for (int li = 0; li < 3; li++) {
            spec sp = make_spec(embs[e], "6,5", losses[li]);
            steps_case(&sp);
        }
}

// ---------------------------------------------------------------------------------------
// The GPU gradient step: changes neither parameters nor states, repeats bitwise, and its
// dropout masks follow the step and the rank (the rank's masks as the CPU's).

Test(cuda_backend, gradient_step_changes_nothing_and_repeats) {
    need_gpu("cuda_backend::gradient_step_changes_nothing_and_repeats");
    spec sp = make_spec("shared", "6,5", &LOSSES[4]);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    const char *ctx = u.name;
    side g;
    side_make(&g, &u, BACKEND_CUDA, 1, 0);
    backend_clear_gradients(g.b);
    const double l1 = backend_gradient_step(g.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    float *d1 = device_to_host(backend_gradients(g.b).dense, u.s.n_dense);
    backend_clear_gradients(g.b);
    const double l2 = backend_gradient_step(g.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    float *d2 = device_to_host(backend_gradients(g.b).dense, u.s.n_dense);
    cr_expect(l1 == l2, "%s: the same gradient step gave losses %.17g and %.17g", ctx, l1, l2);
    cr_expect(memcmp(d1, d2, u.s.n_dense * sizeof(float)) == 0, "%s: the same step gave other dense gradients", ctx);
    backend_clear_gradients(g.b);
    const double l3 = backend_gradient_step(g.b, MAXROWS, X, Y, NEG, K, SCALE, STEP + 1);
    cr_expect(l3 != l1, "%s: dropout: the same loss at steps %lld and %lld", ctx, (long long)STEP,
              (long long)STEP + 1);
    backend_clear_gradients(g.b);
    // Nothing moved: the device parameters and states are still the initial ones.
    backend_sync_to_host(g.b);
    cr_expect(memcmp(g.t.dense, u.ref.dense, u.s.n_dense * sizeof(float)) == 0, "%s: dense parameters changed", ctx);
    cr_expect(memcmp(g.t.Wy, u.ref.Wy, wy_size(&u) * sizeof(float)) == 0, "%s: Wy changed", ctx);
    cr_expect(memcmp(g.t.by, u.ref.by, (size_t)u.s.n_items * sizeof(float)) == 0, "%s: by changed", ctx);
    for (int l = 0; l < u.s.n_layers; l++)
        cr_expect(memcmp(backend_states(g.b)[l], u.states0[l], state_size(&u, l) * sizeof(float)) == 0,
                  "%s: the gradient step changed the hidden state of layer %d", ctx, l);
    // Rank 1 draws other masks, the same on both backends.
    side c1, g1;
    side_make(&c1, &u, BACKEND_CPU, 1, 1);
    side_make(&g1, &u, BACKEND_CUDA, 1, 1);
    const double lc1 = backend_gradient_step(c1.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    const double lg1 = backend_gradient_step(g1.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    cr_expect(lg1 != l1, "%s: ranks 0 and 1 drew the same masks on the GPU", ctx);
    cr_expect(close_loss(lc1, lg1, 1e-4), "%s: rank 1: loss %.9g on the GPU, %.9g on the CPU", ctx, lg1, lc1);
    free(d1);
    free(d2);
    side_free(&c1);
    side_free(&g1);
    side_free(&g);
    setup_free(&u);
}

// ---------------------------------------------------------------------------------------
// Evaluation: scoring backends (no optimizer, no dropout) on 200 items. Random parameters
// make ties between a target and another item improbable, so the ranks (and the hits)
// must be the same; the MRR and NDCG sums add the same values in the same order.

static void random_ids(rng_state *r, int32_t *v, int n, int64_t n_items) {
    for (int i = 0; i < n; i++) v[i] = (int32_t)(rng_next_u64(r) % (uint64_t)n_items);
}

static void eval_case(const char *emb) {
    spec sp = {emb, "12,8", "cross-entropy", "linear", "0", NULL, "0", "0", 0};
    setup u;
    setup_make(&u, &sp, N_EVAL, EVAL_ROWS, 7);
    const char *ctx = u.name;
    side c, g;
    side_make(&c, &u, BACKEND_CPU, 0, 0);
    side_make(&g, &u, BACKEND_CUDA, 0, 0);
    g_worst = 0.0;
    // Cutoff N_EVAL counts every prediction: its MRR sum covers every rank.
    const int cutoffs[5] = {1, 5, 10, 20, N_EVAL};
    metrics mc, mg;
    metrics_init(&mc, cutoffs, 5);
    metrics_init(&mg, cutoffs, 5);
    rng_state r;
    rng_state_seed(&r, 5);
    for (int step = 0; step < 4; step++) {
        const int M = step == 3 ? 5 : EVAL_ROWS;
        int32_t x[EVAL_ROWS], y[EVAL_ROWS];
        random_ids(&r, x, M, N_EVAL);
        random_ids(&r, y, M, N_EVAL);
        backend_eval_step(c.b, M, x, y, &mc, TIES_CONSERVATIVE);
        backend_eval_step(g.b, M, x, y, &mg, TIES_CONSERVATIVE);
    }
    cr_expect_eq(mg.n, mc.n, "%s: %lld predictions on the GPU, %lld on the CPU", ctx, (long long)mg.n,
                 (long long)mc.n);
    cr_expect_eq(mc.n, 3 * EVAL_ROWS + 5);
    cr_expect_eq(mc.hits[4], (double)mc.n, "%s: every rank is within N", ctx);
    for (int k = 0; k < mc.n_cutoffs; k++) {
        cr_expect(mg.hits[k] == mc.hits[k], "%s: hits@%d: %.0f on the GPU, %.0f on the CPU", ctx, mc.cutoffs[k],
                  mg.hits[k], mc.hits[k]);
        cr_expect(fabs(mg.rr[k] - mc.rr[k]) <= 1e-6 * fabs(mc.rr[k]),
                  "%s: MRR sum@%d: %.12g on the GPU, %.12g on the CPU", ctx, mc.cutoffs[k], mg.rr[k], mc.rr[k]);
        cr_expect(fabs(mg.dcg[k] - mc.dcg[k]) <= 1e-6 * fabs(mc.dcg[k]),
                  "%s: NDCG sum@%d: %.12g on the GPU, %.12g on the CPU", ctx, mc.cutoffs[k], mg.dcg[k], mc.dcg[k]);
    }
    // Feeding, then scores of every item.
    int32_t x[EVAL_ROWS];
    random_ids(&r, x, EVAL_ROWS, N_EVAL);
    backend_feed(c.b, EVAL_ROWS, x);
    backend_feed(g.b, EVAL_ROWS, x);
    random_ids(&r, x, EVAL_ROWS, N_EVAL);
    const float *sc = backend_score_all(c.b, EVAL_ROWS, x);
    const float *sg = backend_score_all(g.b, EVAL_ROWS, x);
    cr_expect(max_abs(sc, (size_t)EVAL_ROWS * N_EVAL) > 0, "%s: all CPU scores are 0", ctx);
    close_tensor(ctx, "scores", sc, sg, (size_t)EVAL_ROWS * N_EVAL, 1e-4);
    backend_sync_to_host(c.b);
    backend_sync_to_host(g.b);
    compare_states(&u, ctx, c.b, g.b, 1e-4);
    cr_log_info("%s: hits@20 %.0f of %lld, MRR sum@%d %.6f; worst score difference %.2f of the tolerance", ctx,
                mc.hits[3], (long long)mc.n, N_EVAL, mc.rr[4], g_worst);
    side_free(&c);
    side_free(&g);
    setup_free(&u);
}

Test(cuda_eval, metrics_and_scores_match_cpu) {
    need_gpu("cuda_eval::metrics_and_scores_match_cpu");
    eval_case("onehot");
    eval_case("shared");
    eval_case("10");
}

// ---------------------------------------------------------------------------------------
// Row moves and zeroing on the device.

static float state_value(int l, int row, int k) { return (float)(1000 * (l + 1) + 100 * row + k) + 0.5f; }

static void write_states(const setup *u, backend *b) {
    float **st = backend_states(b);
    for (int l = 0; l < u->s.n_layers; l++)
        for (int row = 0; row < u->max_rows; row++)
            for (int k = 0; k < u->s.hid[l]; k++) st[l][(size_t)row * u->s.hid[l] + k] = state_value(l, row, k);
    backend_sync_to_device(b);
}

// Row ROW of every layer holds old row SRC (or zeros when SRC < 0), exactly.
static void expect_row(const setup *u, backend *b, int row, int src, const char *what) {
    for (int l = 0; l < u->s.n_layers; l++)
        for (int k = 0; k < u->s.hid[l]; k++) {
            const float got = backend_states(b)[l][(size_t)row * u->s.hid[l] + k];
            const float want = src < 0 ? 0.0f : state_value(l, src, k);
            cr_expect(got == want, "%s: layer %d row %d [%d] = %g, expected %g (old row %d)", what, l, row, k, got,
                      want, src);
        }
}

Test(cuda_backend, move_rows_and_zero_states) {
    need_gpu("cuda_backend::move_rows_and_zero_states");
    spec sp = make_spec("5", "6,5", &LOSSES[0]);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    side g;
    side_make(&g, &u, BACKEND_CUDA, 1, 0);
    // Row k gets OLD row src[k] (backend.h; src[k] >= k as lanes_step makes them), rows
    // from M on keep theirs.
    write_states(&u, g.b);
    for (int l = 0; l < u.s.n_layers; l++) memset(backend_states(g.b)[l], 0xff, state_size(&u, l) * sizeof(float));
    const int32_t plan[3] = {-1, 2, 3};
    backend_move_rows(g.b, plan, 3);
    backend_sync_to_host(g.b);
    for (int k = 0; k < 3; k++) expect_row(&u, g.b, k, plan[k], "move {-1, 2, 3}");
    for (int k = 3; k < MAXROWS; k++) expect_row(&u, g.b, k, k, "move {-1, 2, 3}: rows from M on unchanged");
    // Twice in a row (the device swaps buffers): a lanes_step plan, then another.
    write_states(&u, g.b);
    backend_move_rows(g.b, LANES_PLAN, MAXROWS);
    const int32_t plan2[2] = {0, 2};  // after the first: row 0 = old 1, row 2 = old 3
    backend_move_rows(g.b, plan2, 2);
    backend_sync_to_host(g.b);
    expect_row(&u, g.b, 0, 1, "two moves");
    expect_row(&u, g.b, 1, 3, "two moves");
    // The same lanes plan on the CPU and the GPU: the same rows, bitwise.
    side c;
    side_make(&c, &u, BACKEND_CPU, 1, 0);
    write_states(&u, c.b);
    write_states(&u, g.b);
    backend_move_rows(c.b, LANES_PLAN, MAXROWS);
    backend_move_rows(g.b, LANES_PLAN, MAXROWS);
    backend_sync_to_host(g.b);
    for (int l = 0; l < u.s.n_layers; l++)
        cr_expect(memcmp(backend_states(c.b)[l], backend_states(g.b)[l], state_size(&u, l) * sizeof(float)) == 0,
                  "lanes plan: layer %d differs between the CPU and the GPU", l);
    for (int k = 0; k < MAXROWS; k++) expect_row(&u, g.b, k, LANES_PLAN[k], "lanes plan");
    // Zeroing: the host copy at once, the device too.
    write_states(&u, g.b);
    backend_zero_states(g.b);
    for (int l = 0; l < u.s.n_layers; l++)
        cr_expect(max_abs(backend_states(g.b)[l], state_size(&u, l)) == 0.0, "zero_states: host layer %d not zero", l);
    for (int l = 0; l < u.s.n_layers; l++) memset(backend_states(g.b)[l], 0xff, state_size(&u, l) * sizeof(float));
    backend_sync_to_host(g.b);
    for (int k = 0; k < MAXROWS; k++) expect_row(&u, g.b, k, -1, "zero_states");
    side_free(&c);
    side_free(&g);
    setup_free(&u);
}

// ---------------------------------------------------------------------------------------
// backend_free gives back every byte of device memory the backend took: training, a
// scorer made from it (evaluation during training makes one each time), and the step
// exchange's buffers. Exact on the emulation; within 2 MiB (allocation granularity) on
// a GPU, where the driver may keep pools.

static size_t device_free_bytes(void) {
    size_t free_b = 0, total = 0;
    expect_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    expect_cuda(cudaMemGetInfo(&free_b, &total), "cudaMemGetInfo");
    return free_b;
}

Test(cuda_backend, free_gives_back_all_device_memory) {
    need_gpu("cuda_backend::free_gives_back_all_device_memory");
    spec sp = make_spec("5", "6,5", &LOSSES[4]);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    side g;
    side_make(&g, &u, BACKEND_CUDA, 1, 0);  // (the first backend also sets up the context)
    side_free(&g);
    const size_t before = device_free_bytes();
    for (int round = 0; round < 3; round++) {
        side_make(&g, &u, BACKEND_CUDA, 1, 0);
        double losses[N_STEPS];
        run_steps(&u, &g, losses);
        backend *scorer = backend_create_scorer(g.b, EVAL_ROWS);
        int32_t x[EVAL_ROWS] = {0};
        backend_feed(scorer, EVAL_ROWS, x);
        backend_free(scorer);
        side_free(&g);
    }
    const size_t after = device_free_bytes();
    const double lost = (double)before - (double)after, allowed = cuda_emulated() ? 0.0 : 2.0 * (1 << 20);
    cr_expect(lost <= allowed, "3 rounds of create, train, score, free lost %.0f bytes of device memory (%zu free before, "
              "%zu after)", lost, before, after);
    setup_free(&u);
}

// ---------------------------------------------------------------------------------------
// Runs everywhere: --device auto is CUDA exactly when a usable GPU exists.

Test(backend_device, auto_is_cuda_iff_a_gpu_is_usable) {
    char why[256] = "";
    const int n = cuda_usable_devices(why, (int)sizeof why);
    const backend_device want = n > 0 ? BACKEND_CUDA : BACKEND_CPU;
    cr_log_info("usable GPUs: %d%s%s", n, n > 0 ? "" : ": ", n > 0 ? "" : why);
    cr_expect_eq(backend_choose_device("auto", 0, 0), want, "auto with %d usable GPUs", n);
    cr_expect_eq(backend_current_device(), want);
    // one GPU per local rank: local rank 3 needs a fourth GPU
    cr_expect_eq(backend_choose_device("auto", 3, 0), n > 3 ? BACKEND_CUDA : BACKEND_CPU, "auto, local rank 3");
    cr_expect_eq(backend_choose_device("cpu", 0, 0), BACKEND_CPU);
    cr_expect_eq(backend_current_device(), BACKEND_CPU);
    cr_expect_str_eq(backend_device_name(BACKEND_CUDA), "cuda");
    cr_expect_str_eq(backend_device_name(BACKEND_CPU), "cpu");
}

// ---------------------------------------------------------------------------------------
// The step's counters (backend_counters): what a step issues, counted exactly (no timing).

Test(cuda_backend, counters_count_the_step) {
    need_gpu("cuda_backend counters");
    const loss_spec ls = {"cross-entropy", "linear", "0", NULL};
    spec sp = make_spec("shared", "6", &ls);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    side c, g;
    side_make(&c, &u, BACKEND_CPU, 1, 0);
    side_make(&g, &u, BACKEND_CUDA, 1, 0);
    backend_counters k;
    cr_expect_eq(backend_counters_get(c.b, &k), 0, "the CPU backend keeps no counters");
    cr_assert_eq(backend_counters_get(g.b, &k), 1);
    cr_expect_eq(k.steps, 0);
    cr_expect_eq(k.kernels, 0, "set-up is not a step");
    for (int t = 0; t < 3; t++) backend_train_step(g.b, MAXROWS, X, Y, NEG, K, SCALE, STEP + t);
    cr_assert_eq(backend_counters_get(g.b, &k), 1);
    cr_expect_eq(k.steps, 3);
    cr_expect(k.kernels > 0 && k.kernels % 3 == 0, "%lld kernels in 3 equal steps", (long long)k.kernels);
    cr_expect(k.blas_calls > 0 && k.blas_calls % 3 == 0, "%lld cuBLAS calls in 3 equal steps", (long long)k.blas_calls);
    cr_expect(k.copies_h2d >= 3 && k.bytes_h2d > 0, "%lld uploads", (long long)k.copies_h2d);
    cr_expect(k.host_us >= 0.0);
    cr_log_info("per step: %lld kernels, %lld cuBLAS calls, %lld uploads (%lld bytes), %lld downloads, %lld waits",
                (long long)k.kernels / 3, (long long)k.blas_calls / 3, (long long)k.copies_h2d / 3,
                (long long)k.bytes_h2d / 3, (long long)k.copies_d2h / 3, (long long)k.host_waits / 3);
    side_free(&c);
    side_free(&g);
    setup_free(&u);
}

// The loss a step late: the same bits as at once, one step later, and no host wait in a
// step once the buffers have their sizes (the step's only wait was the loss's download).
Test(cuda_backend, late_loss_is_the_same_one_step_later) {
    need_gpu("cuda_backend late loss");
    const loss_spec ls = {"cross-entropy", "linear", "1", NULL};
    spec sp = make_spec("shared", "6", &ls);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    side now, late;
    side_make(&now, &u, BACKEND_CUDA, 1, 0);
    side_make(&late, &u, BACKEND_CUDA, 1, 0);
    cr_assert_eq(backend_set_loss_late(late.b), 1);
    enum { STEPS = 4 };
    double at_once[STEPS], later[STEPS];
    backend_counters k1, k2;
    for (int t = 0; t < STEPS; t++) {
        at_once[t] = backend_train_step(now.b, MAXROWS, X, Y, NEG, K, SCALE, STEP + t);
        later[t] = backend_train_step(late.b, MAXROWS, X, Y, NEG, K, SCALE, STEP + t);
        if (t == 0) backend_counters_get(late.b, &k1);
    }
    backend_counters_get(late.b, &k2);
    cr_expect_eq(later[0], 0.0, "no step before the first");
    for (int t = 1; t < STEPS; t++)
        cr_expect_eq(memcmp(&later[t], &at_once[t - 1], sizeof(double)), 0, "step %d: %.17g late, %.17g at once", t - 1,
                     later[t], at_once[t - 1]);
    const double last = backend_take_loss(late.b);
    cr_expect_eq(memcmp(&last, &at_once[STEPS - 1], sizeof(double)), 0, "the last step: %.17g late, %.17g at once",
                 last, at_once[STEPS - 1]);
    cr_expect_eq(backend_take_loss(late.b), 0.0, "nothing pending after the take");
    cr_expect_eq(k2.host_waits - k1.host_waits, 0, "%lld host waits in steps 2-%d", (long long)(k2.host_waits - k1.host_waits),
                 STEPS);
    backend_sync_to_host(now.b);
    backend_sync_to_host(late.b);
    expect_same_bits(&u, "late loss", &now, &late);
    side_free(&now);
    side_free(&late);
    setup_free(&u);
}

// ---------------------------------------------------------------------------------------
// The GPU's negatives: exactly the host sampler's, draw for draw.

Test(cuda_sampler, device_draws_equal_the_cpu_sampler) {
    need_gpu("cuda_sampler");
    enum { N = 1009, KMAX = 5000 };
    int64_t support[N];
    for (int i = 0; i < N; i++) support[i] = i % 17 == 0 ? 0 : 1 + (i * 7919) % 503;  // some never drawn
    alias_table t;
    alias_build(&t, support, N, 0.75);
    cr_assert_eq(backend_choose_device("cuda", 0, 0), BACKEND_CUDA);
    device_sampler *ds = device_sampler_create(&t, KMAX);
    const uint64_t steps[] = {0, 1, 17, 123456, (1ull << 40) + 3};
    const int32_t ks[] = {KMAX, 1, 2048, 0, 777};
    int32_t *cpu = malloc(KMAX * sizeof *cpu), *gpu = malloc(KMAX * sizeof *gpu);
    cr_assert(cpu && gpu);
    for (int c = 0; c < 5; c++) {
        alias_draw_step(&t, 42, steps[c], ks[c], cpu);
        const int32_t *d = device_sampler_draw(ds, 0, 42, steps[c], ks[c], NULL);
        if (ks[c]) expect_cuda(cudaMemcpy(gpu, d, (size_t)ks[c] * sizeof *gpu, cudaMemcpyDeviceToHost), "download");
        int first = -1;
        for (int k = 0; k < ks[c] && first < 0; k++)
            if (cpu[k] != gpu[k]) first = k;
        cr_expect_eq(first, -1, "step %llu: draw %d is %d on the GPU, %d on the CPU", (unsigned long long)steps[c],
                     first, first >= 0 ? gpu[first] : 0, first >= 0 ? cpu[first] : 0);
    }
    free(cpu);
    free(gpu);
    device_sampler_free(ds);
    alias_free(&t);
}

// ---------------------------------------------------------------------------------------
// The step's negatives and index lists built on the GPU (backend_draw_negatives): the
// same negatives, the same distinct rows in the same order, and bitwise the same loss,
// gradients and updated state as the host's lists (which the parity tests above check
// against the CPU). The row ids prove the distinct-item list; by's gradient (column sums
// of each item's columns, no product) the columns of each item; E's or the shared Wy's
// input rows the input segments; the loss each column's slot and log q.

static void expect_same_grads(const char *ctx, const row_grads *h, const row_grads *d) {
    cr_assert(h && d);
    cr_assert_eq(d->n, h->n, "%s: %d rows from the device's lists, %d from the host's", ctx, d->n, h->n);
    for (int k = 0; k < h->n; k++)
        cr_expect_eq(d->rows[k], h->rows[k], "%s: row %d is item %d (device lists), %d (host)", ctx, k, d->rows[k],
                     h->rows[k]);
    const size_t n = (size_t)h->n * h->width;
    float *gh = device_to_host(h->grad, n), *gd = device_to_host(d->grad, n);
    cr_expect(memcmp(gh, gd, n * sizeof(float)) == 0, "%s: the gradients differ", ctx);
    free(gh);
    free(gd);
}

static void device_lists_case(const char *emb, const loss_spec *ls) {
    spec sp = make_spec(emb, "6", ls);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    side h, d;
    side_make(&h, &u, BACKEND_CUDA, 1, 0);
    side_make(&d, &u, BACKEND_CUDA, 1, 0);
    alias_table t;
    alias_build(&t, u.support, N_ITEMS, u.c.sample_alpha);
    cr_assert_eq(backend_draw_negatives(d.b, &t), 1, "one rank: the CUDA backend draws the negatives");
    rng_state r;
    rng_state_seed(&r, 7);
    for (int step = 0; step < 6; step++) {
        const int M = step == 5 ? MAXROWS - 1 : MAXROWS;
        int32_t x[MAXROWS], y[MAXROWS], neg[K];
        for (int i = 0; i < M; i++) {  // few items: repeats among inputs, targets and negatives
            x[i] = (int32_t)(rng_next_u64(&r) % 6);
            y[i] = (int32_t)(rng_next_u64(&r) % 6);
        }
        alias_draw_step(&t, u.c.seed, (uint64_t)step, K, neg);
        const double lh = backend_gradient_step(h.b, M, x, y, neg, K, SCALE, step);
        const double ld = backend_gradient_step(d.b, M, x, y, NULL, K, SCALE, step);
        char ctx[300];
        snprintf(ctx, sizeof ctx, "%s, %s logq %s, step %d", emb, ls->loss, ls->logq, step);
        cr_expect(memcmp(&lh, &ld, sizeof lh) == 0, "%s: loss %.17g (device lists), %.17g (host)", ctx, ld, lh);
        const backend_grads gh = backend_gradients(h.b), gd = backend_gradients(d.b);
        expect_same_grads(ctx, gh.Wy, gd.Wy);
        expect_same_grads(ctx, gh.by, gd.by);
        if (gh.E) expect_same_grads(ctx, gh.E, gd.E);
        float *dh = device_to_host(gh.dense, u.s.n_dense), *dd = device_to_host(gd.dense, u.s.n_dense);
        cr_expect(memcmp(dh, dd, u.s.n_dense * sizeof(float)) == 0, "%s: dense gradients differ", ctx);
        free(dh);
        free(dd);
        backend_apply_update(h.b, M, NULL, NULL, NULL);
        backend_apply_update(d.b, M, NULL, NULL, NULL);
        if (step == 1) {
            backend_move_rows(h.b, LANES_PLAN, MAXROWS);
            backend_move_rows(d.b, LANES_PLAN, MAXROWS);
        }
    }
    backend_sync_to_host(h.b);
    backend_sync_to_host(d.b);
    expect_same_bits(&u, "device lists", &h, &d);
    alias_free(&t);
    side_free(&h);
    side_free(&d);
    setup_free(&u);
}

Test(cuda_backend, device_index_lists_equal_the_hosts) {
    need_gpu("cuda_backend device index lists");
    const char *embs[] = {"onehot", "shared", "5"};
    for (int g = 0; g < 2; g++) {  // the sort's keys in shared memory (as runs have them), then in global
        k_step_lists_keys_in_shared(!g);
        for (int e = 0; e < 3; e++)
            for (int l = 0; l < 2; l++) device_lists_case(embs[e], &LOSSES[l]);  // cross-entropy, logq 0 and 1
    }
    k_step_lists_keys_in_shared(1);
}

// ---------------------------------------------------------------------------------------
// One CUDA graph per full step (1 rank, device-built lists, late losses): the same bits
// as the plain stream (GRUREC_CUDA_GRAPHS=0): every loss, and the parameters, optimizer
// state and hidden states after full steps with row moves (carried and moved by the next
// graph's first kernel), a short step in between (plain: the owed carry settled first,
// its move swapping the state buffers, so the graphs are captured again), a sync to the
// host between steps, and full steps again.

static const int32_t PLANS[3][MAXROWS] = {{1, -1, 3, -1}, {0, 2, -1, 3}, {3, 2, 1, 0}};

static void graph_run(const setup *u, const alias_table *t, int graphs, double *losses, int steps,
                      backend_counters *k, side *sd) {
    setenv("GRUREC_CUDA_GRAPHS", graphs ? "1" : "0", 1);
    side_make(sd, u, BACKEND_CUDA, 1, 0);
    unsetenv("GRUREC_CUDA_GRAPHS");
    cr_assert_eq(backend_draw_negatives(sd->b, t), 1);
    cr_assert_eq(backend_set_loss_late(sd->b), 1);
    rng_state r;
    rng_state_seed(&r, 5);
    for (int step = 0; step < steps; step++) {
        const int M = step == 5 ? MAXROWS - 1 : MAXROWS;  // a short step: plain
        int32_t x[MAXROWS], y[MAXROWS];
        for (int i = 0; i < M; i++) {
            x[i] = (int32_t)(rng_next_u64(&r) % 7);
            y[i] = (int32_t)(rng_next_u64(&r) % 7);
        }
        losses[step] = backend_gradient_step(sd->b, M, x, y, NULL, K, SCALE, 100 + step);
        backend_apply_update(sd->b, M, NULL, NULL, NULL);
        if (step % 3 != 2) backend_move_rows(sd->b, PLANS[step % 3], step % 2 ? MAXROWS : 2);
        if (step == 3) backend_sync_to_host(sd->b);  // (the owed carry settled, then graphs go on)
    }
    losses[steps] = backend_take_loss(sd->b);
    backend_counters_get(sd->b, k);
    backend_sync_to_host(sd->b);
}

static void graph_case(const char *emb, const char *layers, const loss_spec *ls) {
    need_gpu("cuda_graph");
    spec sp = make_spec(emb, layers, ls);  // (dropout on: its step comes from device memory)
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    alias_table t;
    alias_build(&t, u.support, N_ITEMS, u.c.sample_alpha);
    enum { STEPS = 9 };
    double lp[STEPS + 1], lg[STEPS + 1];
    backend_counters kp, kg;
    side p, g;
    graph_run(&u, &t, 0, lp, STEPS, &kp, &p);
    graph_run(&u, &t, 1, lg, STEPS, &kg, &g);
    char ctx[300];
    snprintf(ctx, sizeof ctx, "graphs, %s", u.name);
    for (int s = 0; s <= STEPS; s++)
        cr_expect(memcmp(&lp[s], &lg[s], sizeof(double)) == 0, "%s: loss %d: %.17g plain, %.17g graph", ctx, s, lp[s],
                  lg[s]);
    expect_same_bits(&u, ctx, &p, &g);
    cr_expect_eq(kp.graph_launches, 0, "%s: GRUREC_CUDA_GRAPHS=0 launches none", ctx);
    cr_expect_eq(kg.graph_launches, STEPS - 1, "%s: %lld graph launches, one per full step", ctx,
                 (long long)kg.graph_launches);
    cr_log_info("%s: %lld graph captures", ctx, (long long)kg.graph_captures);
    cr_expect(kg.graph_captures >= 2, "%s: %lld captures (one per loss slot, again after a swap of the states)", ctx,
              (long long)kg.graph_captures);
    cr_expect(kg.kernels < kp.kernels && kg.graph_kernel_nodes > 0, "%s: %lld kernels outside graphs, %lld in them",
              ctx, (long long)kg.kernels, (long long)kg.graph_kernel_nodes);
    cr_expect_eq(kg.graph_blas_nodes + kg.blas_calls, kp.blas_calls, "%s: and its cuBLAS calls", ctx);
    cr_expect_eq(kg.host_waits, kp.host_waits, "%s: %lld host waits with graphs, %lld without", ctx,
                 (long long)kg.host_waits, (long long)kp.host_waits);
    alias_free(&t);
    side_free(&p);
    side_free(&g);
    setup_free(&u);
}

Test(cuda_graph, graph_steps_equal_the_plain_stream_bitwise) {
    graph_case("shared", "6", &LOSSES[0]);
    graph_case("onehot", "6,5", &LOSSES[1]);
    graph_case("5", "6,5", &LOSSES[4]);
}

// ---------------------------------------------------------------------------------------
// Sharded item tables (src/dist/tables_sharded.c): a backend created with a step table
// (model_shape's table_rows) and given step-table rows as ids trains as the backend of the
// whole tables does on the items, bit for bit on the same device: the same loss (logq
// read through backend_step_items), the same gradients brought to the host
// (backend_host_gradients: the rows are the step table's, mapped back to items; the
// rows alone where not asked for the dense), and the same dense update. It keeps no
// Adagrad state of the tables (the host's).

static void step_table_case(const char *emb, const loss_spec *ls) {
    const spec sp = make_spec(emb, "6", ls);
    setup u;
    setup_make(&u, &sp, N_ITEMS, MAXROWS, 42);
    const char *ctx = u.name;
    side whole;
    side_make(&whole, &u, BACKEND_CUDA, 1, 0);
    // the step table as sh_fetch builds it: targets, negatives, inputs, each item once
    enum { T = 2 * MAXROWS + K };
    int32_t items[T], bx[MAXROWS], by[MAXROWS], bneg[K];
    int n = 0;
    const int32_t *ids[3] = {Y, NEG, X};
    int32_t *rows[3] = {by, bneg, bx};
    const int counts[3] = {MAXROWS, K, MAXROWS};
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < counts[a]; i++) {
            int r = 0;
            while (r < n && items[r] != ids[a][i]) r++;
            if (r == n) items[n++] = ids[a][i];
            rows[a][i] = r;
        }
    model_shape ts = u.s;  // the step table's tensors, and the backend's shape
    ts.n_items = T;
    model_tensors t;
    tensors_alloc(&t, &ts);
    memcpy(t.dense, u.ref.dense, u.s.n_dense * sizeof(float));
    const int H = u.s.hid[u.s.n_layers - 1], ew = u.s.emb_width;
    for (int k = 0; k < n; k++) {
        memcpy(t.Wy + (size_t)k * H, u.ref.Wy + (size_t)items[k] * H, (size_t)H * sizeof(float));
        t.by[k] = u.ref.by[items[k]];
        if (t.E) memcpy(t.E + (size_t)k * ew, u.ref.E + (size_t)items[k] * ew, (size_t)ew * sizeof(float));
    }
    model_shape bs = u.s;
    bs.table_rows = T;
    backend *sb = backend_create(&u.c, &bs, &t, MAXROWS, 1, 0, u.support);
    for (int l = 0; l < u.s.n_layers; l++)
        memcpy(backend_states(sb)[l], u.states0[l], state_size(&u, l) * sizeof(float));
    backend_sync_to_device(sb);
    backend_step_items(sb, items);
    backend_put_table_rows(sb, n);
    float *oa[N_OPT];
    size_t on[N_OPT];
    backend_optim_arrays(sb, oa, on);
    for (int k = 2; k < N_OPT; k++) cr_expect_eq(on[k], 0, "%s: the step-table backend keeps %s", ctx, OPT_NAMES[k]);

    backend_clear_gradients(whole.b);
    backend_clear_gradients(sb);
    const double lw = backend_gradient_step(whole.b, MAXROWS, X, Y, NEG, K, SCALE, STEP);
    const double ls_ = backend_gradient_step(sb, MAXROWS, bx, by, bneg, K, SCALE, STEP);
    cr_expect(lw == ls_, "%s: loss %.17g from the step table, %.17g from the whole tables", ctx, ls_, lw);
    const backend_grads gw = backend_gradients(whole.b), gs = backend_host_gradients(sb, 1);
    float *dw = device_to_host(gw.dense, u.s.n_dense);
    cr_expect(memcmp(dw, gs.dense, u.s.n_dense * sizeof(float)) == 0, "%s: dense gradients differ", ctx);
    const row_grads *rw[3] = {gw.Wy, gw.by, gw.E}, *rs[3] = {gs.Wy, gs.by, gs.E};
    const char *names[3] = {"Wy", "by", "E"};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(rw[k] != NULL, rs[k] != NULL, "%s: %s gradients on one backend only", ctx, names[k]);
        if (!rw[k]) continue;
        cr_assert_eq(rs[k]->n, rw[k]->n, "%s: %s: %d rows from the step table, %d", ctx, names[k], rs[k]->n, rw[k]->n);
        for (int r = 0; r < rw[k]->n; r++)
            cr_expect_eq(items[rs[k]->rows[r]], rw[k]->rows[r], "%s: %s gradient row %d: item %d, not %d", ctx,
                         names[k], r, (int)items[rs[k]->rows[r]], (int)rw[k]->rows[r]);
        const size_t m = (size_t)rw[k]->n * rw[k]->width;
        float *gh = device_to_host(rw[k]->grad, m);
        cr_expect(memcmp(gh, rs[k]->grad, m * sizeof(float)) == 0, "%s: %s row gradients differ", ctx, names[k]);
        free(gh);
    }
    const backend_grads rows_only = backend_host_gradients(sb, 0);
    cr_expect(rows_only.dense == NULL && rows_only.Wy->n == gs.Wy->n, "%s: the rows alone: dense %p, %d Wy rows", ctx,
              (const void *)rows_only.dense, rows_only.Wy->n);
    backend_update_dense(whole.b, NULL, 0, 0, u.s.n_dense);
    backend_update_dense(sb, NULL, 0, 0, u.s.n_dense);
    backend_end_step(whole.b, MAXROWS);
    backend_end_step(sb, MAXROWS);
    backend_sync_to_host(whole.b);
    backend_sync_to_host(sb);
    cr_expect(memcmp(whole.t.dense, t.dense, u.s.n_dense * sizeof(float)) == 0, "%s: dense parameters differ", ctx);
    cr_expect(memcmp(whole.t.dense, u.ref.dense, u.s.n_dense * sizeof(float)) != 0, "%s: no dense update", ctx);
    for (int l = 0; l < u.s.n_layers; l++)
        cr_expect(memcmp(backend_states(whole.b)[l], backend_states(sb)[l], state_size(&u, l) * sizeof(float)) == 0,
                  "%s: hidden state of layer %d differs", ctx, l);
    free(dw);
    backend_free(sb);
    tensors_free(&t);
    side_free(&whole);
    setup_free(&u);
}

Test(cuda_sharded, step_table_trains_as_the_whole_tables) {
    need_gpu("cuda_sharded step table");
    const char *embs[] = {"onehot", "shared", "5"};
    for (int e = 0; e < 3; e++)
        for (int l = 0; l < 2; l++) step_table_case(embs[e], &LOSSES[l]);  // cross-entropy, logq 0 and 1
}
