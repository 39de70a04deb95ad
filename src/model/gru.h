// One GRU layer, Cho et al.'s original form with the reset gate applied before U
// (DESIGN §3; not PyTorch's GRUCell):
//   r = σ(x W_r + h U_r + b_r),  z = σ(x W_z + h U_z + b_z),
//   c = tanh(x W_c + (r ⊙ h) U_c + b_c),  h' = (1 − z) ⊙ h + z ⊙ c.
// Row-major, M rows (lanes); W [in × 3H], U [H × 3H], b [3H], gate blocks r, z, c.
// As in GRU4Rec the carried state is not differentiated (one step per update).
#ifndef GRUREC_GRU_H
#define GRUREC_GRU_H

// xw: [M × 3H]. On entry it holds x·W (or, in one-hot mode, the gathered rows of the
// input table); the bias is added here. gates: [M × 3H] out (r, z, c);
// rh: [M × H] out (r ⊙ h, kept for the backward pass); h_new: [M × H] out.
void gru_forward(int M, int H, const float *h_prev, const float *U, const float *b, float *xw, float *gates,
                 float *rh, float *h_new);

// Gradients of one step. dh_new: [M × H]. Writes dxw [M × 3H] (the gradient of the
// pre-activations, i.e. of x·W + b) and dU [H × 3H], db [3H]: added to what they hold
// with ACCUMULATE, else overwritten (saves zeroing them every step).
// drh: [M × H] scratch. The caller turns dxw into dW, dx or table-row gradients.
void gru_backward(int M, int H, const float *h_prev, const float *U, const float *gates, const float *rh,
                  const float *dh_new, float *dxw, float *drh, float *dU, float *db, int accumulate);

#endif
