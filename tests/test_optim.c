// Adagrad with optional momentum and the sparse row gradients (src/model/optim.c).
//
//  - adagrad_dense, two steps, without and with momentum (mu = 0.9), against values
//    computed by hand (the arithmetic is in the comments; lr = 0.1):
//        acc += g^2; step = lr g / sqrt(acc + 1e-6); v = mu v - step; p += v  (p -= step if mu = 0)
//    tolerance |got - want| <= 1e-6 |want| + 1e-7;
//  - row_grads: duplicate rows summed, rows in order of first touch, untouched rows of
//    the parameters / accumulators / momenta never change (bitwise), row_grads_clear
//    resets only the touched slots, a second step after a clear starts from zeroed rows;
//  - adagrad_rows equals adagrad_dense applied to just the touched rows (bitwise).
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/optim.h"

static void expect_vals(const char *what, const float *got, const double *want, int n) {
    for (int i = 0; i < n; i++)
        cr_expect(fabs(got[i] - want[i]) <= 1e-6 * fabs(want[i]) + 1e-7, "%s[%d]: got %.9g expected %.9g", what, i,
                  got[i], want[i]);
}

// p0 = [1, -2, 0.5, 0], g1 = [0.5, -1, 0, 2], g2 = [0.25, 2, -3, -2], lr = 0.1
static const float P0[4] = {1.0f, -2.0f, 0.5f, 0.0f};
static const float G1[4] = {0.5f, -1.0f, 0.0f, 2.0f};
static const float G2[4] = {0.25f, 2.0f, -3.0f, -2.0f};

Test(adagrad, dense_two_steps_no_momentum) {
    float p[4], acc[4] = {0};
    memcpy(p, P0, sizeof p);
    adagrad_dense(p, G1, acc, NULL, 4, 0.1f, 0.0f);
    // acc = [0.25, 1, 0, 4]
    // p0 = 1 - 0.1*0.5/sqrt(0.250001)  = 1 - 0.0999998      = 0.9000002
    // p1 = -2 + 0.1/sqrt(1.000001)     = -2 + 0.09999995    = -1.90000005
    // p2 = 0.5 (g = 0: no step)
    // p3 = 0 - 0.2/sqrt(4.000001)      = -0.0999999875
    const double acc1[4] = {0.25, 1.0, 0.0, 4.0};
    const double p1[4] = {0.9000001999994, -1.9000000499999625, 0.5, -0.09999998750000236};
    expect_vals("acc after step 1", acc, acc1, 4);
    expect_vals("p after step 1", p, p1, 4);
    adagrad_dense(p, G2, acc, NULL, 4, 0.1f, 0.0f);
    // acc = [0.3125, 5, 9, 8]
    // p0 = 0.9000002 - 0.025/sqrt(0.312501) = 0.9000002 - 0.04472129 = 0.85527891
    // p1 = -1.90000005 - 0.2/sqrt(5.000001) = -1.90000005 - 0.08944271 = -1.98944276
    // p2 = 0.5 + 0.3/sqrt(9.000001)         = 0.5 + 0.09999999          = 0.59999999
    // p3 = -0.0999999875 + 0.2/sqrt(8.000001) = -0.0999999875 + 0.07071067 = -0.02928931
    const double acc2[4] = {0.3125, 5.0, 9.0, 8.0};
    const double p2[4] = {0.8552789120034077, -1.9894427601556837, 0.599999994444445, -0.029289313800764563};
    expect_vals("acc after step 2", acc, acc2, 4);
    expect_vals("p after step 2", p, p2, 4);
}

Test(adagrad, dense_two_steps_momentum) {
    float p[4], acc[4] = {0}, v[4] = {0};
    memcpy(p, P0, sizeof p);
    adagrad_dense(p, G1, acc, v, 4, 0.1f, 0.9f);
    // v = 0.9*0 - step = -step: the first step equals the plain Adagrad step
    const double v1[4] = {-0.09999980000060002, 0.0999999500000375, 0.0, -0.09999998750000236};
    const double p1[4] = {0.9000001999994, -1.9000000499999625, 0.5, -0.09999998750000236};
    expect_vals("v after step 1", v, v1, 4);
    expect_vals("p after step 1", p, p1, 4);
    adagrad_dense(p, G2, acc, v, 4, 0.1f, 0.9f);
    // v0 = 0.9*(-0.0999998) - 0.04472129      = -0.13472111;  p0 = 0.9000002 - 0.13472111  = 0.76527909
    // v1 = 0.9*0.09999995 - 0.08944271        =  0.00055724;  p1 = -1.90000005 + 0.00055724 = -1.89944281
    // v2 = 0 + 0.09999999                      =  0.09999999;  p2 = 0.59999999
    // v3 = 0.9*(-0.0999999875) + 0.07071067   = -0.01928932;  p3 = -0.0999999875 - 0.01928932 = -0.11928930
    const double v2[4] = {-0.13472110799653225, 0.0005572448443127292, 0.09999999444444493, -0.019289315050764325};
    const double p2[4] = {0.7652790920028677, -1.8994428051556498, 0.599999994444445, -0.11928930255076668};
    const double acc2[4] = {0.3125, 5.0, 9.0, 8.0};
    expect_vals("v after step 2", v, v2, 4);
    expect_vals("p after step 2", p, p2, 4);
    expect_vals("acc after step 2", acc, acc2, 4);
}

// mu = 0 with a momentum buffer: the buffer is not used, the result is plain Adagrad.
Test(adagrad, dense_mu_zero_ignores_v) {
    float p[4], q[4], acc[4] = {0}, acc2[4] = {0}, v[4] = {7, 7, 7, 7};
    memcpy(p, P0, sizeof p);
    memcpy(q, P0, sizeof q);
    adagrad_dense(p, G1, acc, v, 4, 0.1f, 0.0f);
    adagrad_dense(q, G1, acc2, NULL, 4, 0.1f, 0.0f);
    cr_expect(memcmp(p, q, sizeof p) == 0);
    for (int i = 0; i < 4; i++) cr_expect_eq(v[i], 7.0f);
}

// ---------------------------------------------------------------------------------------
// Row gradients

enum { N_ITEMS = 10, W = 3 };

typedef struct {
    float p[N_ITEMS * W], acc[N_ITEMS * W], v[N_ITEMS * W];
} table;

// Distinctive values in every row (accumulators > 0, momenta != 0).
static void table_fill(table *t) {
    for (int i = 0; i < N_ITEMS * W; i++) {
        t->p[i] = 0.5f - 0.03125f * (float)i;
        t->acc[i] = 0.25f + 0.0625f * (float)(i % 7);
        t->v[i] = 0.01f * (float)((i % 5) - 2);
    }
}

static void expect_rows_unchanged(const table *a, const table *b, const int *touched, int n_touched) {
    for (int r = 0; r < N_ITEMS; r++) {
        int t = 0;
        for (int k = 0; k < n_touched; k++) t |= touched[k] == r;
        if (t) continue;
        cr_expect(memcmp(a->p + r * W, b->p + r * W, W * sizeof(float)) == 0, "untouched row %d: parameters changed", r);
        cr_expect(memcmp(a->acc + r * W, b->acc + r * W, W * sizeof(float)) == 0, "untouched row %d: accumulator changed", r);
        cr_expect(memcmp(a->v + r * W, b->v + r * W, W * sizeof(float)) == 0, "untouched row %d: momentum changed", r);
    }
}

Test(row_grads, duplicates_summed_untouched_rows_kept) {
    row_grads g;
    row_grads_init(&g, N_ITEMS, W, 4);
    cr_assert_eq(g.n, 0);
    for (int i = 0; i < N_ITEMS; i++) cr_assert_eq(g.slot[i], -1, "slot %d not -1 after init", i);

    const float a[W] = {0.5f, -1.0f, 0.25f}, b[W] = {0.25f, 2.0f, -0.75f}, c[W] = {-1.5f, 0.125f, 1.0f};
    float *r5 = row_grads_row(&g, 5);
    for (int k = 0; k < W; k++) cr_expect_eq(r5[k], 0.0f, "a row is zeroed the first time it is touched");
    for (int k = 0; k < W; k++) r5[k] += a[k];
    float *r2 = row_grads_row(&g, 2);
    for (int k = 0; k < W; k++) r2[k] += c[k];
    float *r5b = row_grads_row(&g, 5);  // row 5 again: the same gradient row
    cr_expect_eq(r5b, r5, "touching row 5 twice gives the same gradient row");
    for (int k = 0; k < W; k++) r5b[k] += b[k];

    cr_expect_eq(g.n, 2, "two distinct rows touched, n = %d", g.n);
    cr_expect_eq(g.rows[0], 5);
    cr_expect_eq(g.rows[1], 2);
    cr_expect_eq(g.slot[5], 0);
    cr_expect_eq(g.slot[2], 1);
    for (int i = 0; i < N_ITEMS; i++)
        if (i != 5 && i != 2) cr_expect_eq(g.slot[i], -1, "slot %d", i);
    for (int k = 0; k < W; k++) {
        cr_expect_eq(g.grad[k], a[k] + b[k], "duplicates summed: row 5 [%d] = %g", k, g.grad[k]);
        cr_expect_eq(g.grad[W + k], c[k]);
    }

    // The update touches rows 5 and 2 only, and equals the dense update of those rows.
    table before, t, want;
    table_fill(&before);
    t = before;
    want = before;
    adagrad_rows(t.p, t.acc, t.v, &g, 0.1f, 0.9f);
    float g5[W], g2[W];
    for (int k = 0; k < W; k++) g5[k] = a[k] + b[k], g2[k] = c[k];
    adagrad_dense(want.p + 5 * W, g5, want.acc + 5 * W, want.v + 5 * W, W, 0.1f, 0.9f);
    adagrad_dense(want.p + 2 * W, g2, want.acc + 2 * W, want.v + 2 * W, W, 0.1f, 0.9f);
    cr_expect(memcmp(&t, &want, sizeof t) == 0, "adagrad_rows == adagrad_dense on the touched rows");
    const int touched[2] = {5, 2};
    expect_rows_unchanged(&t, &before, touched, 2);
    for (int k = 0; k < W; k++) {
        cr_expect_neq(t.p[5 * W + k], before.p[5 * W + k], "touched row 5 changed");
        cr_expect_neq(t.acc[2 * W + k], before.acc[2 * W + k], "touched row 2's accumulator changed");
    }
    // the duplicate was applied once, with the summed gradient: acc += (a + b)^2
    for (int k = 0; k < W; k++)
        cr_expect(fabsf(t.acc[5 * W + k] - (before.acc[5 * W + k] + g5[k] * g5[k])) <= 1e-6f);

    // Clear: only the touched slots are reset (plant a sentinel in an untouched slot to
    // see that the clear does not sweep the whole table), then restore it.
    g.slot[8] = -7;
    row_grads_clear(&g);
    cr_expect_eq(g.n, 0);
    cr_expect_eq(g.slot[5], -1);
    cr_expect_eq(g.slot[2], -1);
    cr_expect_eq(g.slot[8], -7, "row_grads_clear touched an untouched slot");
    g.slot[8] = -1;
    for (int i = 0; i < N_ITEMS; i++) cr_expect_eq(g.slot[i], -1, "slot %d after clear", i);

    // A second step after the clear: the old gradient memory is re-used but zeroed.
    float *r7 = row_grads_row(&g, 7);
    cr_expect_eq(r7, g.grad, "first row of the new step takes slot 0");
    for (int k = 0; k < W; k++) cr_expect_eq(r7[k], 0.0f, "re-used slot zeroed");
    for (int k = 0; k < W; k++) r7[k] = b[k];
    float *r5c = row_grads_row(&g, 5);
    for (int k = 0; k < W; k++) cr_expect_eq(r5c[k], 0.0f, "row 5 starts from zero in the new step");
    for (int k = 0; k < W; k++) r5c[k] = c[k];
    cr_expect_eq(g.n, 2);
    cr_expect_eq(g.rows[0], 7);
    cr_expect_eq(g.rows[1], 5);
    table t2 = t, want2 = t;
    adagrad_rows(t2.p, t2.acc, t2.v, &g, 0.1f, 0.9f);
    adagrad_dense(want2.p + 7 * W, b, want2.acc + 7 * W, want2.v + 7 * W, W, 0.1f, 0.9f);
    adagrad_dense(want2.p + 5 * W, c, want2.acc + 5 * W, want2.v + 5 * W, W, 0.1f, 0.9f);
    cr_expect(memcmp(&t2, &want2, sizeof t2) == 0, "second step == adagrad_dense on rows 7 and 5");
    const int touched2[2] = {7, 5};
    expect_rows_unchanged(&t2, &t, touched2, 2);
    row_grads_free(&g);
}

// Without momentum (v = NULL) and with many rows up to the capacity.
Test(row_grads, rows_without_momentum_equal_dense) {
    row_grads g;
    row_grads_init(&g, N_ITEMS, W, N_ITEMS);
    const int order[6] = {9, 0, 4, 9, 3, 0};  // 9 and 0 twice
    float sum[N_ITEMS][W];
    memset(sum, 0, sizeof sum);
    for (int k = 0; k < 6; k++) {
        float *r = row_grads_row(&g, order[k]);
        for (int j = 0; j < W; j++) {
            float v = 0.125f * (float)(k + 1) * (j == 1 ? -1.0f : 1.0f);
            r[j] += v;
            sum[order[k]][j] += v;
        }
    }
    cr_expect_eq(g.n, 4);
    const int first[4] = {9, 0, 4, 3};
    for (int k = 0; k < 4; k++) cr_expect_eq(g.rows[k], first[k], "rows in order of first touch");
    table before, t, want;
    table_fill(&before);
    t = before;
    want = before;
    adagrad_rows(t.p, t.acc, NULL, &g, 0.05f, 0.0f);
    for (int k = 0; k < 4; k++)
        adagrad_dense(want.p + first[k] * W, sum[first[k]], want.acc + first[k] * W, NULL, W, 0.05f, 0.0f);
    cr_expect(memcmp(t.p, want.p, sizeof t.p) == 0);
    cr_expect(memcmp(t.acc, want.acc, sizeof t.acc) == 0);
    cr_expect(memcmp(t.v, before.v, sizeof t.v) == 0);
    expect_rows_unchanged(&t, &before, first, 4);
    row_grads_free(&g);
}

// An empty step changes nothing.
Test(row_grads, empty_step) {
    row_grads g;
    row_grads_init(&g, N_ITEMS, W, 2);
    table before, t;
    table_fill(&before);
    t = before;
    adagrad_rows(t.p, t.acc, t.v, &g, 0.1f, 0.9f);
    cr_expect(memcmp(&t, &before, sizeof t) == 0);
    row_grads_clear(&g);
    cr_expect_eq(g.n, 0);
    row_grads_free(&g);
}

// More distinct rows than the capacity is a code error (CHECK: exit 1).
Test(row_grads, over_capacity_fails, .exit_code = 1, .init = cr_redirect_stderr) {
    row_grads g;
    row_grads_init(&g, N_ITEMS, W, 2);
    row_grads_row(&g, 1);
    row_grads_row(&g, 2);
    row_grads_row(&g, 1);  // a duplicate does not count
    row_grads_row(&g, 3);
    cr_assert_fail("row_grads_row past the capacity returned");
}

// The rows of a shared table, updated part by part (each rank its slice of the union),
// give the bits of the whole update.
Test(parts, rows_in_parts_equal_whole) {
    const int64_t N = 40;
    const int W = 3, n = 13;
    row_grads g;
    row_grads_init(&g, N, W, n);
    for (int k = 0; k < n; k++) {  // rows 37, 34, ... in touch order, each with its own gradient
        float *r = row_grads_row(&g, (int32_t)((37 - 3 * k + 3 * N) % N));
        for (int j = 0; j < W; j++) r[j] = 0.1f * (float)(k + 1) - 0.05f * (float)j;
    }
    float p1[40 * 3], a1[40 * 3], v1[40 * 3], p2[40 * 3], a2[40 * 3], v2[40 * 3];
    for (int i = 0; i < N * W; i++) p1[i] = p2[i] = 0.01f * (float)i, a1[i] = a2[i] = 0.5f, v1[i] = v2[i] = 0.02f;
    adagrad_rows(p1, a1, v1, &g, 0.05f, 0.3f);
    int seen = 0;
    for (int q = 0; q < 3; q++) {
        row_grads part = row_grads_part(&g, q, 3);
        cr_assert(part.n >= n / 3 && part.n <= n / 3 + 1, "part %d has %d rows", q, part.n);
        cr_assert_eq(part.rows, g.rows + seen, "part %d does not follow the previous one", q);
        seen += part.n;
        adagrad_rows(p2, a2, v2, &part, 0.05f, 0.3f);
    }
    cr_assert_eq(seen, n, "the parts hold %d rows, not %d", seen, n);
    cr_assert(memcmp(p1, p2, sizeof p1) == 0 && memcmp(a1, a2, sizeof a1) == 0 && memcmp(v1, v2, sizeof v1) == 0,
              "three parts updated one after another differ from the whole update");
    row_grads_free(&g);
}

// The update of gradients summed where they lie (the ranks' slots) equals the update of
// their sum made first, bitwise, with and without momentum, 2 and 3 parts, and a length
// that is not a whole number of the loop's pieces.
Test(parts, dense_sum_of_parts_equals_summed_first) {
    enum { N = 2500, Q = 3 };
    static float parts[Q][N], sum[N], p1[N], a1[N], v1[N], p2[N], a2[N], v2[N];
    for (int q = 0; q < Q; q++)
        for (int i = 0; i < N; i++) parts[q][i] = 0.001f * (float)((i * (q + 3)) % 97) - 0.04f - 0.013f * (float)q;
    parts[0][7] = -0.0f, parts[1][7] = -0.0f;  // a −0 + −0 sum keeps its sign as the all-reduce's
    const float *ptr[Q] = {parts[0], parts[1], parts[2]};
    for (int n_parts = 2; n_parts <= Q; n_parts++)
        for (int mom = 0; mom <= 1; mom++) {
            for (int i = 0; i < N; i++) {
                sum[i] = parts[0][i] + parts[1][i];
                if (n_parts == 3) sum[i] += parts[2][i];
                p1[i] = p2[i] = 0.02f * (float)(i % 11) - 0.1f, a1[i] = a2[i] = 0.25f, v1[i] = v2[i] = 0.01f;
            }
            const float mu = mom ? 0.3f : 0.0f;
            adagrad_dense(p1, sum, a1, mom ? v1 : NULL, N, 0.05f, mu);
            adagrad_dense_sum(p2, ptr, n_parts, a2, mom ? v2 : NULL, N, 0.05f, mu);
            cr_assert(memcmp(p1, p2, sizeof p1) == 0 && memcmp(a1, a2, sizeof a1) == 0 && memcmp(v1, v2, sizeof v1) == 0,
                      "%d parts%s: the update of the parts differs from the update of their sum", n_parts,
                      mom ? " with momentum" : "");
            int moved = 0;
            for (int i = 0; i < N; i++) moved += p1[i] != 0.02f * (float)(i % 11) - 0.1f;
            cr_assert(moved > N / 2, "only %d of %d parameters moved", moved, N);
        }
}

// Rows whose gradient is summed where it lies (srcs: each rank's row, NULL where a rank
// has none) update as the rows of the sums made first, zeros added, bitwise; also cut
// into parts, and for a row wider than the loop's piece.
Test(parts, rows_summed_from_sources_equal_summed_first) {
    enum { N = 12, W = 1100, Q = 3, R = 5 };  // N table rows, R touched
    static float src[Q][R][W], sum[R][W], p1[N * W], a1[N * W], v1[N * W], p2[N * W], a2[N * W], v2[N * W];
    static const float zero[W];
    const int32_t rows[R] = {7, 2, 11, 0, 5};
    const int has[R][Q] = {{1, 1, 1}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0, 1}};  // who touched which row
    const float *ptr[R * Q];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) {
            for (int i = 0; i < W; i++) src[q][r][i] = 0.001f * (float)((i * (q + 2) + 5 * r) % 89) - 0.03f;
            ptr[r * Q + q] = has[r][q] ? src[q][r] : NULL;
        }
    src[0][1][3] = -0.0f;  // alone: −0 + 0 + 0 is +0, as the all-reduce's buffer sums it
    for (int r = 0; r < R; r++)
        for (int i = 0; i < W; i++) {
            const float *c0 = ptr[r * Q] ? ptr[r * Q] : zero, *c1 = ptr[r * Q + 1] ? ptr[r * Q + 1] : zero;
            const float *c2 = ptr[r * Q + 2] ? ptr[r * Q + 2] : zero;
            sum[r][i] = c0[i] + c1[i];
            sum[r][i] += c2[i];
        }
    for (int i = 0; i < N * W; i++) p1[i] = p2[i] = 0.003f * (float)(i % 17) - 0.02f, a1[i] = a2[i] = 0.1f, v1[i] = v2[i] = 0.0f;
    row_grads g = {.n_items = N, .width = W, .rows = (int32_t *)rows, .grad = &sum[0][0], .n = R, .cap = R};
    adagrad_rows(p1, a1, v1, &g, 0.05f, 0.3f);
    row_grads s = {.n_items = N, .width = W, .rows = (int32_t *)rows, .n = R, .cap = R, .srcs = ptr, .n_srcs = Q};
    for (int k = 0; k < 2; k++) {
        row_grads part = row_grads_part(&s, k, 2);
        cr_assert(part.grad == NULL, "a part of source rows has a grad buffer");
        adagrad_rows(p2, a2, v2, &part, 0.05f, 0.3f);
    }
    cr_assert(memcmp(p1, p2, sizeof p1) == 0 && memcmp(a1, a2, sizeof a1) == 0 && memcmp(v1, v2, sizeof v1) == 0,
              "rows summed from their sources differ from the rows of the sums");
    cr_assert(p2[7 * W + 1000] != 0.003f * (float)((7 * W + 1000) % 17) - 0.02f, "a touched row's far end did not move");
    cr_assert(p2[1 * W] == 0.003f * (float)(W % 17) - 0.02f, "an untouched row moved");
}
