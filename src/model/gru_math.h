// The elementwise math of one GRU step (gru.h has the equations), shared by the CPU loops
// in gru.c and the CUDA kernels: the same operations in the same order on both backends.
// The gate pre-activations are g + a with g the product with U and a = x·W + b (the bias
// already added into a).
#ifndef GRUREC_GRU_MATH_H
#define GRUREC_GRU_MATH_H

#include "model/fastmath.h"
#include "util/hd.h"

// r or z: σ(h·U + x·W + b).
static inline GRUREC_HD float gru_gate(float g, float a) { return fm_sigmoid(g + a); }

// r ⊙ h, the input of the candidate's product with U_c.
static inline GRUREC_HD float gru_reset_h(float r, float h) { return r * h; }

// c = tanh((r ⊙ h)·U_c + x·W_c + b_c).
static inline GRUREC_HD float gru_candidate(float g, float a) { return fm_tanh(g + a); }

// h' = (1 − z) ⊙ h + z ⊙ c, as h + z (c − h).
static inline GRUREC_HD float gru_h_new(float h, float z, float c) { return h + z * (c - h); }

// Backward, from dh = dL/dh'. d(pre-activation of c) = dh ⊙ z ⊙ (1 − c²).
static inline GRUREC_HD float gru_d_candidate(float dh, float z, float c) { return dh * z * (1.0f - c * c); }

// d(pre-activation of z) = dh ⊙ (c − h) ⊙ z (1 − z).
static inline GRUREC_HD float gru_d_update(float dh, float c, float h, float z) {
    return dh * (c - h) * z * (1.0f - z);
}

// d(pre-activation of r) from drh = dL/d(r ⊙ h): drh ⊙ h ⊙ r (1 − r).
static inline GRUREC_HD float gru_d_reset(float drh, float h, float r) { return drh * h * r * (1.0f - r); }

#endif
