// Single-precision exp, sigmoid and tanh for the hot elementwise loops (gates, losses):
// no library call and no branch, so the loops that call them vectorise, and only
// IEEE-exact operations, so every vector width (and the CUDA port) gives the same bits.
#ifndef GRUREC_FASTMATH_H
#define GRUREC_FASTMATH_H

#include <stdint.h>
#include <string.h>

#include "util/hd.h"

// Cephes' expf: x = k·ln2 + r, e^r by a degree-6 polynomial (about 1 ulp), 2^k put into
// the exponent bits. Exactly 0 below -87.3 (no slow subnormals); clamped above 88.
static inline GRUREC_HD float fm_exp(float x) {
    float xc = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
    // k = x/ln2 rounded to the nearest integer by the 1.5·2^23 trick (floorf does not
    // vectorise without -ffast-math); exact for |x/ln2| < 2^22.
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
#ifdef __CUDA_ARCH__
    float scale = __int_as_float((int)bits);
#else
    float scale;
    memcpy(&scale, &bits, sizeof scale);
#endif
    float y = p * scale;
    return x < -87.3f ? 0.0f : y;
}

static inline GRUREC_HD float fm_sigmoid(float x) { return 1.0f / (1.0f + fm_exp(-x)); }

// tanh and its derivative: (1 − u)/(1 + u) and 4u/(1 + u)² with u = e^{−2|x|} (no
// cancellation for large |x|), and below |x| = 0.625 Cephes' odd polynomial and 1 − t²
// (accurate near 0).
static inline GRUREC_HD float fm_tanh_d(float x, float *deriv) {
    float ax = x < 0.0f ? -x : x;
    float u = fm_exp(-2.0f * ax);
    float inv = 1.0f / (1.0f + u);
    float tl = (1.0f - u) * inv;
    float dl = 4.0f * u * inv * inv;
    float z = ax < 1e-10f ? 0.0f : x * x;  // (no subnormal intermediates)
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float ts = p * z * x + x;
    int small = ax < 0.625f;
    *deriv = small ? 1.0f - ts * ts : dl;
    return small ? ts : (x < 0.0f ? -tl : tl);
}

static inline GRUREC_HD float fm_tanh(float x) {
    float unused;
    return fm_tanh_d(x, &unused);
}

#endif
