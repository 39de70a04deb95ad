// Output losses and their exact gradients (see loss.h for the formulas): the loop over
// the rows. The per-row math, shared with the CUDA backend, is in loss_rows.h.
#include "model/loss.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "model/loss_rows.h"

size_t loss_scratch_floats(int M, int C) {
    (void)M;
    return C > 0 ? 4 * (size_t)C : 0;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
double loss_forward_backward(const loss_config *cfg, const float *R, int M, int C, const float *log_q,
                             float scale, float *dR, float *scratch) {
    CHECK(M >= 0 && C >= M, "loss: bad score matrix shape %d x %d (need C >= M)", M, C);
    if (M == 0) return 0.0;
    const size_t n = (size_t)C;
    float *a = scratch + n;  // act' (loss_row_filled's layout): ones for linear, once here
    if (cfg->act == ACT_LINEAR)
        for (int j = 0; j < C; j++) a[j] = 1.0f;
    double total = 0.0;
    for (int i = 0; i < M; i++)
        total += loss_row_filled(cfg, R + (size_t)i * n, log_q, C, i, scale, dR + (size_t)i * n, scratch);
    return total;
}

// ---- names ----

static const char *const loss_names[] = {"cross-entropy", "bpr", "top1", "bpr-max", "top1-max"};

const char *loss_kind_name(loss_kind k) {
    if ((int)k < 0 || (size_t)k >= sizeof loss_names / sizeof loss_names[0]) return "unknown";
    return loss_names[k];
}

int loss_kind_parse(const char *s, loss_kind *out) {
    if (!s) return 0;
    for (size_t k = 0; k < sizeof loss_names / sizeof loss_names[0]; k++)
        if (strcmp(s, loss_names[k]) == 0) {
            *out = (loss_kind)k;
            return 1;
        }
    return 0;
}

int final_act_parse(const char *s, final_act_kind *act, float *alpha) {
    if (!s) return 0;
    if (strcmp(s, "linear") == 0) {
        *act = ACT_LINEAR;
        return 1;
    }
    if (strcmp(s, "tanh") == 0) {
        *act = ACT_TANH;
        return 1;
    }
    if (strncmp(s, "elu-", 4) == 0) {
        const char *num = s + 4;
        // a plain decimal number: no sign, no whitespace, no hex/inf/nan spellings
        if (!((*num >= '0' && *num <= '9') || *num == '.')) return 0;
        for (const char *p = num; *p; p++)
            if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '-' || *p == '+'))
                return 0;
        char *end = NULL;
        float v = strtof(num, &end);
        if (end == num || *end != '\0' || !isfinite(v) || !(v > 0.0f)) return 0;
        *act = ACT_ELU;
        *alpha = v;
        return 1;
    }
    return 0;
}
