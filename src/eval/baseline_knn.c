// item-KNN (ICLR 2016 §4.1; the official GRU4Rec baselines.py ItemKNN): see baselines.h.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "eval/baselines.h"
#include "util/check.h"

typedef struct {
    int32_t item;
    int32_t level;
    double sim;
} candidate;

// Best first: sim desc, level desc, id asc.
static int cmp_candidate(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->sim != y->sim) return x->sim > y->sim ? -1 : 1;
    if (x->level != y->level) return x->level > y->level ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    // distinct items of each training session with their counts (CSR)
    const int64_t *d_off;
    const int32_t *d_item, *d_cnt;
    // inverted index: the sessions holding item i, with count_s(i) (CSR)
    const int64_t *inv_off;
    const int64_t *inv_sess;
    const int32_t *inv_cnt;
    const double *norm_a, *norm_b;  // (supp + λ)^α, (supp + λ)^(1-α)
    const int32_t *level;
    int64_t n_items;
    int M;
    atomic_llong next;
    int32_t *row_n;       // [n_items] neighbours kept
    candidate **row;      // [n_items] malloc'ed rows
} knn_job;

static void *knn_worker(void *arg) {
    knn_job *j = arg;
    const int64_t N = j->n_items;
    double *acc = xcalloc((size_t)N, sizeof *acc);
    int32_t *touched = xmalloc((size_t)N * sizeof *touched);
    candidate *cand = xmalloc((size_t)N * sizeof *cand);
    for (;;) {
        int64_t i = (int64_t)atomic_fetch_add(&j->next, 1);
        if (i >= N) break;
        int64_t nt = 0;
        for (int64_t e = j->inv_off[i]; e < j->inv_off[i + 1]; e++) {
            int64_t s = j->inv_sess[e];
            double ci = (double)j->inv_cnt[e];
            for (int64_t k = j->d_off[s]; k < j->d_off[s + 1]; k++) {
                int32_t it = j->d_item[k];
                if (acc[it] == 0) touched[nt++] = it;
                acc[it] += ci * (double)j->d_cnt[k];
            }
        }
        int64_t nc = 0;
        for (int64_t t = 0; t < nt; t++) {
            int32_t it = touched[t];
            if (it != i) {
                double norm = j->norm_a[i] * j->norm_b[it];
                if (norm == 0) norm = 1;  // as the official code (only when λ = 0 and supp = 0)
                cand[nc++] = (candidate){it, j->level[it], acc[it] / norm};
            }
            acc[it] = 0;
        }
        qsort(cand, (size_t)nc, sizeof *cand, cmp_candidate);
        int64_t keep = nc < j->M ? nc : j->M;
        j->row_n[i] = (int32_t)keep;
        j->row[i] = xmalloc((size_t)(keep ? keep : 1) * sizeof(candidate));
        memcpy(j->row[i], cand, (size_t)keep * sizeof(candidate));
    }
    free(acc);
    free(touched);
    free(cand);
    return NULL;
}

void itemknn_fit(itemknn_model *k, const csr_sessions *tr, const int64_t *support, int64_t N, double lambda,
                 double alpha, int M, int threads) {
    CHECK(N >= 1 && N < ((int64_t)1 << 31), "itemknn_fit: %lld items", (long long)N);
    CHECK(M >= 1, "itemknn_fit: %d neighbours", M);
    CHECK(lambda >= 0 && alpha >= 0 && alpha <= 1, "itemknn_fit: lambda %g alpha %g", lambda, alpha);
    CHECK(threads >= 1, "itemknn_fit: %d threads", threads);
    memset(k, 0, sizeof *k);
    k->n_items = N;
    k->neighbors = M;
    int32_t *level = xmalloc((size_t)N * sizeof *level);
    k->n_levels = popularity_levels(support, N, level);
    CHECK(k->n_levels + (int64_t)M < ((int64_t)1 << 24),
          "itemknn_fit: %lld popularity levels + %d neighbours do not fit a float's 24 bits",
          (long long)k->n_levels, M);

    // Distinct items per session, with counts.
    const int64_t S = tr->n_sessions, E = tr->off[S];
    int64_t *d_off = xmalloc((size_t)(S + 1) * sizeof *d_off);
    int32_t *d_item = xmalloc((size_t)(E ? E : 1) * sizeof *d_item);
    int32_t *d_cnt = xmalloc((size_t)(E ? E : 1) * sizeof *d_cnt);
    int64_t *inv_off = xcalloc((size_t)N + 1, sizeof *inv_off);
    d_off[0] = 0;
    int64_t nd = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t a = tr->off[s], len = tr->off[s + 1] - a;
        CHECK(len >= 0, "itemknn_fit: session %lld has negative length", (long long)s);
        int32_t *dst = d_item + nd;  // sort the session's items in place of its distinct list
        memcpy(dst, tr->items + a, (size_t)len * sizeof *dst);
        qsort(dst, (size_t)len, sizeof *dst, cmp_i32);
        int64_t w = 0;
        for (int64_t e = 0; e < len; e++) {
            CHECK(dst[e] >= 0 && dst[e] < N, "itemknn_fit: item %d outside 0..%lld", (int)dst[e], (long long)N - 1);
            if (w > 0 && dst[w - 1] == dst[e]) d_cnt[nd + w - 1]++;
            else { dst[w] = dst[e]; d_cnt[nd + w] = 1; w++; }
        }
        for (int64_t e = 0; e < w; e++) inv_off[dst[e] + 1]++;
        nd += w;
        d_off[s + 1] = nd;
    }
    for (int64_t i = 0; i < N; i++) inv_off[i + 1] += inv_off[i];
    int64_t *inv_sess = xmalloc((size_t)(nd ? nd : 1) * sizeof *inv_sess);
    int32_t *inv_cnt = xmalloc((size_t)(nd ? nd : 1) * sizeof *inv_cnt);
    int64_t *fill = xmalloc((size_t)N * sizeof *fill);
    memcpy(fill, inv_off, (size_t)N * sizeof *fill);
    for (int64_t s = 0; s < S; s++)
        for (int64_t e = d_off[s]; e < d_off[s + 1]; e++) {
            int64_t at = fill[d_item[e]]++;
            inv_sess[at] = s;
            inv_cnt[at] = d_cnt[e];
        }
    free(fill);

    double *norm_a = xmalloc((size_t)N * sizeof *norm_a), *norm_b = xmalloc((size_t)N * sizeof *norm_b);
    for (int64_t i = 0; i < N; i++) {
        CHECK(support[i] >= 0, "itemknn_fit: negative support of item %lld", (long long)i);
        norm_a[i] = pow((double)support[i] + lambda, alpha);
        norm_b[i] = pow((double)support[i] + lambda, 1.0 - alpha);
    }

    knn_job job = {.d_off = d_off, .d_item = d_item, .d_cnt = d_cnt, .inv_off = inv_off, .inv_sess = inv_sess,
                   .inv_cnt = inv_cnt, .norm_a = norm_a, .norm_b = norm_b, .level = level, .n_items = N, .M = M};
    atomic_init(&job.next, 0);
    job.row_n = xmalloc((size_t)N * sizeof *job.row_n);
    job.row = xmalloc((size_t)N * sizeof *job.row);
    if (threads > N) threads = (int)N;
    pthread_t *tid = xmalloc((size_t)threads * sizeof *tid);
    for (int t = 1; t < threads; t++)
        CHECK(pthread_create(&tid[t], NULL, knn_worker, &job) == 0, "itemknn_fit: pthread_create failed");
    knn_worker(&job);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    free(tid);

    // Compact into CSR; codes = D + dense rank of (sim, level) counted from the worst.
    k->off = xmalloc((size_t)(N + 1) * sizeof *k->off);
    k->off[0] = 0;
    for (int64_t i = 0; i < N; i++) k->off[i + 1] = k->off[i] + job.row_n[i];
    int64_t total = k->off[N];
    k->item = xmalloc((size_t)(total ? total : 1) * sizeof *k->item);
    k->sim = xmalloc((size_t)(total ? total : 1) * sizeof *k->sim);
    k->code = xmalloc((size_t)(total ? total : 1) * sizeof *k->code);
    for (int64_t i = 0; i < N; i++) {
        const candidate *r = job.row[i];
        int64_t n = job.row_n[i], base = k->off[i];
        int64_t rank = 0;
        for (int64_t q = n - 1; q >= 0; q--) {
            if (q == n - 1 || r[q].sim != r[q + 1].sim || r[q].level != r[q + 1].level) rank++;
            k->item[base + q] = r[q].item;
            k->sim[base + q] = r[q].sim;
            k->code[base + q] = (float)(k->n_levels + rank);
        }
        free(job.row[i]);
    }
    free(job.row);
    free(job.row_n);
    free(norm_a);
    free(norm_b);
    free(inv_sess);
    free(inv_cnt);
    free(inv_off);
    free(d_off);
    free(d_item);
    free(d_cnt);
    free(level);
}

void itemknn_free(itemknn_model *k) {
    free(k->off);
    free(k->item);
    free(k->sim);
    free(k->code);
    memset(k, 0, sizeof *k);
}
