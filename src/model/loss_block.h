// The per-row losses of loss_rows.h, split for a block of T threads per row (the CUDA
// kernel k_loss_rows), in plain C so that the CPU can run the very same code
// (loss_row_block below) and the tests can check it without a GPU.
//
// Lane t of T owns the columns j = t, t + T, t + 2T, ... < C, so that consecutive
// threads touch consecutive columns (coalesced loads and stores on the GPU). A row is a
// short sequence of phases; in each one
//   (a) every lane runs lb_lane over its own columns: it may write per-column values (the
//       activated row and act' into scratch, temporaries into scratch or the dR row) and
//       leaves up to LB_NP partial results, in double, in part[q*T + t];
//   (b) the partials of all lanes are combined by a fixed tree (lb_tree_fold: at each level
//       lane t < n - h folds in lane t + h, h = ceil(n/2)), by max or by sum;
//   (c) lb_finish turns the combined values part[q*T] into row scalars (every lane computes
//       the same ones) for the next phase.
// After the last phase lb_final writes each lane's columns of dR; the diagonal dR_ii is
// written by the lane that owns column i, so no column is ever written by two lanes and a
// lane reads back only what it wrote itself. The only values shared between lanes are
// the partials and the scalars: r_i and act'_i, which every lane needs, each lane computes
// for itself (lb_setup) with the same operations as the owner of column i.
//
// Phases per loss (M = combined by max, S = by sum; width = partials per lane):
//   cross-entropy  M(1): activate, keep r and act', max over all j      -> m
//                  S(1): out_j = e^{r_j - m}, sum                          -> xe_finish
//                  final: dR_ij = c out_j act'_j, dR_ii
//   bpr            S(2): activate, bpr_col: sum log(sig+eps), sum g; dR_ij  -> bpr_finish
//                  final: dR_ii
//   top1           S(2): activate, top1_col: sum f, sum gd; dR_ij           -> top1_finish
//                  final: dR_ii
//   bpr-max        M(1): activate, keep, max over j != i                   -> m
//                  S(4): out_j = e_j, t1_j = sig_j; S, SP, SQ, SD          -> bprmax_finish
//                  final: dR_ij = bprmax_grad, dR_ii
//   top1-max       M(1): as bpr-max                                         -> m
//                  S(3): out_j = e_j, t1_j = f_j, t2_j = g_j; S, SF, SD     -> top1max_finish
//                  final: dR_ij = top1max_grad, dR_ii
// bpr-max and top1-max with C < 2 have no phase: L = 0, dR = 0.
//
// Every element and every row scalar is computed by loss_rows.h's own helpers (the
// *_col, *_finish and *_grad functions, the activation's element math), so the results
// differ from loss_row only by the order of the double row sums: the sums agree to a few
// double ulps, the float results to an ulp or so (tests/test_loss_block.c). With T = 1
// the order is loss_row's own, and so are the bits, except for cross-entropy's sum of
// exponentials (loss_row keeps 8 running sums).
// The combining order depends on T only: a given T gives the same bits on every run, and
// the kernel gives loss_row_block's bits for its T.
#ifndef GRUREC_LOSS_BLOCK_H
#define GRUREC_LOSS_BLOCK_H

#include "model/loss_rows.h"

#define LB_NP 4        // partials per lane and phase at most (bpr-max: S, SP, SQ, SD)
#define LB_MAX_T 1024  // lanes at most (the largest CUDA block)

// One row, as every lane sees it.
typedef struct {
    loss_kind loss;
    final_act_kind act;
    float alpha, bpreg, w;   // ELU's alpha, bpr-max's bpreg, the logq weight in use (0: none)
    const float *R, *log_q;  // the raw score row, log_q (read only when w != 0)
    int C, i;
    float scale, invC;
    float *out;                    // the dR row (C floats)
    float *rbuf, *abuf, *t1, *t2;  // the row's scratch, loss_row's layout (4 x C floats)
    int keep_act;                  // act is not the identity: phase 0 keeps r, act' in rbuf, abuf
    const float *r;                // the activated row for the phases after the first: rbuf or R
    float ri, ai;                  // r_i and act'_i
    int bad;                       // unknown loss or activation (CUDA: NaN loss, dR untouched)
} lb_row;

// The row scalars the phases hand on.
typedef struct {
    float m;     // max of r over all j (cross-entropy) or over j != i (bpr-max, top1-max)
    row_coef k;  // the gradient pass's factors, dR_ii and L_i (loss_rows.h)
} lb_scalars;

// How a phase's partials combine.
typedef struct {
    int width;   // partials per lane
    int is_max;  // 1: by max, 0: by sum
} lb_phase;

// ---- per column ----

// r_j = act(R_j - w log_q_j) and *aj = act'(.): activate_row's element math.
LOSS_INLINE float lb_act(const lb_row *row, int j, float *aj) {
    const float x = row->w != 0.0f ? row->R[j] - row->w * row->log_q[j] : row->R[j];
    switch (row->act) {
    case ACT_TANH: return fm_tanh_d(x, aj);
    case ACT_ELU: return elu_from_exp(x, fexp(elu_exp_arg(x)), row->alpha, aj);
    default: *aj = 1.0f; return x;  // linear (lb_setup has rejected anything else)
    }
}

// act'_j for the phases after the first (loss_row's a, ones for linear).
LOSS_INLINE float lb_a(const lb_row *row, int j) { return row->act == ACT_LINEAR ? 1.0f : row->abuf[j]; }

// ---- the row ----

LOSS_INLINE lb_row lb_setup(const loss_config *cfg, const float *Rrow, const float *log_q, int C, int i,
                            float scale, float *out, float *scratch) {
    lb_row row;
    const size_t n = (size_t)C;
    row.loss = cfg->loss;
    row.act = cfg->act;
    row.alpha = cfg->elu_alpha;
    row.bpreg = cfg->bpreg;
    row.w = logq_weight(cfg, log_q);
    row.R = Rrow;
    row.log_q = log_q;
    row.C = C;
    row.i = i;
    row.scale = scale;
    row.invC = 1.0f / (float)C;
    row.out = out;
    row.rbuf = scratch, row.abuf = scratch + n, row.t1 = scratch + 2 * n, row.t2 = scratch + 3 * n;
    const int act_ok = row.act == ACT_LINEAR || row.act == ACT_TANH || row.act == ACT_ELU;
    const int loss_ok = row.loss == LOSS_CROSS_ENTROPY || row.loss == LOSS_BPR || row.loss == LOSS_TOP1 ||
                        row.loss == LOSS_BPR_MAX || row.loss == LOSS_TOP1_MAX;
#ifndef __CUDACC__
    CHECK(act_ok, "unknown final activation %d", (int)row.act);
    CHECK(loss_ok, "unknown loss %d", (int)row.loss);
#endif
    row.bad = !act_ok || !loss_ok;
    row.keep_act = row.act != ACT_LINEAR || row.w != 0.0f;
    row.r = row.keep_act ? row.rbuf : Rrow;
    row.ai = 1.0f;
    row.ri = row.bad ? NAN : lb_act(&row, i, &row.ai);
    return row;
}

LOSS_INLINE lb_scalars lb_scalars_init(const lb_row *row) {
    lb_scalars sc;
    row_coef zero = ROW_COEF_ZERO;
    sc.m = 0.0f;
    sc.k = zero;
    sc.k.L = row->bad ? NAN : 0.0;
    return sc;
}

// bpr-max and top1-max: a row with no negative column is defined as 0.
LOSS_INLINE int lb_no_negative(const lb_row *row) {
    return (row->loss == LOSS_BPR_MAX || row->loss == LOSS_TOP1_MAX) && row->C < 2;
}

// The number of combining phases (the same for every lane: the kernel's barriers).
LOSS_INLINE int lb_phases(const lb_row *row) {
    if (row->bad || lb_no_negative(row)) return 0;
    return (row->loss == LOSS_BPR || row->loss == LOSS_TOP1) ? 1 : 2;
}

LOSS_INLINE lb_phase lb_phase_of(const lb_row *row, int p) {
    lb_phase ph = {1, 0};
    switch (row->loss) {
    case LOSS_BPR:
    case LOSS_TOP1: ph.width = 2; break;
    case LOSS_CROSS_ENTROPY: ph.is_max = p == 0; break;
    case LOSS_BPR_MAX: ph.is_max = p == 0, ph.width = p == 0 ? 1 : 4; break;
    case LOSS_TOP1_MAX: ph.is_max = p == 0, ph.width = p == 0 ? 1 : 3; break;
    }
    return ph;
}

// ---- (a) the lanes' parts ----

// Phase 0 of cross-entropy, bpr-max and top1-max: activate the lane's columns (kept for
// the later phases) and their max, over j != i when skip_i.
LOSS_INLINE void lb_lane_act_max(int t, int T, const lb_row *row, int skip_i, double *part) {
    float mx = -INFINITY;
    for (int j = t; j < row->C; j += T) {
        float aj, rj = lb_act(row, j, &aj);
        if (row->keep_act) row->rbuf[j] = rj, row->abuf[j] = aj;
        if (!(skip_i && j == row->i)) mx = rj > mx ? rj : mx;  // (as max_range: NaN never wins)
    }
    part[t] = mx;
}

LOSS_INLINE void lb_lane_xe(int t, int T, const lb_row *row, const lb_scalars *sc, double *part) {
    double S = 0.0;
    for (int j = t; j < row->C; j += T) {
        const float e = fexp(row->r[j] - sc->m);
        row->out[j] = e;
        S += e;
    }
    part[t] = S;
}

// bpr in one pass: activation on the fly (nothing is needed again), dR_ij for j != i now.
LOSS_INLINE void lb_lane_bpr(int t, int T, const lb_row *row, double *part) {
    double sum_log = 0.0, sum_g = 0.0;
    for (int j = t; j < row->C; j += T) {
        float aj, rj = lb_act(row, j, &aj), d = row->ri - rj, g;
        sum_log += bpr_col(d, fexp(neg_abs(d)), row->invC, &g);
        sum_g += g;
        row->out[j] = row->scale * aj * g;
    }
    part[t] = sum_log, part[T + t] = sum_g;
}

LOSS_INLINE void lb_lane_top1(int t, int T, const lb_row *row, double *part) {
    double sum = 0.0, sum_gd = 0.0;
    for (int j = t; j < row->C; j += T) {
        float aj, rj = lb_act(row, j, &aj), f, gd;
        float g = top1_col(rj, row->ri, fexp(neg_abs(rj - row->ri)), fexp(-rj * rj), row->invC, &f, &gd);
        sum += f;
        sum_gd += gd;
        row->out[j] = row->scale * aj * g;
    }
    part[t] = sum, part[T + t] = sum_gd;
}

// neg_softmax_terms of one column: e = e^{r_j - m}, ed = e^{-|r_j - r_i|}; 0 and 1 at j = i.
LOSS_INLINE void lb_neg_softmax_col(const lb_row *row, const lb_scalars *sc, int j, float rj, float *e, float *ed) {
    const int diag = j == row->i;
    *e = diag ? 0.0f : fexp(rj - sc->m);
    *ed = diag ? 1.0f : fexp(neg_abs(rj - row->ri));
}

LOSS_INLINE void lb_lane_bprmax(int t, int T, const lb_row *row, const lb_scalars *sc, double *part) {
    double S = 0, SP = 0, SQ = 0, SD = 0;
    for (int j = t; j < row->C; j += T) {
        float rj = row->r[j], e, ed, sp;
        lb_neg_softmax_col(row, sc, j, rj, &e, &ed);
        const float dsd = bprmax_col(row->ri, rj, ed, &sp);
        row->out[j] = e;
        row->t1[j] = sp;
        S += e;
        SP += e * sp;
        SQ += e * (rj * rj);
        SD += e * dsd;
    }
    part[t] = S, part[T + t] = SP, part[2 * T + t] = SQ, part[3 * T + t] = SD;
}

LOSS_INLINE void lb_lane_top1max(int t, int T, const lb_row *row, const lb_scalars *sc, double *part) {
    double S = 0, SF = 0, SD = 0;
    for (int j = t; j < row->C; j += T) {
        float rj = row->r[j], e, ed, f, g;
        lb_neg_softmax_col(row, sc, j, rj, &e, &ed);
        const float dsd = top1max_col(rj, row->ri, ed, fexp(-rj * rj), &f, &g);
        row->out[j] = e;
        row->t1[j] = f;
        row->t2[j] = g;
        S += e;
        SF += e * f;
        SD += e * dsd;
    }
    part[t] = S, part[T + t] = SF, part[2 * T + t] = SD;
}

// Lane t's part of phase p: its partials into part[q*T + t], q < lb_phase_of(row, p).width.
LOSS_INLINE void lb_lane(int p, int t, int T, const lb_row *row, const lb_scalars *sc, double *part) {
    switch (row->loss) {
    case LOSS_CROSS_ENTROPY:
        if (p == 0) lb_lane_act_max(t, T, row, 0, part);
        else lb_lane_xe(t, T, row, sc, part);
        break;
    case LOSS_BPR: lb_lane_bpr(t, T, row, part); break;
    case LOSS_TOP1: lb_lane_top1(t, T, row, part); break;
    case LOSS_BPR_MAX:
        if (p == 0) lb_lane_act_max(t, T, row, 1, part);
        else lb_lane_bprmax(t, T, row, sc, part);
        break;
    case LOSS_TOP1_MAX:
        if (p == 0) lb_lane_act_max(t, T, row, 1, part);
        else lb_lane_top1max(t, T, row, sc, part);
        break;
    }
}

// ---- (b) the fixed combining tree ----

// With n partials left (lanes 0 .. n-1), lanes t < n - h fold in lane t + h, h =
// lb_tree_half(n); h remain. Any T works (no power of two needed); a level reads only
// lanes >= h and writes only lanes < n - h <= h, so a level's lanes may run at once.
LOSS_INLINE int lb_tree_half(int n) { return (n + 1) / 2; }

LOSS_INLINE void lb_tree_fold(int t, int h, int T, lb_phase ph, double *part) {
    for (int q = 0; q < ph.width; q++) {
        const double a = part[q * T + t], b = part[q * T + t + h];
        part[q * T + t] = ph.is_max ? (b > a ? b : a) : a + b;
    }
}

// ---- (c) the row scalars from the combined partials part[q*T] ----

LOSS_INLINE void lb_finish(int p, const lb_row *row, const double *part, int T, lb_scalars *sc) {
    if (lb_phase_of(row, p).is_max) {
        sc->m = (float)part[0];  // a max of floats: exact
        return;
    }
    switch (row->loss) {
    case LOSS_CROSS_ENTROPY: sc->k = xe_finish(part[0], fexp(row->ri - sc->m), row->scale, row->ai); break;
    case LOSS_BPR: sc->k = bpr_finish(part[0], part[T], row->C, row->invC, row->scale, row->ai); break;
    case LOSS_TOP1:
        sc->k = top1_finish(part[0], part[T], fexp(-row->ri * row->ri), row->C, row->invC, row->scale, row->ai);
        break;
    case LOSS_BPR_MAX:
        sc->k = bprmax_finish(part[0], part[T], part[2 * T], part[3 * T], row->bpreg, row->scale, row->ai);
        break;
    case LOSS_TOP1_MAX: sc->k = top1max_finish(part[0], part[T], part[2 * T], row->scale, row->ai); break;
    }
}

// ---- after the last phase: the lane's columns of dR ----

LOSS_INLINE void lb_final(int t, int T, const lb_row *row, const lb_scalars *sc) {
    if (row->bad) return;
    const row_coef *k = &sc->k;
    float *out = row->out;
    for (int j = t; j < row->C; j += T) {
        if (lb_no_negative(row)) {
            out[j] = 0.0f;
        } else if (j == row->i) {
            out[j] = k->diag;
        } else {
            switch (row->loss) {
            case LOSS_CROSS_ENTROPY: out[j] = k->c * out[j] * lb_a(row, j); break;
            case LOSS_BPR_MAX: out[j] = bprmax_grad(k, out[j], lb_a(row, j), row->r[j], row->t1[j], row->bpreg); break;
            case LOSS_TOP1_MAX: out[j] = top1max_grad(k, out[j], lb_a(row, j), row->t1[j], row->t2[j]); break;
            default: break;  // bpr, top1: written in their phase
            }
        }
    }
}

#ifndef __CUDACC__
// The CPU emulation of the kernel with T lanes (1 <= T <= LB_MAX_T): the same phase
// functions, each phase's lanes one after the other, then the same tree levels. Same
// arguments and results as loss_row (loss_rows.h); scratch: 4*C floats.
static inline double loss_row_block(const loss_config *cfg, const float *Rrow, const float *log_q, int C, int i,
                                    float scale, float *out, float *scratch, int T) {
    CHECK(T >= 1 && T <= LB_MAX_T, "loss_row_block: %d lanes (1 .. %d)", T, LB_MAX_T);
    double part[LB_NP * LB_MAX_T];
    const lb_row row = lb_setup(cfg, Rrow, log_q, C, i, scale, out, scratch);
    lb_scalars sc = lb_scalars_init(&row);
    const int np = lb_phases(&row);
    for (int p = 0; p < np; p++) {
        const lb_phase ph = lb_phase_of(&row, p);
        for (int t = 0; t < T; t++) lb_lane(p, t, T, &row, &sc, part);
        for (int n = T; n > 1; n = lb_tree_half(n)) {
            const int h = lb_tree_half(n);
            for (int t = 0; t < n - h; t++) lb_tree_fold(t, h, T, ph, part);
        }
        lb_finish(p, &row, part, T, &sc);
    }
    for (int t = 0; t < T; t++) lb_final(t, T, &row, &sc);
    return sc.k.L;
}
#endif

#endif
