// The GRU cell (src/model/gru.c): gru_forward / gru_backward.
//
//  - reference values: tests/reference/gru_ref.txt, written by gru_ref.py (Python, double,
//    from the formulas of gru.h alone, gradients derived by hand in the script) for M = 2
//    rows and H = 2, 3. Every output (h_new, gates, rh, dxw, dU, db) must match to
//    |got - ref| <= 2e-6 |ref| + 2e-7. Also: the bias is added into xw in place, and
//    dU / db are ACCUMULATED (pre-filled with non-zero values before the call);
//  - finite differences: a double-precision cell written in this file from the formulas;
//    loss = sum(w * h_new) with random w, so dh_new = w. The float dxw, dU and db are
//    compared with central differences of the double cell (h = 1e-6, error ~1e-10) for
//    (M, H) = (3, 4), (5, 7), (6, 17). Tolerance per element: |g - fd| <= 2e-6 + 2e-5 |fd|
//    (observed worst ~1e-7);
//  - the forward pass against the double cell, rows independent of each other (M rows at
//    once = M calls with one row), zero previous state, accumulation over two calls.
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gru.h"
#include "data/rng.h"

// ---------------------------------------------------------------------------------------
// Double-precision reference cell (straight from the formulas of gru.h).

static double sig(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

// xw is NOT modified (the bias is added to a copy). h_new: [M x H]; gates [M x 3H] or NULL.
static void ref_cell(int M, int H, const double *xw, const double *U, const double *b, const double *h,
                     double *h_new, double *gates) {
    const int H3 = 3 * H;
    double r[64], z[64], rh[64];
    for (int i = 0; i < M; i++) {
        const double *a = xw + (size_t)i * H3, *hi = h + (size_t)i * H;
        for (int k = 0; k < H; k++) {
            double sr = a[k] + b[k], sz = a[H + k] + b[H + k];
            for (int m = 0; m < H; m++) {
                sr += hi[m] * U[m * H3 + k];
                sz += hi[m] * U[m * H3 + H + k];
            }
            r[k] = sig(sr);
            z[k] = sig(sz);
            rh[k] = r[k] * hi[k];
        }
        for (int k = 0; k < H; k++) {
            double sc = a[2 * H + k] + b[2 * H + k];
            for (int m = 0; m < H; m++) sc += rh[m] * U[m * H3 + 2 * H + k];
            double c = tanh(sc);
            h_new[(size_t)i * H + k] = (1.0 - z[k]) * hi[k] + z[k] * c;
            if (gates) {
                gates[(size_t)i * H3 + k] = r[k];
                gates[(size_t)i * H3 + H + k] = z[k];
                gates[(size_t)i * H3 + 2 * H + k] = c;
            }
        }
    }
}

static double ref_loss(int M, int H, const double *xw, const double *U, const double *b, const double *h,
                       const double *w) {
    double hn[64 * 64];
    ref_cell(M, H, xw, U, b, h, hn, NULL);
    double L = 0;
    for (int k = 0; k < M * H; k++) L += w[k] * hn[k];
    return L;
}

// ---------------------------------------------------------------------------------------
// Small helpers

static float *fvec(size_t n) {
    float *v = calloc(n ? n : 1, sizeof *v);
    cr_assert(v);
    return v;
}

static double *dvec(size_t n) {
    double *v = calloc(n ? n : 1, sizeof *v);
    cr_assert(v);
    return v;
}

static void fill_uniform(rng_state *r, float *v, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_next_float(r);
}

static void to_double(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

// ---------------------------------------------------------------------------------------
// 1. Reference values from gru_ref.py

#define REF_MAX 64
typedef struct {
    char name[16];
    int M, H;
    double xw[REF_MAX], U[REF_MAX], b[REF_MAX], h[REF_MAX], dh[REF_MAX];
    double h_new[REF_MAX], gates[REF_MAX], rh[REF_MAX], dxw[REF_MAX], dU[REF_MAX], db[REF_MAX];
} gru_ref;

static double *ref_field(gru_ref *c, const char *key, int *expect_n) {
    const int M = c->M, H = c->H;
    struct { const char *key; double *v; int n; } t[] = {
        {"xw", c->xw, M * 3 * H},   {"U", c->U, H * 3 * H},         {"b", c->b, 3 * H},
        {"h", c->h, M * H},         {"dh", c->dh, M * H},           {"h_new", c->h_new, M * H},
        {"gates", c->gates, M * 3 * H}, {"rh", c->rh, M * H},       {"dxw", c->dxw, M * 3 * H},
        {"dU", c->dU, H * 3 * H},   {"db", c->db, 3 * H},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].key, key) == 0) {
            *expect_n = t[i].n;
            return t[i].v;
        }
    return NULL;
}

static int read_refs(gru_ref *cases, int max) {
    const char *path = GRUREC_TESTS_DIR "/reference/gru_ref.txt";
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    int n = 0;
    char word[32];
    while (fscanf(f, "%31s", word) == 1) {
        if (word[0] == '#') {  // comment: skip the rest of the line
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        cr_assert_str_eq(word, "case", "%s: expected 'case', got '%s'", path, word);
        cr_assert_lt(n, max);
        gru_ref *c = &cases[n++];
        memset(c, 0, sizeof *c);
        cr_assert_eq(fscanf(f, "%15s %d %d", c->name, &c->M, &c->H), 3);
        cr_assert(c->M * 3 * c->H <= REF_MAX && c->H * 3 * c->H <= REF_MAX);
        int fields = 0;
        for (;;) {
            cr_assert_eq(fscanf(f, "%31s", word), 1, "%s: truncated case %s", path, c->name);
            if (strcmp(word, "end") == 0) break;
            int count, expect;
            cr_assert_eq(fscanf(f, "%d", &count), 1);
            double *v = ref_field(c, word, &expect);
            cr_assert(v, "%s: unknown key %s", path, word);
            cr_assert_eq(count, expect, "%s: %s of case %s has %d values, expected %d", path, word, c->name, count,
                         expect);
            for (int k = 0; k < count; k++) cr_assert_eq(fscanf(f, "%lf", &v[k]), 1);
            fields++;
        }
        cr_assert_eq(fields, 11, "case %s: %d fields", c->name, fields);
    }
    fclose(f);
    return n;
}

static void expect_close(const char *what, const char *name, const float *got, const double *want, int n,
                         double rel, double abs_tol) {
    for (int k = 0; k < n; k++)
        cr_expect(fabs(got[k] - want[k]) <= rel * fabs(want[k]) + abs_tol, "case %s %s[%d]: got %.9g expected %.9g",
                  name, what, k, got[k], want[k]);
}

Test(gru, reference_values) {
    gru_ref cases[4];
    int n = read_refs(cases, 4);
    cr_assert_eq(n, 2, "expected 2 cases in gru_ref.txt, got %d", n);
    for (int ci = 0; ci < n; ci++) {
        const gru_ref *c = &cases[ci];
        const int M = c->M, H = c->H, H3 = 3 * H;
        float xw[REF_MAX], xw0[REF_MAX], U[REF_MAX], b[REF_MAX], h[REF_MAX], dh[REF_MAX];
        float gates[REF_MAX], rh[REF_MAX], hn[REF_MAX], dxw[REF_MAX], drh[REF_MAX], dU[REF_MAX], db[REF_MAX];
        for (int k = 0; k < M * H3; k++) xw[k] = xw0[k] = (float)c->xw[k];
        for (int k = 0; k < H * H3; k++) U[k] = (float)c->U[k];
        for (int k = 0; k < H3; k++) b[k] = (float)c->b[k];
        for (int k = 0; k < M * H; k++) h[k] = (float)c->h[k], dh[k] = (float)c->dh[k];
        gru_forward(M, H, h, U, b, xw, gates, rh, hn);
        // The bias is added into xw in place (inputs are multiples of 1/16: exact sums).
        for (int i = 0; i < M; i++)
            for (int k = 0; k < H3; k++)
                cr_expect_eq(xw[i * H3 + k], xw0[i * H3 + k] + b[k], "case %s: xw[%d][%d] = %g, expected xw + b = %g",
                             c->name, i, k, xw[i * H3 + k], xw0[i * H3 + k] + b[k]);
        const double rel = 2e-6, abs_tol = 2e-7;
        expect_close("h_new", c->name, hn, c->h_new, M * H, rel, abs_tol);
        expect_close("gates", c->name, gates, c->gates, M * H3, rel, abs_tol);
        expect_close("rh", c->name, rh, c->rh, M * H, rel, abs_tol);

        // dU and db accumulate: pre-fill them with known values.
        double dU_want[REF_MAX], db_want[REF_MAX];
        for (int k = 0; k < H * H3; k++) {
            dU[k] = 0.25f - 0.0625f * (float)(k % 5);
            dU_want[k] = dU[k] + c->dU[k];
        }
        for (int k = 0; k < H3; k++) {
            db[k] = -0.5f + 0.125f * (float)k;
            db_want[k] = db[k] + c->db[k];
        }
        gru_backward(M, H, h, U, gates, rh, dh, dxw, drh, dU, db, 1);
        expect_close("dxw", c->name, dxw, c->dxw, M * H3, rel, abs_tol);
        expect_close("dU (accumulated onto a pre-filled buffer)", c->name, dU, dU_want, H * H3, rel, abs_tol);
        expect_close("db (accumulated onto a pre-filled buffer)", c->name, db, db_want, H3, rel, abs_tol);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Finite differences of a double-precision cell

typedef struct {
    int M, H;
    float *xw, *xw_in, *U, *b, *h, *w;      // inputs (xw_in: untouched copy of xw)
    float *gates, *rh, *hn, *dxw, *drh, *dU, *db;
} cell;

static void cell_make(cell *c, int M, int H, uint64_t seed) {
    const size_t H3 = 3 * (size_t)H;
    c->M = M;
    c->H = H;
    c->xw = fvec(M * H3);
    c->xw_in = fvec(M * H3);
    c->U = fvec(H * H3);
    c->b = fvec(H3);
    c->h = fvec((size_t)M * H);
    c->w = fvec((size_t)M * H);
    c->gates = fvec(M * H3);
    c->rh = fvec((size_t)M * H);
    c->hn = fvec((size_t)M * H);
    c->dxw = fvec(M * H3);
    c->drh = fvec((size_t)M * H);
    c->dU = fvec(H * H3);
    c->db = fvec(H3);
    rng_state r;
    rng_state_seed(&r, seed);
    fill_uniform(&r, c->xw_in, M * H3, -1.5f, 1.5f);
    fill_uniform(&r, c->U, H * H3, -0.8f, 0.8f);
    fill_uniform(&r, c->b, H3, -0.5f, 0.5f);
    fill_uniform(&r, c->h, (size_t)M * H, -1.0f, 1.0f);
    fill_uniform(&r, c->w, (size_t)M * H, -1.0f, 1.0f);
    memcpy(c->xw, c->xw_in, M * H3 * sizeof(float));
}

static void cell_free(cell *c) {
    free(c->xw); free(c->xw_in); free(c->U); free(c->b); free(c->h); free(c->w);
    free(c->gates); free(c->rh); free(c->hn); free(c->dxw); free(c->drh); free(c->dU); free(c->db);
}

// Runs the float forward + backward (dh_new = w) on C.
static void cell_run(cell *c) {
    const size_t H3 = 3 * (size_t)c->H;
    memcpy(c->xw, c->xw_in, c->M * H3 * sizeof(float));
    gru_forward(c->M, c->H, c->h, c->U, c->b, c->xw, c->gates, c->rh, c->hn);
    memset(c->dU, 0, c->H * H3 * sizeof(float));
    memset(c->db, 0, H3 * sizeof(float));
    gru_backward(c->M, c->H, c->h, c->U, c->gates, c->rh, c->w, c->dxw, c->drh, c->dU, c->db, 1);
}

typedef struct {
    double worst;  // worst |g - fd| / (atol + rtol |fd|)
    double worst_abs;
} fd_stats;

static void fd_compare(const char *what, int M, int H, int idx, double g, double fd, fd_stats *st) {
    const double atol = 2e-6, rtol = 2e-5;
    double err = fabs(g - fd), ratio = err / (atol + rtol * fabs(fd));
    if (ratio > st->worst) st->worst = ratio;
    if (err > st->worst_abs) st->worst_abs = err;
    cr_expect(ratio <= 1.0, "M=%d H=%d %s[%d]: analytic %.9g, finite difference %.9g", M, H, what, idx, g, fd);
}

static void fd_case(int M, int H, uint64_t seed) {
    cell c;
    cell_make(&c, M, H, seed);
    cell_run(&c);
    const size_t H3 = 3 * (size_t)H, nx = M * H3, nu = H * H3, nh = (size_t)M * H;
    double *xw = dvec(nx), *U = dvec(nu), *b = dvec(H3), *h = dvec(nh), *w = dvec(nh);
    to_double(xw, c.xw_in, nx);
    to_double(U, c.U, nu);
    to_double(b, c.b, H3);
    to_double(h, c.h, nh);
    to_double(w, c.w, nh);
    const double eps = 1e-6;
    fd_stats st = {0, 0};
    struct { const char *name; double *p; size_t n; const float *g; } groups[] = {
        {"dxw", xw, nx, c.dxw}, {"dU", U, nu, c.dU}, {"db", b, H3, c.db}};
    for (int gi = 0; gi < 3; gi++) {
        for (size_t k = 0; k < groups[gi].n; k++) {
            double *p = &groups[gi].p[k], keep = *p;
            *p = keep + eps;
            double lp = ref_loss(M, H, xw, U, b, h, w);
            *p = keep - eps;
            double lm = ref_loss(M, H, xw, U, b, h, w);
            *p = keep;
            fd_compare(groups[gi].name, M, H, (int)k, groups[gi].g[k], (lp - lm) / (2 * eps), &st);
        }
    }
    // The forward pass itself, against the double cell.
    double *hn = dvec(nh), *gates = dvec(M * H3);
    ref_cell(M, H, xw, U, b, h, hn, gates);
    for (size_t k = 0; k < nh; k++)
        cr_expect(fabs(c.hn[k] - hn[k]) <= 1e-6 * fabs(hn[k]) + 2e-7, "M=%d H=%d h_new[%zu]: %.9g vs %.9g", M, H, k,
                  c.hn[k], hn[k]);
    for (size_t k = 0; k < M * H3; k++)
        cr_expect(fabs(c.gates[k] - gates[k]) <= 1e-6 * fabs(gates[k]) + 2e-7, "M=%d H=%d gates[%zu]: %.9g vs %.9g",
                  M, H, k, c.gates[k], gates[k]);
    cr_log_info("gru fd M=%d H=%d: worst |g - fd| = %.3g (%.3g of the tolerance)", M, H, st.worst_abs, st.worst);
    free(xw); free(U); free(b); free(h); free(w); free(hn); free(gates);
    cell_free(&c);
}

Test(gru_fd, m3_h4) { fd_case(3, 4, 11); }
Test(gru_fd, m5_h7) { fd_case(5, 7, 12); }
Test(gru_fd, m6_h17) { fd_case(6, 17, 13); }

// ---------------------------------------------------------------------------------------
// 3. Properties

// Rows are independent: M rows at once give what M one-row calls give.
Test(gru, rows_are_independent) {
    const int M = 5, H = 7;
    cell c;
    cell_make(&c, M, H, 21);
    cell_run(&c);
    const size_t H3 = 3 * (size_t)H;
    float *dU1 = fvec(H * H3), *db1 = fvec(H3);  // accumulated over the one-row calls
    for (int i = 0; i < M; i++) {
        float xw[21], gates[21], rh[7], hn[7], dxw[21], drh[7];
        memcpy(xw, c.xw_in + i * H3, H3 * sizeof(float));
        gru_forward(1, H, c.h + i * H, c.U, c.b, xw, gates, rh, hn);
        gru_backward(1, H, c.h + i * H, c.U, gates, rh, c.w + i * H, dxw, drh, dU1, db1, 1);
        for (int k = 0; k < H; k++)
            cr_expect(fabs(hn[k] - c.hn[i * H + k]) <= 1e-6, "row %d h_new[%d]: %g vs %g", i, k, hn[k], c.hn[i * H + k]);
        for (size_t k = 0; k < H3; k++)
            cr_expect(fabs(dxw[k] - c.dxw[i * H3 + k]) <= 1e-6, "row %d dxw[%zu]: %g vs %g", i, k, dxw[k],
                      c.dxw[i * H3 + k]);
    }
    for (size_t k = 0; k < H * H3; k++)
        cr_expect(fabs(dU1[k] - c.dU[k]) <= 1e-5, "dU[%zu]: sum of rows %g vs batch %g", k, dU1[k], c.dU[k]);
    for (size_t k = 0; k < H3; k++)
        cr_expect(fabs(db1[k] - c.db[k]) <= 1e-5, "db[%zu]: sum of rows %g vs batch %g", k, db1[k], c.db[k]);
    free(dU1);
    free(db1);
    cell_free(&c);
}

// A zero previous state (a lane that starts a session): rh = 0, h' = z * c, and the
// recurrent weights get no gradient.
Test(gru, zero_state) {
    const int M = 3, H = 4;
    cell c;
    cell_make(&c, M, H, 31);
    memset(c.h, 0, (size_t)M * H * sizeof(float));
    cell_run(&c);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < H; k++) {
            const float *g = c.gates + i * 3 * H;
            cr_expect_eq(c.rh[i * H + k], 0.0f);
            cr_expect(fabs(c.hn[i * H + k] - g[H + k] * g[2 * H + k]) <= 1e-7, "h' = z c at row %d, %d", i, k);
            // with h = 0: the gate pre-activations are a + 0, so r = sigma(xw_r + b_r)
            double r = sig((double)c.xw_in[i * 3 * H + k] + c.b[k]);
            cr_expect(fabs(g[k] - r) <= 1e-6);
            cr_expect_eq(c.dxw[i * 3 * H + k], 0.0f, "no gradient through r when h = 0");
        }
    for (int k = 0; k < H * 3 * H; k++) cr_expect_eq(c.dU[k], 0.0f, "dU[%d] = %g with h = 0", k, c.dU[k]);
    cell_free(&c);
}

// Two backward calls accumulate: dU and db double, dxw does not.
Test(gru, backward_accumulates) {
    const int M = 4, H = 5;
    cell c;
    cell_make(&c, M, H, 41);
    cell_run(&c);
    const size_t H3 = 3 * (size_t)H;
    float *dU = fvec(H * H3), *db = fvec(H3), *dxw = fvec(M * H3);
    memcpy(dU, c.dU, H * H3 * sizeof(float));
    memcpy(db, c.db, H3 * sizeof(float));
    gru_backward(M, H, c.h, c.U, c.gates, c.rh, c.w, dxw, c.drh, dU, db, 1);
    for (size_t k = 0; k < H * H3; k++) cr_expect(fabs(dU[k] - 2 * c.dU[k]) <= 1e-6 * fabs(c.dU[k]) + 1e-7);
    for (size_t k = 0; k < H3; k++) cr_expect(fabs(db[k] - 2 * c.db[k]) <= 1e-6 * fabs(c.db[k]) + 1e-7);
    cr_expect(memcmp(dxw, c.dxw, M * H3 * sizeof(float)) == 0, "dxw is written, not accumulated");
    free(dU);
    free(db);
    free(dxw);
    cell_free(&c);
}

// Without accumulate, dU and db are overwritten: garbage in them does not leak through.
Test(gru, backward_overwrites) {
    const int M = 4, H = 5;
    cell c;
    cell_make(&c, M, H, 43);
    cell_run(&c);
    const size_t H3 = 3 * (size_t)H;
    float *dU = fvec(H * H3), *db = fvec(H3), *dxw = fvec(M * H3);
    for (size_t k = 0; k < H * H3; k++) dU[k] = 1e3f;
    for (size_t k = 0; k < H3; k++) db[k] = -1e3f;
    gru_backward(M, H, c.h, c.U, c.gates, c.rh, c.w, dxw, c.drh, dU, db, 0);
    cr_expect(memcmp(dU, c.dU, H * H3 * sizeof(float)) == 0, "dU equals a fresh accumulation into zeros");
    cr_expect(memcmp(db, c.db, H3 * sizeof(float)) == 0, "db equals a fresh accumulation into zeros");
    free(dU);
    free(db);
    free(dxw);
    cell_free(&c);
}
