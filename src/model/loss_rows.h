// The per-row math of the output losses (see loss.h for the formulas): one row of scores
// in, L_i and the row of dL_i/dR out. Header-only; the element and row-closing helpers
// (the *_col, *_finish, *_grad functions) are GRUREC_HD (hd.h): the CPU's whole-row
// functions (loss.c's loop) and the block-per-row CUDA kernel (loss_block.h) call the same
// ones, and differ only in the order of the row sums (none for 8 lanes: see ROW_LANES).
//
// Gradients with respect to the activated scores r (then dL/dR_ij = dL/dr_ij * act'(x_ij),
// x = R - logq*log_q; tanh' = 1 - tanh^2, ELU' = 1 for x >= 0 else ELU(x) + a = a e^x),
// sig' = sig(1-sig), s = the softmax over j != i, for row i and j != i:
//   cross-entropy  p = softmax(r_i), w = p_i/(p_i+eps):      g_j = w p_j,  g_i = w (p_i - 1)
//   bpr            sig_j = sig(r_i - r_j):      g_j = (1/C) sig_j (1-sig_j)/(sig_j+eps),  g_i = -sum_j g_j
//   top1           g_j = (1/C)(sig'(r_j - r_i) + 2 r_j sig'(r_j^2)),  g_i = -(1/C) sum_j sig'(r_j - r_i)
//   bpr-max        P = sum_j s_j sig_j, Q = sum_j s_j r_j^2:
//                  g_j = s_j [(P - sig_j^2)/(P+eps) + bpreg (r_j^2 + 2 r_j - Q)]
//                  g_i = -sum_j s_j sig_j (1-sig_j) / (P+eps)
//   top1-max       f_j = sig(r_j - r_i) + sig(r_j^2), L = sum_j s_j f_j:
//                  g_j = s_j [f_j - L + sig'(r_j - r_i) + 2 r_j sig'(r_j^2)]
//                  g_i = -sum_j s_j sig'(r_j - r_i)
// (the softmax gives ds_j/dr_k = s_j([j=k] - s_k), hence the "- P", "- Q", "- L" terms; the
// eps inside the logs is kept exactly: w and 1/(P+eps), 1/(sig_j+eps)).
//
// Layout of the work for one row: elementwise passes (the exponentials, then the
// arithmetic, each column's terms stored), the row sums over the stored terms in double
// lanes, then, for the losses whose gradient needs a row total, one pass writes dR.
// Nothing is allocated: scratch holds the activated row, act', and two per-column
// temporaries; the dR row itself holds one more until it is overwritten by the gradient.
#ifndef GRUREC_LOSS_ROWS_H
#define GRUREC_LOSS_ROWS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/fastmath.h"
#include "util/hd.h"
#include "model/loss.h"
#ifndef __CUDACC__
#include "util/check.h"
#endif

// The row functions are forced inline: on the CPU into each target clone of
// loss_forward_backward (so every clone vectorises them for its own ISA).
#ifdef __CUDACC__
#define LOSS_INLINE static __forceinline__ GRUREC_HD
#else
#define LOSS_INLINE static inline __attribute__((always_inline))
#endif

#define LOSS_EPS 1e-24
#define LOSS_EPSF 1e-24f
#define LOG_EPSF (-55.262043f)  // log(1e-24)

// ---- float math helpers ----
// No library calls: exp, log1p, tanh and expm1 are the Cephes single-precision
// polynomials (about 1-2 ulp) inlined: glibc's calls measured 1.3-2x slower here, and
// every call spills the float registers of the loop around it. The elementwise loops
// vectorise (-O3, AVX-512/AVX2 clones); in-order reductions stay scalar.

// e^x for x <= 0; exactly 0 below -87.3 (where e^x would be subnormal: subnormal operands
// are slow, and such terms are far below every tolerance here).
static inline GRUREC_HD float fexp(float x) { return fm_exp(x); }

// log(1 + u) for 0 <= u <= 1. Below 1e-7 log(1 + u) = u to float precision; the polynomial
// then runs on a clamped input so that no subnormal (slow) intermediate is ever formed.
static inline GRUREC_HD float flog1p01(float u) {
    float uc = u < 1e-7f ? 1e-7f : u;
    int hi = uc > 0.41421356f;                 // 1 + u > sqrt(2): use (1 + u)/2
    float f = hi ? 0.5f * uc - 0.5f : uc;      // (1+u)/2^k - 1, in [-0.293, 0.415]
    float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = p * f * z;
    float k = hi ? 1.0f : 0.0f;
    y += k * -2.12194440e-4f;
    y += -0.5f * z;
    float res = f + y + k * 0.693359375f;
    return u < 1e-7f ? u : res;
}

// sigma(d) and sigma(-d) from e = e^{-|d|}, without overflow.
static inline GRUREC_HD void sig_from(float d, float e, float *sp, float *sn) {
    float inv = 1.0f / (1.0f + e);
    float small = e * inv;
    *sp = d >= 0.0f ? inv : small;
    *sn = d >= 0.0f ? small : inv;
}

static inline GRUREC_HD float neg_abs(float x) { return x < 0.0f ? x : -x; }

// log(sig(d) + eps) from e = e^{-|d|}: the log-sigmoid, with eps folded in by a log-add-exp
// where it can matter (log-sigmoid below -30, i.e. sig below 1e-13).
static inline GRUREC_HD float log_sig_eps(float d, float e) {
    float ls = (d < 0.0f ? d : 0.0f) - flog1p01(e);
    if (ls < -30.0f) {
        float dl = ls - LOG_EPSF;
        ls = (dl > 0.0f ? ls : LOG_EPSF) + flog1p01(fexp(neg_abs(dl)));
    }
    return ls;
}

// ---- final activation: r = act(R - logq*log_q), a = act'(.) ----

// The logq weight in use: 0 when there is no log_q or the correction is off.
LOSS_INLINE float logq_weight(const loss_config *cfg, const float *log_q) {
    return (log_q && cfg->logq != 0.0f) ? cfg->logq : 0.0f;
}

// ELU's exponential is taken of min(x, 0) (e^x only where x < 0; no overflow above).
LOSS_INLINE float elu_exp_arg(float x) { return x < 0.0f ? x : 0.0f; }

// ELU(al) of x from ex = fexp(elu_exp_arg(x)); *d = its derivative.
// x < 0: al (e^x - 1), derivative al e^x; e^x - 1 by its series near 0 (no cancellation).
LOSS_INLINE float elu_from_exp(float x, float ex, float al, float *d) {
    float xc = (x > -1e-10f && x < 1e-10f) ? 0.0f : x;
    float sr = xc * (1.0f / 5040.0f) + (1.0f / 720.0f);
    sr = sr * xc + (1.0f / 120.0f);
    sr = sr * xc + (1.0f / 24.0f);
    sr = sr * xc + (1.0f / 6.0f);
    sr = sr * xc + 0.5f;
    float em1 = x > -0.35f ? sr * (xc * xc) + x : ex - 1.0f;
    *d = x >= 0.0f ? 1.0f : al * ex;
    return x >= 0.0f ? x : al * em1;
}

// Returns the activated row: Rrow itself when there is nothing to do (linear, no logq).
// For linear, a must already hold ones (filled once per call).
LOSS_INLINE const float *activate_row(const loss_config *cfg, const float *Rrow, const float *log_q, int C,
                                      float *r, float *a) {
    const float w = logq_weight(cfg, log_q);
    if (cfg->act == ACT_LINEAR && w == 0.0f) return Rrow;
    if (w != 0.0f)
        for (int j = 0; j < C; j++) r[j] = Rrow[j] - w * log_q[j];
    else
        memcpy(r, Rrow, (size_t)C * sizeof *r);
    switch (cfg->act) {
    case ACT_LINEAR: break;
    case ACT_TANH:
        // tanh and its derivative, accurate near 0 and for large |x| (src/model/fastmath.h).
        for (int j = 0; j < C; j++) r[j] = fm_tanh_d(r[j], &a[j]);
        break;
    case ACT_ELU: {
        const float al = cfg->elu_alpha;
        for (int j = 0; j < C; j++) a[j] = fexp(elu_exp_arg(r[j]));
        for (int j = 0; j < C; j++) {
            float d, y = elu_from_exp(r[j], a[j], al, &d);
            r[j] = y;
            a[j] = d;
        }
        break;
    }
    default:
#ifdef __CUDACC__
        return NULL;  // (no CHECK on the device: loss_row returns NaN)
#else
        CHECK(0, "unknown final activation %d", (int)cfg->act);
#endif
    }
    return r;
}

LOSS_INLINE float max_range(const float *r, int lo, int hi, float m) {
    // 16 running maxima: a fixed association, so it vectorises without -ffast-math
    // and every clone returns the same value.
    float acc[16];
    for (int k = 0; k < 16; k++) acc[k] = m;
    int j = lo;
    for (; j + 16 <= hi; j += 16)
        for (int k = 0; k < 16; k++) acc[k] = r[j + k] > acc[k] ? r[j + k] : acc[k];
    for (; j < hi; j++) m = r[j] > m ? r[j] : m;
    for (int k = 0; k < 16; k++) m = acc[k] > m ? acc[k] : m;
    return m;
}

// ---- the losses' element math ----
// One column's terms (the *_col functions) and a row's closing arithmetic on its sums
// (the *_finish functions), shared by the whole-row functions below and by the
// block-per-row phases of loss_block.h: both compute every element and every row scalar
// with these same operations; only the order of the row sums differs there.

// What a row's gradient pass needs from its sums, and the row's results.
typedef struct {
    float c;       // factor common to the columns' gradients (xe: scale w/S; bpr-max, top1-max: scale/S)
    float Af, Bf;  // bpr-max: 1/(P+eps), P/(P+eps) - bpreg Q
    float Lf;      // top1-max: L as a float
    float diag;    // dR_ii = scale * dL_i/dR_ii
    double L;      // L_i
} row_coef;
#define ROW_COEF_ZERO {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0}  // (every member: C++ warns on {0})

// cross-entropy, from S = sum_j e^{r_j - m} and ei = e^{r_i - m} (ai = act'_i).
LOSS_INLINE row_coef xe_finish(double S, float ei, float scale, float ai) {
    row_coef k = ROW_COEF_ZERO;
    const double p = ei / S, w = p / (p + LOSS_EPS);
    k.c = (float)(w / S) * scale;
    k.diag = (float)((double)scale * ai * w * (p - 1.0));
    k.L = -log(p + LOSS_EPS);
    return k;
}

// bpr, one column: d = r_i - r_j, e = e^{-|d|}. Returns log(sig(d) + eps);
// *g = (1/C) sig(d) sig(-d) / (sig(d) + eps), the column's dL/dr_j.
LOSS_INLINE float bpr_col(float d, float e, float invC, float *g) {
    float sp, sn;
    sig_from(d, e, &sp, &sn);
    *g = invC * (sn * (sp / (sp + LOSS_EPSF)));
    return log_sig_eps(d, e);
}

// bpr, from the sums over all C columns (the diagonal included) of log(sig + eps) and g.
LOSS_INLINE row_coef bpr_finish(double sum_log, double sum_g, int C, float invC, float scale, float ai) {
    row_coef k = ROW_COEF_ZERO;
    sum_g -= invC * 0.5f;  // the diagonal term (d = 0) of the sum: its derivative is 0
    k.diag = (float)(-(double)scale * ai * sum_g);
    k.L = -sum_log / C;  // the diagonal's log(sig(0) + eps) is part of the loss
    return k;
}

// top1, one column: e = e^{-|r_j - r_i|}, eq = e^{-r_j^2}. *f = sig(r_j - r_i) + sig(r_j^2)
// (the loss term), *gd = (1/C) sig'(r_j - r_i); returns the column's dL/dr_j.
LOSS_INLINE float top1_col(float rj, float ri, float e, float eq, float invC, float *f, float *gd) {
    float sp, sn;
    sig_from(rj - ri, e, &sp, &sn);
    float sq = 1.0f / (1.0f + eq);
    float dsq = sq * (eq * sq);  // sig'(r_j^2)
    *gd = invC * (sp * sn);
    *f = sp + sq;
    return *gd + invC * 2.0f * rj * dsq;
}

// top1, from the sums over all C columns of f and gd; eqi = e^{-r_i^2}.
LOSS_INLINE row_coef top1_finish(double sum, double sum_gd, float eqi, int C, float invC, float scale, float ai) {
    row_coef k = ROW_COEF_ZERO;
    sum_gd -= invC * 0.25f;  // the diagonal: sig'(0) = 1/4 of the loop does not belong there
    const float sqi = 1.0f / (1.0f + eqi);
    k.diag = (float)(-(double)scale * ai * sum_gd);
    k.L = (sum - sqi) / C;  // the sum includes sig(0) + sig(r_i^2) of the diagonal, as the formula
    return k;
}

// bpr-max, one column: ed = e^{-|r_i - r_j|}. *sp = sig(r_i - r_j); returns sig'(r_i - r_j).
LOSS_INLINE float bprmax_col(float ri, float rj, float ed, float *sp) {
    float sn;
    sig_from(ri - rj, ed, sp, &sn);
    return *sp * sn;
}

// bpr-max, from the softmax-weighted sums S = sum e_j, SP = sum e_j sig_j,
// SQ = sum e_j r_j^2, SD = sum e_j sig'_j.
LOSS_INLINE row_coef bprmax_finish(double S, double SP, double SQ, double SD, float bpreg, float scale, float ai) {
    row_coef k = ROW_COEF_ZERO;
    const double P = SP / S, Q = SQ / S, A = 1.0 / (P + LOSS_EPS);
    k.Af = (float)A, k.Bf = (float)(P * A - (double)bpreg * Q), k.c = (float)(scale / S);
    k.diag = (float)(-(double)scale * ai * (SD / S) * A);
    k.L = -log(P + LOSS_EPS) + (double)bpreg * Q;
    return k;
}

// bpr-max, dR_ij (j != i) from e = e^{r_j - m}, act'_j, r_j and sj = sig(r_i - r_j).
LOSS_INLINE float bprmax_grad(const row_coef *k, float e, float aj, float rj, float sj, float bpreg) {
    // (sj * Af) * sj: sig_j^2 / (P + eps) without forming a subnormal sig_j^2
    return k->c * e * aj * (k->Bf - (sj * k->Af) * sj + bpreg * rj * (rj + 2.0f));
}

// top1-max, one column: ed = e^{-|r_j - r_i|}, eq = e^{-r_j^2}. *f = sig(r_j - r_i) +
// sig(r_j^2), *g = sig'(r_j - r_i) + 2 r_j sig'(r_j^2); returns sig'(r_j - r_i).
LOSS_INLINE float top1max_col(float rj, float ri, float ed, float eq, float *f, float *g) {
    float sp, sn;
    sig_from(rj - ri, ed, &sp, &sn);
    float sq = 1.0f / (1.0f + eq);
    float dsq = sq * (eq * sq);
    float dsd = sp * sn;
    *f = sp + sq;
    *g = dsd + 2.0f * rj * dsq;
    return dsd;
}

// top1-max, from S = sum e_j, SF = sum e_j f_j, SD = sum e_j sig'(r_j - r_i).
LOSS_INLINE row_coef top1max_finish(double S, double SF, double SD, float scale, float ai) {
    row_coef k = ROW_COEF_ZERO;
    k.L = SF / S;
    k.Lf = (float)k.L, k.c = (float)(scale / S);
    k.diag = (float)(-(double)scale * ai * (SD / S));
    return k;
}

// top1-max, dR_ij (j != i) from e = e^{r_j - m}, act'_j and the column's f and g.
LOSS_INLINE float top1max_grad(const row_coef *k, float e, float aj, float f, float g) {
    return k->c * e * aj * (f - k->Lf + g);
}

// ---- per-row losses: r, a = activated row and act'; out = dR row; t1, t2 = [C] temporaries.
// Each returns L_i and writes out[j] = scale * dL_i/dR_ij. CPU only (the CUDA kernel runs
// loss_block.h's phases): each row is elementwise passes that store their per-column
// terms, then the row sums in ROW_LANES double lanes.
#ifndef __CUDACC__

// Row sums: lane k sums the columns j = k, k + 8, k + 16, ... in double, and the lanes
// are then combined by loss_block.h's fixed tree (0-3 += 4-7, 0-1 += 2-3, 0 += 1): the
// block kernel's order for T = 8 lanes, so loss_row gives loss_row_block's bits for
// T = 8. The lanes are one vector of doubles (GCC vector extensions, lowered to whatever
// the target clone has); an in-order sum of doubles would stay scalar.
#define ROW_LANES 8
// (lanes_f is read straight from float arrays: any alignment, and it may alias them)
typedef float lanes_f __attribute__((vector_size(ROW_LANES * sizeof(float)), aligned(4), may_alias));
typedef double lanes_d __attribute__((vector_size(ROW_LANES * sizeof(double))));
// (macros, not functions: a vector passed by value would draw -Wpsabi in the baseline clone)
#define LANES_AT(p) (*(const lanes_f *)(p))
#define LANES_WIDEN(v) __builtin_convertvector((v), lanes_d)

// The columns in whole groups of ROW_LANES, then the rest one by one (column j on lane
// j % ROW_LANES).
LOSS_INLINE int lanes_whole(int C) { return C - C % ROW_LANES; }

LOSS_INLINE double lanes_combine(const lanes_d *lanes) {
    double acc[ROW_LANES];
    memcpy(acc, lanes, sizeof acc);
    for (int h = ROW_LANES / 2; h >= 1; h /= 2)
        for (int t = 0; t < h; t++) acc[t] += acc[t + h];
    return acc[0];
}

// Sum in double of x[0 .. n), in lanes.
LOSS_INLINE double sum_f64(const float *x, int n) {
    lanes_d acc = {0};
    const int whole = lanes_whole(n);
    for (int j = 0; j < whole; j += ROW_LANES) acc += LANES_WIDEN(LANES_AT(x + j));
    for (int j = whole; j < n; j++) acc[j - whole] += x[j];
    return lanes_combine(&acc);
}

LOSS_INLINE double row_xe(const float *r, const float *a, int C, int i, float scale, float *out) {
    const float m = max_range(r, 0, C, -INFINITY);
    for (int j = 0; j < C; j++) out[j] = fexp(r[j] - m);
    const row_coef k = xe_finish(sum_f64(out, C), out[i], scale, a[i]);
    for (int j = 0; j < C; j++) out[j] = k.c * out[j] * a[j];
    out[i] = k.diag;
    return k.L;
}

LOSS_INLINE double row_bpr(const float *r, const float *a, int C, int i, float scale, float *out, float *t1,
                          float *t2) {
    const float invC = 1.0f / (float)C, ri = r[i];
    for (int j = 0; j < C; j++) out[j] = fexp(neg_abs(ri - r[j]));
    for (int j = 0; j < C; j++) {  // t1 = the log terms, t2 = g
        float g;
        t1[j] = bpr_col(ri - r[j], out[j], invC, &g);
        t2[j] = g;
        out[j] = scale * a[j] * g;
    }
    const row_coef k = bpr_finish(sum_f64(t1, C), sum_f64(t2, C), C, invC, scale, a[i]);
    out[i] = k.diag;
    return k.L;
}

LOSS_INLINE double row_top1(const float *r, const float *a, int C, int i, float scale, float *out, float *t1,
                           float *t2) {
    const float invC = 1.0f / (float)C, ri = r[i];
    for (int j = 0; j < C; j++) {
        out[j] = fexp(neg_abs(r[j] - ri));
        t1[j] = fexp(-r[j] * r[j]);
    }
    const float eqi = t1[i];
    for (int j = 0; j < C; j++) {  // t1 = f (over e^{-r_j^2}), t2 = gd
        float f, gd, g = top1_col(r[j], ri, out[j], t1[j], invC, &f, &gd);
        t1[j] = f;
        t2[j] = gd;
        out[j] = scale * a[j] * g;
    }
    const row_coef k = top1_finish(sum_f64(t1, C), sum_f64(t2, C), eqi, C, invC, scale, a[i]);
    out[i] = k.diag;
    return k.L;
}

// e^{r_j - m} (softmax numerators) and e^{-|r_j - r_i|} over [lo, hi).
LOSS_INLINE void exps_range(const float *r, int lo, int hi, float ri, float m, float *e, float *ed) {
    for (int j = lo; j < hi; j++) {
        e[j] = fexp(r[j] - m);
        ed[j] = fexp(neg_abs(r[j] - ri));
    }
}

// The terms every softmax-over-negatives loss needs: e[j] = exp(r_j − max_{k≠i} r_k)
// (the unnormalised s_ij) and ed[j] = exp(−|r_i − r_j|); the diagonal gets e = 0 (s_ii = 0,
// so it drops out of every sum) and ed = 1.
LOSS_INLINE void neg_softmax_terms(const float *r, int C, int i, float *e, float *ed) {
    const float ri = r[i];
    const float m = max_range(r, i + 1, C, max_range(r, 0, i, -INFINITY));
    exps_range(r, 0, i, ri, m, e, ed);
    exps_range(r, i + 1, C, ri, m, e, ed);
    e[i] = 0.0f, ed[i] = 1.0f;
}

LOSS_INLINE double row_bprmax(const float *r, const float *a, int C, int i, float scale, float bpreg, float *out,
                              float *t1, float *t2) {
    if (C < 2) {  // no negative: defined as 0
        out[0] = 0.0f;
        return 0.0;
    }
    const float ri = r[i];
    neg_softmax_terms(r, C, i, out, t1);
    for (int j = 0; j < C; j++) {  // t1 = sig(r_i - r_j), t2 = its derivative
        float sp;
        t2[j] = bprmax_col(ri, r[j], t1[j], &sp);
        t1[j] = sp;
    }
    lanes_d S = {0}, SP = {0}, SQ = {0}, SD = {0};
    const int whole = lanes_whole(C);
    for (int j = 0; j < whole; j += ROW_LANES) {
        const lanes_f e = LANES_AT(out + j), rj = LANES_AT(r + j);
        S += LANES_WIDEN(e);
        SP += LANES_WIDEN(e * LANES_AT(t1 + j));
        SQ += LANES_WIDEN(e * (rj * rj));
        SD += LANES_WIDEN(e * LANES_AT(t2 + j));
    }
    for (int j = whole; j < C; j++) {
        const float e = out[j], rj = r[j];
        S[j - whole] += e;
        SP[j - whole] += e * t1[j];
        SQ[j - whole] += e * (rj * rj);
        SD[j - whole] += e * t2[j];
    }
    const row_coef k = bprmax_finish(lanes_combine(&S), lanes_combine(&SP), lanes_combine(&SQ), lanes_combine(&SD), bpreg,
                                     scale, a[i]);
    for (int j = 0; j < C; j++) out[j] = bprmax_grad(&k, out[j], a[j], r[j], t1[j], bpreg);
    out[i] = k.diag;
    return k.L;
}

LOSS_INLINE double row_top1max(const float *r, const float *a, int C, int i, float scale, float *out, float *t1,
                               float *t2, float *t3) {
    if (C < 2) {  // no negative: defined as 0
        out[0] = 0.0f;
        return 0.0;
    }
    const float ri = r[i];
    neg_softmax_terms(r, C, i, out, t1);
    for (int j = 0; j < C; j++) t2[j] = fexp(-r[j] * r[j]);
    // t1 = f, t2 = g, t3 = sig'(r_j - r_i); t3 may be r itself (each column read, then written)
#pragma GCC ivdep
    for (int j = 0; j < C; j++) {
        float f, g;
        t3[j] = top1max_col(r[j], ri, t1[j], t2[j], &f, &g);
        t1[j] = f;
        t2[j] = g;
    }
    lanes_d S = {0}, SF = {0}, SD = {0};
    const int whole = lanes_whole(C);
    for (int j = 0; j < whole; j += ROW_LANES) {
        const lanes_f e = LANES_AT(out + j);
        S += LANES_WIDEN(e);
        SF += LANES_WIDEN(e * LANES_AT(t1 + j));
        SD += LANES_WIDEN(e * LANES_AT(t3 + j));
    }
    for (int j = whole; j < C; j++) {
        const float e = out[j];
        S[j - whole] += e;
        SF[j - whole] += e * t1[j];
        SD[j - whole] += e * t3[j];
    }
    const row_coef k = top1max_finish(lanes_combine(&S), lanes_combine(&SF), lanes_combine(&SD), scale, a[i]);
    for (int j = 0; j < C; j++) out[j] = top1max_grad(&k, out[j], a[j], t1[j], t2[j]);
    out[i] = k.diag;
    return k.L;
}

// ---- one whole row ----

// Row i, for a caller that has set a = scratch + C to ones when cfg->act is linear
// (loss_forward_backward does it once per call).
LOSS_INLINE double loss_row_filled(const loss_config *cfg, const float *Rrow, const float *log_q, int C, int i,
                                   float scale, float *out, float *scratch) {
    const size_t n = (size_t)C;
    float *rbuf = scratch, *a = scratch + n, *t1 = scratch + 2 * n, *t2 = scratch + 3 * n;
    const float *r = activate_row(cfg, Rrow, log_q, C, rbuf, a);
    double L;
    switch (cfg->loss) {
    case LOSS_CROSS_ENTROPY: L = row_xe(r, a, C, i, scale, out); break;
    case LOSS_BPR: L = row_bpr(r, a, C, i, scale, out, t1, t2); break;
    case LOSS_TOP1: L = row_top1(r, a, C, i, scale, out, t1, t2); break;
    case LOSS_BPR_MAX: L = row_bprmax(r, a, C, i, scale, cfg->bpreg, out, t1, t2); break;
    // (top1-max's third temporary is rbuf: r is read there for the last time)
    case LOSS_TOP1_MAX: L = row_top1max(r, a, C, i, scale, out, t1, t2, rbuf); break;
    default: CHECK(0, "unknown loss %d", (int)cfg->loss);
    }
    return L;
}

// One row, standalone: Rrow = row i of the M x C score matrix (column i its positive),
// log_q as for loss_forward_backward; writes out[j] = scale * dL_i/dR_ij (C floats) and
// returns L_i. scratch: 4*C floats (the activated row, act', two temporaries). Exactly
// what loss_forward_backward computes for row i. An unknown loss or activation CHECKs.
static inline double loss_row(const loss_config *cfg, const float *Rrow, const float *log_q, int C, int i,
                                        float scale, float *out, float *scratch) {
    if (cfg->act == ACT_LINEAR)
        for (int j = 0; j < C; j++) scratch[C + j] = 1.0f;
    return loss_row_filled(cfg, Rrow, log_q, C, i, scale, out, scratch);
}

#endif  // !__CUDACC__

#endif
