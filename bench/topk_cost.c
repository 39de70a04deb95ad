// What item coverage@K would add to an evaluation (docs/decisions.md, "No coverage@K"):
// per scored row, the time of the score product (M rows x H units x N items through
// sgemm_rm, as the CPU backend scores), of the rank that Recall/MRR/NDCG need (rank_of:
// one vectorised counting pass), and of the top-K list that coverage would need (a
// K-slot selection over the same row that skips blocks holding nothing above the K-th).
// usage: grurec-topk-cost [N items (43097)] [H units (100)] [K (20)] [REPEATS (5)]
#include <stdio.h>
#include <stdlib.h>

#include "backend/blas_setup.h"
#include "backend/sgemm.h"
#include "data/rng.h"
#include "eval/metrics.h"
#include "util/check.h"
#include "util/clock.h"

enum { M = 256 };  // rows per scoring call: grurec eval's default --batch

// The K best items of s[0..N-1] into top[0..K-1] (any order): a slot array whose smallest
// entry is replaced when a higher score comes. Blocks of 64 are first counted against the
// current K-th score (a branch-free loop the compiler vectorises, as rank_of's); after
// the first few thousand items almost every block holds none and is skipped.
enum { BLOCK = 64 };

static void take(const float *s, int64_t i, int K, float *v, int32_t *top, int *lo) {
    if (!(s[i] > v[*lo])) return;
    v[*lo] = s[i], top[*lo] = (int32_t)i;
    for (int j = 0; j < K; j++)
        if (v[j] < v[*lo]) *lo = j;
}

static void top_k(const float *restrict s, int64_t N, int K, int32_t *top) {
    float *v = malloc((size_t)K * sizeof *v);
    for (int j = 0; j < K; j++) top[j] = (int32_t)j, v[j] = s[j];
    int lo = 0;
    for (int j = 1; j < K; j++)
        if (v[j] < v[lo]) lo = j;
    int64_t i = K;
    for (; i + BLOCK <= N; i += BLOCK) {
        const float t = v[lo], *b = s + i;
        uint32_t above = 0;
        for (int j = 0; j < BLOCK; j++) above += (uint32_t)(b[j] > t);
        if (above)
            for (int j = 0; j < BLOCK; j++) take(s, i + j, K, v, top, &lo);
    }
    for (; i < N; i++) take(s, i, K, v, top, &lo);
    free(v);
}

int main(int argc, char **argv) {
    const int64_t N = argc > 1 ? atoll(argv[1]) : 43097;
    const int H = argc > 2 ? atoi(argv[2]) : 100, K = argc > 3 ? atoi(argv[3]) : 20;
    const int reps = argc > 4 ? atoi(argv[4]) : 5;
    set_program_name("grurec-topk-cost");
    blas_select_core(argv);
    sgemm_set_threads(1);
    CHECK(N > K && K >= 1 && H >= 1 && reps >= 1, "usage: grurec-topk-cost [N] [H] [K] [REPEATS]");
    float *h = malloc((size_t)M * (size_t)H * sizeof *h), *w = malloc((size_t)N * (size_t)H * sizeof *w);
    float *scores = malloc((size_t)M * (size_t)N * sizeof *scores);
    int32_t *targets = malloc(M * sizeof *targets), *top = malloc((size_t)K * sizeof *top);
    for (size_t i = 0; i < (size_t)M * (size_t)H; i++) h[i] = rng_uniform(1, 0, i) - 0.5f;
    for (size_t i = 0; i < (size_t)N * (size_t)H; i++) w[i] = rng_uniform(2, 0, i) - 0.5f;
    for (int r = 0; r < M; r++) targets[r] = (int32_t)(rng_uniform(3, 0, (uint64_t)r) * (float)N);
    printf("N %lld items, H %d, K %d, %d rows a call; ns per row, %d repeats side by side\n", (long long)N, H, K, M,
           reps);
    printf("  %10s %10s %10s %14s\n", "scores", "rank", "top-K", "top-K/scores");
    volatile double sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_s();
        sgemm_rm(CblasNoTrans, CblasTrans, M, (int)N, H, h, H, w, H, 0.0f, scores, (int)N);
        double t1 = now_s();
        for (int r = 0; r < M; r++) sink += rank_of(scores + (size_t)r * (size_t)N, N, targets[r], TIES_CONSERVATIVE);
        double t2 = now_s();
        for (int r = 0; r < M; r++) {
            top_k(scores + (size_t)r * (size_t)N, N, K, top);
            sink += top[0];
        }
        double t3 = now_s();
        // The list is right: no item outside it scores above its lowest entry.
        const float *s0 = scores + (size_t)(M - 1) * (size_t)N;
        float kth = s0[top[0]];
        for (int j = 1; j < K; j++) kth = s0[top[j]] < kth ? s0[top[j]] : kth;
        int64_t above = 0;
        for (int64_t i = 0; i < N; i++) above += s0[i] > kth;
        CHECK(above < K, "top_k: %lld items score above its K-th", (long long)above);
        double g = (t1 - t0) / M * 1e9, rk = (t2 - t1) / M * 1e9, tk = (t3 - t2) / M * 1e9;
        printf("  %10.0f %10.0f %10.0f %13.0f%%\n", g, rk, tk, 100 * tk / g);
    }
    free(h), free(w), free(scores), free(targets), free(top);
    return sink < 0;
}
