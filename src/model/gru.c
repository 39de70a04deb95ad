#include "model/gru.h"

#include <math.h>

#include "model/gru_math.h"
#include "backend/sgemm.h"

__attribute__((target_clones("avx512f", "avx2", "default")))
void gru_forward(int M, int H, const float *h_prev, const float *U, const float *b, float *xw, float *gates,
                 float *rh, float *h_new) {
    const int H3 = 3 * H;
    // gates[:, 0:2H] = h · [U_r U_z]
    sgemm_rm(CblasNoTrans, CblasNoTrans, M, 2 * H, H, h_prev, H, U, H3, 0.0f, gates, H3);
    for (int i = 0; i < M; i++) {
        float *g = gates + (size_t)i * H3, *a = xw + (size_t)i * H3;
        const float *h = h_prev + (size_t)i * H;
        for (int k = 0; k < H3; k++) a[k] += b[k];
        for (int k = 0; k < 2 * H; k++) g[k] = gru_gate(g[k], a[k]);
        for (int k = 0; k < H; k++) rh[(size_t)i * H + k] = gru_reset_h(g[k], h[k]);
    }
    // gates[:, 2H:3H] = (r ⊙ h) · U_c
    sgemm_rm(CblasNoTrans, CblasNoTrans, M, H, H, rh, H, U + 2 * H, H3, 0.0f, gates + 2 * H, H3);
    for (int i = 0; i < M; i++) {
        float *g = gates + (size_t)i * H3;
        const float *a = xw + (size_t)i * H3, *h = h_prev + (size_t)i * H;
        float *out = h_new + (size_t)i * H;
        for (int k = 0; k < H; k++) {
            float c = gru_candidate(g[2 * H + k], a[2 * H + k]);
            g[2 * H + k] = c;
            float z = g[H + k];
            out[k] = gru_h_new(h[k], z, c);
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void gru_backward(int M, int H, const float *h_prev, const float *U, const float *gates, const float *rh,
                  const float *dh_new, float *dxw, float *drh, float *dU, float *db, int accumulate) {
    const int H3 = 3 * H;
    // Candidate first: d(pre-activation of c) = dh' ⊙ z ⊙ (1 − c²).
    for (int i = 0; i < M; i++) {
        const float *g = gates + (size_t)i * H3, *dh = dh_new + (size_t)i * H, *h = h_prev + (size_t)i * H;
        float *d = dxw + (size_t)i * H3;
        for (int k = 0; k < H; k++) {
            float z = g[H + k], c = g[2 * H + k];
            d[2 * H + k] = gru_d_candidate(dh[k], z, c);
            d[H + k] = gru_d_update(dh[k], c, h[k], z);  // through z
        }
    }
    // d(r ⊙ h) = d(c pre-activation) · U_cᵀ
    sgemm_rm(CblasNoTrans, CblasTrans, M, H, H, dxw + 2 * H, H3, U + 2 * H, H3, 0.0f, drh, H);
    for (int i = 0; i < M; i++) {
        const float *g = gates + (size_t)i * H3, *h = h_prev + (size_t)i * H, *d_rh = drh + (size_t)i * H;
        float *d = dxw + (size_t)i * H3;
        for (int k = 0; k < H; k++) {
            float r = g[k];
            d[k] = gru_d_reset(d_rh[k], h[k], r);
        }
    }
    // dU[:, 0:2H] += hᵀ · d[r z];  dU[:, 2H:3H] += (r ⊙ h)ᵀ · d[c]
    const float beta = accumulate ? 1.0f : 0.0f;
    sgemm_rm(CblasTrans, CblasNoTrans, H, 2 * H, M, h_prev, H, dxw, H3, beta, dU, H3);
    sgemm_rm(CblasTrans, CblasNoTrans, H, H, M, rh, H, dxw + 2 * H, H3, beta, dU + 2 * H, H3);
    if (!accumulate)
        for (int k = 0; k < H3; k++) db[k] = 0.0f;
    for (int i = 0; i < M; i++) {
        const float *d = dxw + (size_t)i * H3;
        for (int k = 0; k < H3; k++) db[k] += d[k];
    }
}
