// Losses and their analytic gradients (src/model/loss.c).
//
//  - reference values: tests/reference/loss_ref.txt, written by loss_ref.py (Python,
//    double, from the formulas alone); every total must match to a relative 1e-5;
//  - hand-computed values (below, in the comments);
//  - finite differences: for every loss x final activation (x logq on/off) and several
//    shapes (C = M and C > M, M = 1), the float kernel's dR is compared with central
//    differences (h = 1e-5) of a double-precision reference written in this file from the
//    formulas. Tolerance per element: |dR - fd| <= 1e-5 + 1e-4 |fd| (observed worst 2e-6,
//    bpr-max; the others ~1e-7); the kernel's loss must match the double reference to a
//    relative 2e-6 (+1e-7 absolute). A grid of scores straddling every branch of the float
//    math (tiny, saturated, eps-dominated) is checked the same way;
//  - scale, M = 1, C = 1, empty batch, duplicated columns, extreme scores, scratch bounds,
//    the training-sized call (128 x 2176, timing logged), parsing.
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/loss.h"

static const loss_kind ALL_LOSSES[] = {LOSS_CROSS_ENTROPY, LOSS_BPR, LOSS_TOP1, LOSS_BPR_MAX, LOSS_TOP1_MAX};
#define N_LOSSES 5

typedef struct {
    final_act_kind act;
    float alpha;
    const char *name;
} act_case;
static const act_case ALL_ACTS[] = {
    {ACT_LINEAR, 0.0f, "linear"}, {ACT_TANH, 0.0f, "tanh"}, {ACT_ELU, 0.5f, "elu-0.5"}, {ACT_ELU, 1.0f, "elu-1"}};
#define N_ACTS 4

// ---------------------------------------------------------------------------------------
// Double-precision reference, straight from the formulas (not sharing code with loss.c).

#define EPS 1e-24

static double sig(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double act_d(final_act_kind k, double alpha, double x) {
    switch (k) {
    case ACT_LINEAR: return x;
    case ACT_TANH: return tanh(x);
    case ACT_ELU: return x >= 0 ? x : alpha * (exp(x) - 1.0);
    }
    return NAN;
}

// r: the activated row (double), i: its positive column.
static double ref_row(loss_kind loss, double bpreg, const double *r, int C, int i) {
    double L = 0;
    switch (loss) {
    case LOSS_CROSS_ENTROPY: {
        double m = r[0];
        for (int j = 1; j < C; j++) m = fmax(m, r[j]);
        double S = 0;
        for (int j = 0; j < C; j++) S += exp(r[j] - m);
        return -log(exp(r[i] - m) / S + EPS);
    }
    case LOSS_BPR:
        for (int j = 0; j < C; j++) L -= log(sig(r[i] - r[j]) + EPS);
        return L / C;
    case LOSS_TOP1:
        for (int j = 0; j < C; j++) L += sig(r[j] - r[i]) + sig(r[j] * r[j]);
        return L / C - sig(r[i] * r[i]) / C;
    case LOSS_BPR_MAX:
    case LOSS_TOP1_MAX: {
        if (C == 1) return 0.0;
        double m = -INFINITY, S = 0;
        for (int j = 0; j < C; j++)
            if (j != i) m = fmax(m, r[j]);
        for (int j = 0; j < C; j++)
            if (j != i) S += exp(r[j] - m);
        double a = 0, b = 0;
        for (int j = 0; j < C; j++) {
            if (j == i) continue;
            double s = exp(r[j] - m) / S;
            if (loss == LOSS_BPR_MAX) {
                a += s * sig(r[i] - r[j]);
                b += s * r[j] * r[j];
            } else {
                a += s * (sig(r[j] - r[i]) + sig(r[j] * r[j]));
            }
        }
        return loss == LOSS_BPR_MAX ? -log(a + EPS) + bpreg * b : a;
    }
    }
    return NAN;
}

static double ref_total(const loss_config *cfg, const double *R, int M, int C, const double *log_q) {
    double *r = malloc((size_t)C * sizeof *r), tot = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < C; j++) {
            double x = R[(size_t)i * C + j] - (log_q ? cfg->logq * log_q[j] : 0.0);
            r[j] = act_d(cfg->act, cfg->elu_alpha, x);
        }
        tot += ref_row(cfg->loss, cfg->bpreg, r, C, i);
    }
    free(r);
    return tot;
}

// ---------------------------------------------------------------------------------------
// helpers

static uint64_t rng_state;
static double urand(void) {  // splitmix64 -> [0, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static double run_kernel(const loss_config *cfg, const float *R, int M, int C, const float *log_q, float scale,
                         float *dR) {
    size_t ns = loss_scratch_floats(M, C);
    float *scratch = malloc((ns + 1) * sizeof *scratch);
    double L = loss_forward_backward(cfg, R, M, C, log_q, scale, dR, scratch);
    free(scratch);
    return L;
}

static loss_config make_cfg(loss_kind loss, const act_case *a, float logq) {
    return (loss_config){.loss = loss, .act = a->act, .elu_alpha = a->alpha, .bpreg = 1.0f, .logq = logq};
}

// ---------------------------------------------------------------------------------------
// 1. reference values from loss_ref.py

#define REF_MAX_CASES 8
typedef struct {
    char name[16];
    int M, C;
    float R[64], logq[16];
} ref_case;

Test(loss, reference_values) {
    const char *path = GRUREC_TESTS_DIR "/reference/loss_ref.txt";
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    ref_case cases[REF_MAX_CASES];
    int n_cases = 0, n_values = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (strncmp(line, "case ", 5) == 0) {
            cr_assert_lt(n_cases, REF_MAX_CASES);
            ref_case *c = &cases[n_cases++];
            cr_assert_eq(sscanf(line, "case %15s %d %d", c->name, &c->M, &c->C), 3);
            cr_assert(c->M * c->C <= 64 && c->C <= 16);
            for (int i = 0; i < c->M; i++) {
                cr_assert(fgets(line, sizeof line, f));
                cr_assert_eq(strncmp(line, "row ", 4), 0);
                char *p = line + 4;
                for (int j = 0; j < c->C; j++) c->R[i * c->C + j] = strtof(p, &p);
            }
            cr_assert(fgets(line, sizeof line, f));
            cr_assert_eq(strncmp(line, "logq ", 5), 0);
            char *p = line + 5;
            for (int j = 0; j < c->C; j++) c->logq[j] = strtof(p, &p);
            continue;
        }
        char name[16], lossname[32], actname[32];
        double bpreg, logq, expect;
        cr_assert_eq(sscanf(line, "value %15s %31s %31s %lf %lf %lf", name, lossname, actname, &bpreg, &logq, &expect),
                     6, "bad line: %s", line);
        const ref_case *c = NULL;
        for (int k = 0; k < n_cases; k++)
            if (strcmp(cases[k].name, name) == 0) c = &cases[k];
        cr_assert(c, "unknown case %s", name);
        loss_config cfg = {.bpreg = (float)bpreg, .logq = (float)logq};
        cr_assert(loss_kind_parse(lossname, &cfg.loss), "%s", lossname);
        cr_assert(final_act_parse(actname, &cfg.act, &cfg.elu_alpha), "%s", actname);
        float dR[64];
        double got = run_kernel(&cfg, c->R, c->M, c->C, c->logq, 1.0f, dR);
        double tol = 1e-5 * fabs(expect) + 1e-6;
        cr_expect(fabs(got - expect) <= tol, "case %s %s %s bpreg=%g logq=%g: got %.9g expected %.9g", name,
                  lossname, actname, bpreg, logq, got, expect);
        for (int k = 0; k < c->M * c->C; k++) cr_expect(isfinite(dR[k]));
        n_values++;
    }
    fclose(f);
    cr_assert_eq(n_cases, 4);
    cr_assert_eq(n_values, 4 * (N_LOSSES * N_ACTS * 2 + N_ACTS), "truncated %s?", path);
}

// ---------------------------------------------------------------------------------------
// 2. values computed by hand

Test(loss, hand_values) {
    const act_case *lin = &ALL_ACTS[0];
    float dR[4];
    // cross-entropy of the 1x2 row [0, 0]: softmax = [1/2, 1/2], L = -log(1/2) = log 2;
    // dL/dR = p - onehot(0) = [-1/2, +1/2].
    {
        loss_config cfg = make_cfg(LOSS_CROSS_ENTROPY, lin, 0);
        float R[2] = {0, 0};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, log(2.0), 1e-7);
        cr_assert_float_eq(dR[0], -0.5f, 1e-7);
        cr_assert_float_eq(dR[1], 0.5f, 1e-7);
    }
    // BPR of a 1x1 row: only the diagonal, L = -log(sigma(0)) = -log(0.5) = log 2, dL/dR = 0
    // (R_ii - R_ii does not depend on R_ii).
    {
        loss_config cfg = make_cfg(LOSS_BPR, lin, 0);
        float R[1] = {3.5f};
        double L = run_kernel(&cfg, R, 1, 1, NULL, 1.0f, dR);
        cr_assert_float_eq(L, log(2.0), 1e-6);
        cr_assert_float_eq(dR[0], 0.0f, 1e-9);
    }
    // BPR of the 1x2 row [0, 0]: L = -(1/2)(log sigma(0) + log sigma(0)) = log 2;
    // dL/dR_01 = (1/2) sigma'(0)/sigma(0) = (1/2)(1/4)/(1/2) = 1/4, dL/dR_00 = -1/4.
    {
        loss_config cfg = make_cfg(LOSS_BPR, lin, 0);
        float R[2] = {0, 0};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, log(2.0), 1e-6);
        cr_assert_float_eq(dR[0], -0.25f, 1e-7);
        cr_assert_float_eq(dR[1], 0.25f, 1e-7);
    }
    // TOP1 of the 1x2 row [0, 0]: (1/2)[(sigma(0)+sigma(0)) + (sigma(0)+sigma(0))] - sigma(0)/2
    // = (1/2)(2) - 1/4 = 3/4.  dL/dR_01 = (1/2)(sigma'(0) + 2*0*sigma'(0)) = 1/8, dL/dR_00 = -1/8.
    {
        loss_config cfg = make_cfg(LOSS_TOP1, lin, 0);
        float R[2] = {0, 0};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, 0.75, 1e-7);
        cr_assert_float_eq(dR[0], -0.125f, 1e-7);
        cr_assert_float_eq(dR[1], 0.125f, 1e-7);
    }
    // BPR-max of the 1x2 row [0, 0]: one negative, s = [0, 1]; L = -log(sigma(0)) + bpreg*0 = log 2.
    // dL/dR_00 = -s sigma'(0)/P = -(1/4)/(1/2) = -1/2; dL/dR_01 = s[(P - sigma^2)/P + bpreg(0 + 0 - 0)]
    // = (1/2 - 1/4)/(1/2) = 1/2.
    {
        loss_config cfg = make_cfg(LOSS_BPR_MAX, lin, 0);
        float R[2] = {0, 0};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, log(2.0), 1e-7);
        cr_assert_float_eq(dR[0], -0.5f, 1e-7);
        cr_assert_float_eq(dR[1], 0.5f, 1e-7);
    }
    // TOP1-max of the 1x2 row [0, 0]: s = [0, 1], L = sigma(0) + sigma(0) = 1;
    // dL/dR_00 = -sigma'(0) = -1/4, dL/dR_01 = sigma'(0) + 0 = 1/4.
    {
        loss_config cfg = make_cfg(LOSS_TOP1_MAX, lin, 0);
        float R[2] = {0, 0};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, 1.0, 1e-7);
        cr_assert_float_eq(dR[0], -0.25f, 1e-7);
        cr_assert_float_eq(dR[1], 0.25f, 1e-7);
    }
    // cross-entropy of [0, -100]: the positive is column 0: p_0 = 1/(1+e^-100), L = log(1+e^-100)
    // ~ 3.7e-44; and of [-100, 0]: p_0 = e^-100/(1+e^-100) ~ 3.7e-44 << eps, so
    // L = -log(3.7e-44 + 1e-24) = -log(1e-24) = 55.262042231857095 to 1e-19 relative, and the
    // gradient p_0/(p_0+eps) (p - onehot) ~ 3.7e-20 is zero in float.
    {
        loss_config cfg = make_cfg(LOSS_CROSS_ENTROPY, lin, 0);
        float R[2] = {-100.0f, 0.0f};
        double L = run_kernel(&cfg, R, 1, 2, NULL, 1.0f, dR);
        cr_assert_float_eq(L, 55.262042231857095, 1e-9);
        cr_assert(fabsf(dR[0]) < 1e-18f && fabsf(dR[1]) < 1e-18f);
    }
}

// ---------------------------------------------------------------------------------------
// 3. finite differences

typedef struct {
    int M, C;
} shape;
static const shape SHAPES[] = {{1, 1}, {1, 2}, {1, 6}, {2, 2}, {3, 3}, {3, 8}, {4, 11}};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static void fd_check(loss_kind loss) {
    const double h = 1e-5;
    double worst_abs = 0, worst_val = 0;
    for (int ai = 0; ai < N_ACTS; ai++)
        for (int lq = 0; lq < 2; lq++)
            for (size_t si = 0; si < N_SHAPES; si++)
                for (int rep = 0; rep < 3; rep++) {
                    const act_case *a = &ALL_ACTS[ai];
                    const int M = SHAPES[si].M, C = SHAPES[si].C, n = M * C;
                    rng_state = 1000003u * (uint64_t)(loss + 1) + 7919u * (uint64_t)ai + 101u * (uint64_t)lq +
                                13u * si + (uint64_t)rep;
                    loss_config cfg = make_cfg(loss, a, lq ? 1.0f : 0.0f);
                    cfg.bpreg = rep == 2 ? 0.3f : 1.0f;
                    float R[64], logq[16], dR[64];
                    double Rd[64], logqd[16];
                    for (int j = 0; j < C; j++) {
                        logq[j] = (float)(-3.0 * urand());
                        logqd[j] = logq[j];
                    }
                    for (int k = 0; k < n; k++) {
                        float v = (float)(4.0 * urand() - 2.0);
                        // keep x = R - logq*log_q away from ELU's kink at 0
                        float x = v - cfg.logq * logq[k % C];
                        if (fabsf(x) < 1e-3f) v += 0.01f;
                        R[k] = v;
                        Rd[k] = v;
                    }
                    const float *lqp = lq ? logq : NULL;
                    const double *lqdp = lq ? logqd : NULL;
                    double L = run_kernel(&cfg, R, M, C, lqp, 1.0f, dR);
                    double Lref = ref_total(&cfg, Rd, M, C, lqdp);
                    worst_val = fmax(worst_val, fabs(L - Lref) / fmax(fabs(Lref), 1e-3));
                    cr_assert(fabs(L - Lref) <= 2e-6 * fabs(Lref) + 1e-7, "%s %s logq=%d %dx%d: L %.9g ref %.9g",
                              loss_kind_name(loss), a->name, lq, M, C, L, Lref);
                    for (int k = 0; k < n; k++) {
                        double keep = Rd[k];
                        Rd[k] = keep + h;
                        double Lp = ref_total(&cfg, Rd, M, C, lqdp);
                        Rd[k] = keep - h;
                        double Lm = ref_total(&cfg, Rd, M, C, lqdp);
                        Rd[k] = keep;
                        double fd = (Lp - Lm) / (2 * h);
                        double err = fabs(dR[k] - fd);
                        worst_abs = fmax(worst_abs, err);
                        cr_assert(err <= 1e-5 + 1e-4 * fabs(fd),
                                  "%s %s logq=%d bpreg=%g %dx%d rep %d: dR[%d,%d] = %.9g, finite difference %.9g",
                                  loss_kind_name(loss), a->name, lq, cfg.bpreg, M, C, rep, k / C, k % C, dR[k], fd);
                    }
                }
    cr_log_info("%s: worst |dR - fd| = %.3g, worst relative loss error = %.3g", loss_kind_name(loss), worst_abs,
                worst_val);
}

Test(loss_fd, cross_entropy) { fd_check(LOSS_CROSS_ENTROPY); }
Test(loss_fd, bpr) { fd_check(LOSS_BPR); }
Test(loss_fd, top1) { fd_check(LOSS_TOP1); }
Test(loss_fd, bpr_max) { fd_check(LOSS_BPR_MAX); }
Test(loss_fd, top1_max) { fd_check(LOSS_TOP1_MAX); }

// Wider score range (|R| up to 12, linear): exercises the saturated sigmoids and skewed
// softmaxes; same tolerance.
Test(loss_fd, wide_range) {
    const double h = 1e-5;
    for (int l = 0; l < N_LOSSES; l++) {
        rng_state = 424242u + (uint64_t)l;
        loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[0], 0);
        const int M = 3, C = 7, n = M * C;
        float R[21], dR[21];
        double Rd[21];
        for (int k = 0; k < n; k++) Rd[k] = R[k] = (float)(24.0 * urand() - 12.0);
        run_kernel(&cfg, R, M, C, NULL, 1.0f, dR);
        for (int k = 0; k < n; k++) {
            double keep = Rd[k];
            Rd[k] = keep + h;
            double Lp = ref_total(&cfg, Rd, M, C, NULL);
            Rd[k] = keep - h;
            double Lm = ref_total(&cfg, Rd, M, C, NULL);
            Rd[k] = keep;
            double fd = (Lp - Lm) / (2 * h);
            cr_assert(fabs(dR[k] - fd) <= 1e-5 + 1e-4 * fabs(fd), "%s: dR[%d] = %.9g, fd %.9g",
                      loss_kind_name(ALL_LOSSES[l]), k, dR[k], fd);
        }
    }
}

// Scores drawn from a grid that straddles every branch of the kernel's float math (tanh's
// polynomial/exponential switch at |x| = 0.625, ELU's series/exponential switch at -0.35,
// tiny values, saturation, the 1e-24 floor of the logs): loss vs the double reference
// (relative 2e-6 + 1e-6), dR vs central differences (1e-5 + 1e-4 x the row's largest |fd|).
Test(loss_fd, branch_grid) {
    static const float V[] = {0.0f,  1e-12f, -1e-12f, 1e-6f, -1e-6f, 0.01f, -0.01f, 0.34f, -0.34f, 0.36f,
                              -0.36f, 0.62f, -0.62f,  0.63f, -0.63f, 1.5f,  -1.5f,  5.0f,  -5.0f,  9.0f,
                              -9.0f, 20.0f, -20.0f,  60.0f, -60.0f, 95.0f, -95.0f};
    const int nV = (int)(sizeof V / sizeof V[0]);
    const double h = 1e-5;
    for (int l = 0; l < N_LOSSES; l++)
        for (int ai = 0; ai < N_ACTS; ai++)
            for (int rep = 0; rep < 40; rep++) {
                rng_state = 31337u + (uint64_t)(l * 1000 + ai * 100 + rep);
                loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[ai], 0);
                const int M = 2, C = 4, n = M * C;
                float R[8], dR[8];
                double Rd[8], fd[8];
                for (int k = 0; k < n; k++) Rd[k] = R[k] = V[(int)(urand() * nV)];
                double L = run_kernel(&cfg, R, M, C, NULL, 1.0f, dR);
                double Lref = ref_total(&cfg, Rd, M, C, NULL);
                cr_assert(fabs(L - Lref) <= 2e-6 * fabs(Lref) + 1e-6, "%s %s rep %d: L %.9g ref %.9g",
                          loss_kind_name(cfg.loss), ALL_ACTS[ai].name, rep, L, Lref);
                for (int k = 0; k < n; k++) {
                    double keep = Rd[k];
                    Rd[k] = keep + h;
                    double Lp = ref_total(&cfg, Rd, M, C, NULL);
                    Rd[k] = keep - h;
                    double Lm = ref_total(&cfg, Rd, M, C, NULL);
                    Rd[k] = keep;
                    fd[k] = (Lp - Lm) / (2 * h);
                }
                for (int i = 0; i < M; i++) {
                    double rowmax = 0;
                    for (int j = 0; j < C; j++) rowmax = fmax(rowmax, fabs(fd[i * C + j]));
                    for (int j = 0; j < C; j++) {
                        int k = i * C + j;
                        // ELU(0.5) has a kink at 0: no finite difference across it
                        if (cfg.act == ACT_ELU && cfg.elu_alpha != 1.0f && fabs(Rd[k]) < 10 * h) continue;
                        cr_assert(fabs(dR[k] - fd[k]) <= 1e-5 + 1e-4 * rowmax,
                                  "%s %s rep %d: dR[%d,%d] (R = %g) = %.9g, finite difference %.9g",
                                  loss_kind_name(cfg.loss), ALL_ACTS[ai].name, rep, i, j, Rd[k], dR[k], fd[k]);
                    }
                }
            }
}

// ---------------------------------------------------------------------------------------
// 4. scale, shapes, edge cases

Test(loss, scale_applies_to_gradient_only) {
    for (int l = 0; l < N_LOSSES; l++)
        for (int ai = 0; ai < N_ACTS; ai++) {
            rng_state = 77u + (uint64_t)(l * 10 + ai);
            loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[ai], 0);
            const int M = 3, C = 6;
            float R[18], d1[18], d2[18];
            for (int k = 0; k < M * C; k++) R[k] = (float)(4.0 * urand() - 2.0);
            double L1 = run_kernel(&cfg, R, M, C, NULL, 1.0f, d1);
            double L3 = run_kernel(&cfg, R, M, C, NULL, -0.3f, d2);
            for (int k = 0; k < M * C; k++)
                cr_assert(fabsf(d2[k] + 0.3f * d1[k]) <= 1e-6f * fabsf(d1[k]) + 1e-12f);
            double L2 = run_kernel(&cfg, R, M, C, NULL, 0.0078125f, d2);  // 1/128
            cr_assert_eq(L1, L2);  // the loss is not scaled
            cr_assert_eq(L1, L3);
            for (int k = 0; k < M * C; k++)
                cr_assert(fabsf(d2[k] - d1[k] * 0.0078125f) <= 1e-6f * fabsf(d1[k]) + 1e-12f, "%s %s k=%d: %g vs %g",
                          loss_kind_name(ALL_LOSSES[l]), ALL_ACTS[ai].name, k, d2[k], d1[k]);
        }
}

// M = 1, C = 1: no negative column. bpr-max and top1-max are 0 with zero gradient; the others
// follow their formulas: XE = -log(1 + eps) = 0, BPR = log 2, TOP1 = sigma(0) = 1/2; all with
// zero gradient.
Test(loss, single_row_single_column) {
    const double expect[N_LOSSES] = {0.0, log(2.0), 0.5, 0.0, 0.0};
    for (int l = 0; l < N_LOSSES; l++)
        for (int ai = 0; ai < N_ACTS; ai++) {
            loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[ai], 1.0f);
            float R[1] = {-1.7f}, lq[1] = {-0.4f}, dR[1] = {123.0f};
            double L = run_kernel(&cfg, R, 1, 1, lq, 1.0f, dR);
            cr_assert(fabs(L - expect[l]) <= 1e-6, "%s %s: %g", loss_kind_name(ALL_LOSSES[l]), ALL_ACTS[ai].name, L);
            cr_assert_eq(dR[0], 0.0f, "%s %s: dR %g", loss_kind_name(ALL_LOSSES[l]), ALL_ACTS[ai].name, dR[0]);
        }
}

Test(loss, empty_batch) {
    loss_config cfg = make_cfg(LOSS_BPR_MAX, &ALL_ACTS[0], 0);
    float dR[1] = {5.0f};
    cr_assert_eq(loss_forward_backward(&cfg, NULL, 0, 0, NULL, 1.0f, dR, NULL), 0.0);
    cr_assert_eq(dR[0], 5.0f);
}

// Columns are just columns: a sampled negative equal to a target (same scores) is a separate
// column. Each of the duplicate columns gets its own (correct) gradient.
Test(loss, duplicate_columns) {
    const int M = 3, C = 6;
    for (int l = 0; l < N_LOSSES; l++) {
        rng_state = 99u + (uint64_t)l;
        loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[1], 0);
        float R[18], dR[18];
        double Rd[18];
        for (int k = 0; k < M * C; k++) R[k] = (float)(4.0 * urand() - 2.0);
        for (int i = 0; i < M; i++) R[i * C + 3] = R[i * C + 0], R[i * C + 5] = R[i * C + 0];  // item y_0 twice more
        for (int k = 0; k < M * C; k++) Rd[k] = R[k];
        run_kernel(&cfg, R, M, C, NULL, 1.0f, dR);
        for (int k = 0; k < M * C; k++) {
            double keep = Rd[k];
            Rd[k] = keep + 1e-5;
            double Lp = ref_total(&cfg, Rd, M, C, NULL);
            Rd[k] = keep - 1e-5;
            double Lm = ref_total(&cfg, Rd, M, C, NULL);
            Rd[k] = keep;
            double fd = (Lp - Lm) / 2e-5;
            cr_assert(fabs(dR[k] - fd) <= 1e-5 + 1e-4 * fabs(fd), "%s k=%d: %g vs %g", loss_kind_name(ALL_LOSSES[l]), k,
                      dR[k], fd);
        }
        // rows 1, 2: the copies of column 0 are plain negatives there, with equal gradients
        for (int i = 1; i < M; i++) {
            cr_assert_float_eq(dR[i * C + 3], dR[i * C + 0], 1e-7);
            cr_assert_float_eq(dR[i * C + 5], dR[i * C + 0], 1e-7);
        }
    }
}

// Scores far outside the usual range: everything stays finite, and the kernel's loss
// still matches the double reference.
Test(loss, extreme_scores) {
    const int M = 3, C = 6;
    const float R[18] = {-1e4f, 1e4f, 50.0f, -50.0f, 0.0f, 88.0f, 1e4f, -1e4f, 200.0f, -200.0f, 1e-30f, 100.0f,
                         -90.0f, 90.0f, -89.0f, 60.0f, -60.0f, 0.5f};
    double Rd[18];
    for (int k = 0; k < M * C; k++) Rd[k] = R[k];
    for (int l = 0; l < N_LOSSES; l++)
        for (int ai = 0; ai < N_ACTS; ai++) {
            loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[ai], 0);
            float dR[18];
            double L = run_kernel(&cfg, R, M, C, NULL, 1.0f, dR);
            double Lref = ref_total(&cfg, Rd, M, C, NULL);
            cr_assert(isfinite(L), "%s %s", loss_kind_name(ALL_LOSSES[l]), ALL_ACTS[ai].name);
            cr_assert(fabs(L - Lref) <= 1e-5 * fabs(Lref) + 1e-6, "%s %s: %.9g vs %.9g", loss_kind_name(ALL_LOSSES[l]),
                      ALL_ACTS[ai].name, L, Lref);
            for (int k = 0; k < M * C; k++)
                cr_assert(isfinite(dR[k]), "%s %s k=%d", loss_kind_name(ALL_LOSSES[l]), ALL_ACTS[ai].name, k);
        }
}

// The kernel uses exactly loss_scratch_floats() of scratch and writes exactly M*C outputs.
Test(loss, scratch_and_output_bounds) {
    const int M = 4, C = 9;
    for (int l = 0; l < N_LOSSES; l++) {
        loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[2], 1.0f);
        size_t ns = loss_scratch_floats(M, C);
        float *scratch = malloc((ns + 8) * sizeof *scratch), R[36], dR[36 + 8], lq[9];
        rng_state = 5u + (uint64_t)l;
        for (int k = 0; k < M * C; k++) R[k] = (float)(4.0 * urand() - 2.0);
        for (int j = 0; j < C; j++) lq[j] = (float)(-2.0 * urand());
        for (size_t k = 0; k < 8; k++) scratch[ns + k] = -7.0f, dR[M * C + (int)k] = -7.0f;
        loss_forward_backward(&cfg, R, M, C, lq, 1.0f, dR, scratch);
        for (size_t k = 0; k < 8; k++) {
            cr_assert_eq(scratch[ns + k], -7.0f);
            cr_assert_eq(dR[M * C + (int)k], -7.0f);
        }
        free(scratch);
    }
}

// The training-sized call (M = 128 rows, C = 128 + 2048 columns): agrees with the double
// reference, and reports its time (informational).
Test(loss, training_size) {
    const int M = 128, C = 2176;
    float *R = malloc((size_t)M * C * sizeof *R), *dR = malloc((size_t)M * C * sizeof *dR);
    double *Rd = malloc((size_t)M * C * sizeof *Rd);
    float *scratch = malloc(loss_scratch_floats(M, C) * sizeof *scratch), lq[2176];
    double lqd[2176];
    rng_state = 2024;
    for (size_t k = 0; k < (size_t)M * C; k++) Rd[k] = R[k] = (float)(6.0 * urand() - 3.0);
    for (int j = 0; j < C; j++) lqd[j] = lq[j] = (float)(-8.0 * urand());
    for (int l = 0; l < N_LOSSES; l++) {
        for (int ai = 0; ai < N_ACTS; ai++) {
            loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[ai], l == 0 ? 1.0f : 0.0f);
            double L = loss_forward_backward(&cfg, R, M, C, l == 0 ? lq : NULL, 1.0f / M, dR, scratch);
            double Lref = ref_total(&cfg, Rd, M, C, l == 0 ? lqd : NULL);
            cr_assert(fabs(L - Lref) <= 2e-6 * fabs(Lref), "%s %s: %.9g vs %.9g", loss_kind_name(ALL_LOSSES[l]),
                      ALL_ACTS[ai].name, L, Lref);
        }
        loss_config cfg = make_cfg(ALL_LOSSES[l], &ALL_ACTS[l == LOSS_BPR_MAX ? 2 : 0], 0);
        struct timespec t0, t1;
        const int reps = 20;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int r = 0; r < reps; r++) loss_forward_backward(&cfg, R, M, C, NULL, 1.0f / M, dR, scratch);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6) / reps;
        cr_log_info("%s (%s) %dx%d: %.3f ms per call", loss_kind_name(ALL_LOSSES[l]), cfg.act == ACT_ELU ? "elu" : "linear",
                    M, C, ms);
    }
    free(R), free(dR), free(Rd), free(scratch);
}

// ---------------------------------------------------------------------------------------
// parsing

Test(loss, parse_names) {
    const char *names[] = {"cross-entropy", "bpr", "top1", "bpr-max", "top1-max"};
    for (int k = 0; k < N_LOSSES; k++) {
        loss_kind got = (loss_kind)-1;
        cr_assert(loss_kind_parse(names[k], &got));
        cr_assert_eq(got, ALL_LOSSES[k]);
        cr_assert_str_eq(loss_kind_name(got), names[k]);
    }
    loss_kind keep = LOSS_TOP1;
    const char *bad_losses[] = {"", "xe", "BPR", "bpr_max", "top1-max ", "cross-entropy2", NULL};
    for (int k = 0; bad_losses[k]; k++) {
        cr_assert_not(loss_kind_parse(bad_losses[k], &keep), "%s", bad_losses[k]);
        cr_assert_eq(keep, LOSS_TOP1);
    }

    final_act_kind act;
    float alpha = 9.0f;
    cr_assert(final_act_parse("linear", &act, &alpha));
    cr_assert_eq(act, ACT_LINEAR);
    cr_assert_eq(alpha, 9.0f);  // untouched unless elu
    cr_assert(final_act_parse("tanh", &act, &alpha));
    cr_assert_eq(act, ACT_TANH);
    cr_assert(final_act_parse("elu-0.5", &act, &alpha));
    cr_assert_eq(act, ACT_ELU);
    cr_assert_eq(alpha, 0.5f);
    cr_assert(final_act_parse("elu-1", &act, &alpha));
    cr_assert_eq(alpha, 1.0f);
    cr_assert(final_act_parse("elu-2.5e-1", &act, &alpha));
    cr_assert_eq(alpha, 0.25f);
    const char *bad_acts[] = {"", "elu", "elu-", "elu-0", "elu--1", "elu-x", "elu-1x", "elu- 1", "elu-inf",
                              "elu-nan", "elu-0x1", "Tanh", "linear ", "relu", "elu-1e99", NULL};
    for (int k = 0; bad_acts[k]; k++) {
        act = ACT_TANH, alpha = 3.0f;
        cr_assert_not(final_act_parse(bad_acts[k], &act, &alpha), "%s", bad_acts[k]);
        cr_assert_eq(act, ACT_TANH);
        cr_assert_eq(alpha, 3.0f);
    }
}
