// The block-per-row form of the losses (src/model/loss_block.h), run on the CPU by
// loss_row_block: the CUDA kernel k_loss_rows runs the same phase functions with
// one thread per lane, so this is its algorithm's test where no GPU is at hand.
//
// For every loss x final activation (linear, tanh, elu-0.5, elu-1) x logq on/off x lanes
// T in {1, 3, 8, 32, 128, 256} (256: the kernel's block) x shapes M x C in {1x1, 2x2, 5x7,
// 16x300, 128x2176}, each row of scores drawn from one of five kinds (moderate, large
// magnitudes up to +-30, all equal, moderate with +-30 outliers, the positive 80 above
// the rest), loss_row_block is
// compared with loss_row (loss_rows.h, the CPU's row):
//  - L_i within 1e-6 relative (+1e-12), each dR_ij within 1e-5 of the row's max |dR| (+1e-12);
//    only the order of the double row sums differs;
//  - T = 8 sums in loss_row's own order (8 lanes, the same tree), so it gives loss_row's
//    bits for every loss;
//  - a second call gives the same bits (dR and L_i);
//  - the dR row and the scratch are poisoned (NaN) before each call, so a column that is
//    not written, or a value read from scratch before it was written, shows; guard cells
//    after both must survive.
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/loss_block.h"

typedef struct {
    final_act_kind act;
    float alpha;
    const char *name;
} act_case;
static const act_case ACTS[] = {
    {ACT_LINEAR, 0.0f, "linear"}, {ACT_TANH, 0.0f, "tanh"}, {ACT_ELU, 0.5f, "elu-0.5"}, {ACT_ELU, 1.0f, "elu-1"}};
#define N_ACTS 4

static const int LANES[] = {1, 3, 8, 32, 128, 256};
#define N_LANES 6

static const int SHAPES[][2] = {{1, 1}, {2, 2}, {5, 7}, {16, 300}, {128, 2176}};
#define N_SHAPES 5

#define GUARD 8
#define GUARD_VALUE 12345.0f

static uint64_t rng_state;
static double urand(void) {  // splitmix64 -> [0, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

// Row i of kind 0: moderate (+-3); 1: large (+-30); 2: all equal; 3: moderate, every
// seventh column an outlier of +-30 (the positive itself among them now and then);
// 4: the positive 50, the others in [-40, -30] (a softmax over all columns, or a max
// taken with the positive, would underflow every negative's e^{r_j - m}).
#define N_KINDS 5
static void fill_row(float *r, int C, int i, int kind) {
    for (int j = 0; j < C; j++) {
        switch (kind) {
        case 0: r[j] = (float)(6.0 * urand() - 3.0); break;
        case 1: r[j] = (float)(60.0 * urand() - 30.0); break;
        case 2: r[j] = 0.7f; break;
        case 3: r[j] = j % 7 == 3 ? (urand() < 0.5 ? -30.0f : 30.0f) : (float)(2.0 * urand() - 1.0); break;
        default: r[j] = j == i ? 50.0f : (float)(-40.0 + 10.0 * urand()); break;
        }
    }
}

static void poison(float *x, size_t n) {
    for (size_t k = 0; k < n; k++) x[k] = NAN;
    for (size_t k = n; k < n + GUARD; k++) x[k] = GUARD_VALUE;
}

static int guards_ok(const float *x, size_t n) {
    for (size_t k = n; k < n + GUARD; k++)
        if (x[k] != GUARD_VALUE) return 0;
    return 1;
}

typedef struct {
    long rows, failures;
    double worst_L, worst_g;  // the largest |difference| / tolerance seen
} tally;

// Buffers for one row (C + GUARD floats, the scratch 4C + GUARD).
typedef struct {
    float *ref, *out, *out2, *scratch;
} bufs;

// loss_row_block with T lanes against loss_row for row i (ref, Lr, gmax: loss_row's dR row,
// L_i and max |dR|), tallied in ty; the first mismatches are logged.
static void check_lanes(const loss_config *cfg, const float *Rrow, const float *log_q, int C, int i, int T,
                       const bufs *b, double Lr, double gmax, tally *ty, const char *ctx) {
    const float scale = 0.37f;
    poison(b->out, C), poison(b->scratch, 4 * (size_t)C);
    const double Lb = loss_row_block(cfg, Rrow, log_q, C, i, scale, b->out, b->scratch, T);
    int ok = guards_ok(b->out, C) && guards_ok(b->scratch, 4 * (size_t)C);
    const double tol_L = 1e-6 * fabs(Lr) + 1e-12, tol_g = 1e-5 * gmax + 1e-12;
    const double dL = fabs(Lb - Lr);
    ok = ok && dL <= tol_L;  // (false for NaN)
    ty->worst_L = fmax(ty->worst_L, dL / tol_L);
    int jw = 0;  // the worst column
    for (int j = 0; j < C; j++) {
        const double dg = fabs((double)b->out[j] - b->ref[j]);
        ok = ok && dg <= tol_g;
        ty->worst_g = fmax(ty->worst_g, dg / tol_g);
        if (!(dg <= fabs((double)b->out[jw] - b->ref[jw]))) jw = j;
    }
    // T = ROW_LANES: loss_row's order of the sums, hence its bits.
    if (T == ROW_LANES)
        ok = ok && Lb == Lr && memcmp(b->out, b->ref, (size_t)C * sizeof *b->out) == 0;
    // A second call: the same bits.
    poison(b->out2, C), poison(b->scratch, 4 * (size_t)C);
    const double Lb2 = loss_row_block(cfg, Rrow, log_q, C, i, scale, b->out2, b->scratch, T);
    ok = ok && memcmp(&Lb, &Lb2, sizeof Lb) == 0 && memcmp(b->out, b->out2, (size_t)C * sizeof *b->out) == 0;
    ty->rows++;
    if (!ok && ty->failures++ < 10)
        cr_log_error("%s T=%d: L %.17g vs loss_row %.17g (repeat %.17g); worst column %d: %.9g vs %.9g (max |dR| %g)",
                     ctx, T, Lb, Lr, Lb2, jw, b->out[jw], b->ref[jw], gmax);
}

// Every activation x logq x T x shape x variant for one loss.
static void check_loss(loss_kind loss) {
    tally ty = {0, 0, 0.0, 0.0};
    rng_state = 1000 + (uint64_t)loss;
    const int Cmax = SHAPES[N_SHAPES - 1][1], Mmax = SHAPES[N_SHAPES - 1][0];
    float *R = malloc((size_t)Mmax * Cmax * sizeof *R), *lq = malloc((size_t)Cmax * sizeof *lq);
    bufs b = {malloc(((size_t)Cmax + GUARD) * sizeof(float)), malloc(((size_t)Cmax + GUARD) * sizeof(float)),
              malloc(((size_t)Cmax + GUARD) * sizeof(float)), malloc((4 * (size_t)Cmax + GUARD) * sizeof(float))};
    cr_assert(R && lq && b.ref && b.out && b.out2 && b.scratch);
    for (int s = 0; s < N_SHAPES; s++) {
        const int M = SHAPES[s][0], C = SHAPES[s][1];
        // The large shape once (its 128 rows hold every kind 25 times or more).
        const int variants = M >= 128 ? 1 : N_KINDS;
        for (int v = 0; v < variants; v++) {
            for (int i = 0; i < M; i++) fill_row(R + (size_t)i * C, C, i, (i + v) % N_KINDS);
            for (int j = 0; j < C; j++) lq[j] = (float)(-2.0 - 10.0 * urand());
            for (int a = 0; a < N_ACTS; a++) {
                for (int q = 0; q < 2; q++) {
                    const loss_config cfg = {.loss = loss, .act = ACTS[a].act, .elu_alpha = ACTS[a].alpha,
                                             .bpreg = 0.5f, .logq = q ? 0.8f : 0.0f};
                    const float *log_q = q ? lq : NULL;
                    for (int i = 0; i < M; i++) {
                        const float *Rrow = R + (size_t)i * C;
                        char ctx[160];
                        snprintf(ctx, sizeof ctx, "%s %s logq=%d %dx%d row %d (kind %d)", loss_kind_name(loss),
                                 ACTS[a].name, q, M, C, i, (i + v) % N_KINDS);
                        poison(b.ref, C), poison(b.scratch, 4 * (size_t)C);
                        const double Lr = loss_row(&cfg, Rrow, log_q, C, i, 0.37f, b.ref, b.scratch);
                        double gmax = 0.0;
                        for (int j = 0; j < C; j++) gmax = fmax(gmax, fabs(b.ref[j]));
                        cr_assert(isfinite(Lr) && isfinite(gmax), "%s: loss_row gave %g", ctx, Lr);
                        for (int l = 0; l < N_LANES; l++)
                            check_lanes(&cfg, Rrow, log_q, C, i, LANES[l], &b, Lr, gmax, &ty, ctx);
                    }
                }
            }
        }
    }
    cr_log_info("%s: %ld rows compared; worst |dL| %.2e and worst |ddR| %.2e of the tolerance", loss_kind_name(loss),
                ty.rows, ty.worst_L, ty.worst_g);
    cr_expect_eq(ty.failures, 0, "%s: %ld of %ld rows differ from loss_row (first ones logged above)",
                 loss_kind_name(loss), ty.failures, ty.rows);
    free(R), free(lq), free(b.ref), free(b.out), free(b.out2), free(b.scratch);
}

Test(loss_block, cross_entropy) { check_loss(LOSS_CROSS_ENTROPY); }
Test(loss_block, bpr) { check_loss(LOSS_BPR); }
Test(loss_block, top1) { check_loss(LOSS_TOP1); }
Test(loss_block, bpr_max) { check_loss(LOSS_BPR_MAX); }
Test(loss_block, top1_max) { check_loss(LOSS_TOP1_MAX); }

// The combining tree covers every lane exactly once for any T (a sum of ones is T), and
// the kernel's launch size is within the emulation's bound.
Test(loss_block, tree_covers_every_lane) {
    static double part[LB_MAX_T];
    const lb_phase ph = {1, 0};
    for (int T = 1; T <= LB_MAX_T; T++) {
        for (int t = 0; t < T; t++) part[t] = 1.0;
        for (int n = T; n > 1; n = lb_tree_half(n)) {
            const int h = lb_tree_half(n);
            for (int t = 0; t < n - h; t++) lb_tree_fold(t, h, T, ph, part);
        }
        cr_assert_eq(part[0], (double)T, "T = %d: the tree summed %g lanes", T, part[0]);
    }
}
