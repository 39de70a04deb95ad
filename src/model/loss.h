// Output losses of GRU4Rec (DESIGN.md §3, REFERENCE-GRU4REC.md §A.2): loss value and the
// exact analytic gradient with respect to the raw scores, for one score matrix (CPU).
//
// Row i of R scores the C output columns for session lane i: columns 0..M-1 are the
// in-batch targets (the positive of row i is column i), M..C-1 the shared sampled
// negatives. Per row, with eps = 1e-24 inside every log, sigma = logistic:
//   R'_ij = act(R_ij - logq*log_q[j])
//   s_ij  = softmax of R'_i over the columns j != i (s_ii = 0)
//   cross-entropy  L_i = -log(softmax(R'_i)_i + eps)
//   bpr            L_i = -(1/C) sum_j log(sigma(R'_ii - R'_ij) + eps)        (j = i included)
//   top1           L_i = (1/C) sum_j [sigma(R'_ij - R'_ii) + sigma(R'_ij^2)] - sigma(R'_ii^2)/C
//   bpr-max        L_i = -log(sum_j s_ij sigma(R'_ii - R'_ij) + eps) + bpreg sum_j s_ij R'_ij^2
//   top1-max       L_i = sum_j s_ij (sigma(R'_ij - R'_ii) + sigma(R'_ij^2))
// A row with no negative column (C = 1) has L_i = 0 and zero gradient for bpr-max and top1-max.
#ifndef GRUREC_LOSS_H
#define GRUREC_LOSS_H

#include <stddef.h>

typedef enum { LOSS_CROSS_ENTROPY, LOSS_BPR, LOSS_TOP1, LOSS_BPR_MAX, LOSS_TOP1_MAX } loss_kind;
typedef enum { ACT_LINEAR, ACT_TANH, ACT_ELU } final_act_kind;

typedef struct {
    loss_kind loss;
    final_act_kind act;
    float elu_alpha;  // ELU(a): x >= 0 ? x : a*(exp(x)-1)
    float bpreg;      // BPR-max score regularisation
    float logq;       // logq correction weight (0 = off)
} loss_config;

// R: scores, M rows x C columns, row-major (C >= M >= 1).
// log_q: [C] log of each column's sampling probability, or NULL (then logq is ignored).
// Returns sum_i L_i (as double). Writes dR[i*C+j] = scale * d(sum_i L_i)/dR_ij.
// scratch: at least loss_scratch_floats(M, C) floats. R and dR may not alias.
// Allocates nothing; single-threaded; rows are independent.
double loss_forward_backward(const loss_config *cfg, const float *R, int M, int C, const float *log_q,
                             float scale, float *dR, float *scratch);
size_t loss_scratch_floats(int M, int C);

// Command-line names: "cross-entropy", "bpr", "top1", "bpr-max", "top1-max";
// "linear", "tanh", "elu-A" (A a finite number > 0, e.g. "elu-0.5", "elu-1").
// Return 1 on success, 0 otherwise (outputs untouched on failure; *alpha is written only
// for elu).
int loss_kind_parse(const char *s, loss_kind *out);
int final_act_parse(const char *s, final_act_kind *act, float *alpha);
const char *loss_kind_name(loss_kind k);

#endif
