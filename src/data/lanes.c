#include "data/lanes.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"

void lanes_init(lanes *l, const int64_t *off, const int32_t *items, int64_t n_sessions, int B) {
    memset(l, 0, sizeof *l);
    l->off = off;
    l->items = items;
    l->n_sessions = n_sessions;
    l->B = B;
    l->sess = xmalloc((size_t)B * sizeof *l->sess);
    l->pos = xmalloc((size_t)B * sizeof *l->pos);
    l->valid_after = xmalloc((size_t)(n_sessions + 1) * sizeof *l->valid_after);
    l->valid_after[n_sessions] = 0;
    for (int64_t s = n_sessions - 1; s >= 0; s--) l->valid_after[s] = l->valid_after[s + 1] + (off[s + 1] - off[s] >= 2);
}

void lanes_free(lanes *l) {
    free(l->sess);
    free(l->pos);
    free(l->valid_after);
    memset(l, 0, sizeof *l);
}

// Next session with at least one pair, or −1.
static int64_t take_session(lanes *l) {
    while (l->next < l->n_sessions) {
        int64_t s = l->next++;
        if (l->off[s + 1] - l->off[s] >= 2) return s;
    }
    return -1;
}

void lanes_restart(lanes *l) {
    l->next = 0;
    l->M = 0;
    for (int k = 0; k < l->B; k++) {
        int64_t s = take_session(l);
        if (s < 0) break;
        l->sess[l->M] = s;
        l->pos[l->M] = 0;
        l->M++;
    }
}

void lanes_batch(const lanes *l, int32_t *x, int32_t *y) {
    for (int k = 0; k < l->M; k++) {
        const int32_t *it = l->items + l->off[l->sess[k]] + l->pos[k];
        x[k] = it[0];
        y[k] = it[1];
    }
}

int lanes_step(lanes *l, int32_t *src) {
    int kept = 0;
    for (int k = 0; k < l->M; k++) {
        int64_t s = l->sess[k], p = l->pos[k] + 1;
        int fresh = 0;
        if (l->off[s] + p + 1 >= l->off[s + 1]) {  // no pair left: the next session
            s = take_session(l);
            p = 0;
            fresh = 1;
            if (s < 0) continue;  // stream exhausted: the lane goes
        }
        l->sess[kept] = s;
        l->pos[kept] = p;
        src[kept] = fresh ? -1 : k;
        kept++;
    }
    l->M = kept;
    return kept;
}

void lanes_move_rows(float **states, const int *widths, int n_states, const int32_t *src, int M) {
    // src[k] >= k (rows only move up), so moving in increasing k never reads a row
    // already overwritten. Rows from M on keep what they held (never read again).
    for (int k = 0; k < M; k++)
        for (int j = 0; j < n_states; j++) {
            float *to = states[j] + (size_t)k * widths[j];
            if (src[k] < 0) memset(to, 0, (size_t)widths[j] * sizeof *to);
            else if (src[k] != k) memcpy(to, states[j] + (size_t)src[k] * widths[j], (size_t)widths[j] * sizeof *to);
        }
}

void lanes_advance(lanes *l, float **states, const int *widths, int n_states) {
    int32_t *src = xmalloc((size_t)(l->M > 0 ? l->M : 1) * sizeof *src);
    int M = lanes_step(l, src);
    lanes_move_rows(states, widths, n_states, src, M);
    free(src);
}

int lanes_next_active(const lanes *l) {
    int continuing = 0, ending = 0;
    for (int k = 0; k < l->M; k++) {
        if (l->off[l->sess[k]] + l->pos[k] + 2 < l->off[l->sess[k] + 1]) continuing++;
        else ending++;
    }
    int64_t left = l->valid_after[l->next];
    return continuing + (int)(left < ending ? left : ending);
}

int64_t lanes_pairs_total(const lanes *l) {
    int64_t n = 0;
    for (int k = 0; k < l->M; k++) n += l->off[l->sess[k] + 1] - l->off[l->sess[k]] - 1 - l->pos[k];
    for (int64_t s = l->next; s < l->n_sessions; s++) {
        int64_t len = l->off[s + 1] - l->off[s];
        if (len >= 2) n += len - 1;
    }
    return n;
}
