// The per-element Adagrad update (optim.h has the rule), shared by the CPU loops in
// optim.c and the CUDA kernels: the same IEEE-exact operations (square root and division
// included) in the same order, so both backends write the same bits.
#ifndef GRUREC_ADAGRAD_MATH_H
#define GRUREC_ADAGRAD_MATH_H

#include <math.h>

#include "util/hd.h"

// With momentum: acc += g²; v = μ·v − lr·g/√(acc + 1e-6); p += v.
static inline GRUREC_HD void adagrad_elem(float *p, float g, float *acc, float *v, float lr, float mu) {
    float a = *acc + g * g;
    *acc = a;
    float vn = mu * *v - lr * g / sqrtf(a + 1e-6f);
    *v = vn;
    *p += vn;
}

// Without momentum (μ = 0): acc += g²; p −= lr·g/√(acc + 1e-6).
static inline GRUREC_HD void adagrad_elem_nomom(float *p, float g, float *acc, float lr) {
    float a = *acc + g * g;
    *acc = a;
    *p -= lr * g / sqrtf(a + 1e-6f);
}

#endif
