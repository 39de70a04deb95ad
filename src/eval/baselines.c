// Scoring and evaluation of the baselines, and `grurec baseline` (see baselines.h).
#include "eval/baselines.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/check.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "data/stream.h"
#include "util/clock.h"
#include "util/options.h"

void openblas_set_num_threads(int);

enum { UNIT_PREDICTIONS = 1024, MAX_ROWS = 256 };
#define ROW_BUFFER_BYTES ((size_t)64 << 20)  // per thread: rows x n_items floats
#define FLOAT_EXACT ((int64_t)1 << 24)

static const char *const names[] = {"pop", "spop", "itemknn", "bprmf"};

int baseline_parse(const char *s, baseline_kind *out) {
    for (int k = 0; k < 4; k++)
        if (s && strcmp(s, names[k]) == 0) {
            *out = (baseline_kind)k;
            return 1;
        }
    return 0;
}

const char *baseline_name(baseline_kind k) { return (unsigned)k < 4 ? names[k] : "?"; }

typedef struct {
    int64_t support;
    int32_t item;
} by_support;

static int cmp_support(const void *a, const void *b) {
    const by_support *x = a, *y = b;
    if (x->support != y->support) return x->support < y->support ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

int64_t popularity_levels(const int64_t *support, int64_t N, int32_t *level) {
    if (N <= 0) return 0;
    by_support *v = xmalloc((size_t)N * sizeof *v);
    for (int64_t i = 0; i < N; i++) v[i] = (by_support){support[i], (int32_t)i};
    qsort(v, (size_t)N, sizeof *v, cmp_support);
    int64_t D = 0;
    for (int64_t k = 0; k < N; k++) {
        if (k == 0 || v[k].support != v[k - 1].support) D++;
        level[v[k].item] = (int32_t)D;
    }
    free(v);
    return D;
}

void baseline_scorer_init(baseline_scorer *b, baseline_kind kind, const int64_t *support, int64_t N,
                          const itemknn_model *knn, const bprmf_model *mf) {
    CHECK(N >= 1 && N < ((int64_t)1 << 31), "baseline_scorer_init: %lld items", (long long)N);
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->n_items = N;
    b->level = xmalloc((size_t)N * sizeof *b->level);
    b->level_f = xmalloc((size_t)N * sizeof *b->level_f);
    b->n_levels = popularity_levels(support, N, b->level);
    CHECK(b->n_levels < FLOAT_EXACT, "baseline: %lld popularity levels do not fit a float's 24 bits",
          (long long)b->n_levels);
    for (int64_t i = 0; i < N; i++) b->level_f[i] = (float)b->level[i];
    if (kind == BASELINE_ITEMKNN) {
        CHECK(knn && knn->n_items == N && knn->n_levels == b->n_levels,
              "baseline_scorer_init: the item-KNN model was fitted on other items or support");
        b->knn = knn;
    }
    if (kind == BASELINE_BPRMF) {
        CHECK(mf && mf->n_items == N, "baseline_scorer_init: the BPR-MF model was fitted on other items");
        b->mf = mf;
    }
}

void baseline_scorer_free(baseline_scorer *b) {
    free(b->level);
    free(b->level_f);
    memset(b, 0, sizeof *b);
}

// ---- S-POP: the session's items with their counts -------------------------------------------

typedef struct {
    int32_t item, count, level;
} sp_entry;

static void spop_push(sp_entry *list, int64_t *d, int32_t item, const int32_t *level) {
    for (int64_t k = 0; k < *d; k++)
        if (list[k].item == item) {
            list[k].count++;
            return;
        }
    list[(*d)++] = (sp_entry){item, 1, level[item]};
}

static int cmp_sp(const void *a, const void *b) {
    const sp_entry *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? -1 : 1;
    return (x->level > y->level) - (x->level < y->level);
}

// row[item] = D + dense rank of (count, level) among the session's items.
static void spop_write(int64_t D, const sp_entry *list, int64_t d, sp_entry *tmp, float *row) {
    memcpy(tmp, list, (size_t)d * sizeof *tmp);
    qsort(tmp, (size_t)d, sizeof *tmp, cmp_sp);
    int64_t rank = 0;
    for (int64_t k = 0; k < d; k++) {
        if (k == 0 || cmp_sp(&tmp[k], &tmp[k - 1]) != 0) rank++;
        row[tmp[k].item] = (float)(D + rank);
    }
}

static void knn_write(const itemknn_model *k, int32_t item, float *row) {
    for (int64_t q = k->off[item]; q < k->off[item + 1]; q++) row[k->item[q]] = k->code[q];
}

// C (M x N) = A (M x F) · Qᵀ
static void mf_scores(const bprmf_model *mf, const float *A, int M, float *C) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, (int)mf->n_items, mf->factors, 1.0f, A, mf->factors,
                mf->Q, mf->factors, 0.0f, C, (int)mf->n_items);
}

void baseline_score_prefix(const baseline_scorer *b, const int32_t *prefix, int64_t len, float *out) {
    CHECK(len >= 1, "baseline_score_prefix: empty prefix");
    const int64_t N = b->n_items;
    for (int64_t e = 0; e < len; e++)
        CHECK(prefix[e] >= 0 && prefix[e] < N, "baseline_score_prefix: item %d outside 0..%lld", (int)prefix[e],
              (long long)N - 1);
    switch (b->kind) {
    case BASELINE_POP: memcpy(out, b->level_f, (size_t)N * sizeof *out); break;
    case BASELINE_SPOP: {
        CHECK(b->n_levels + len < FLOAT_EXACT, "S-POP: session of %lld events too long for exact scores", (long long)len);
        sp_entry *list = xmalloc((size_t)len * sizeof *list), *tmp = xmalloc((size_t)len * sizeof *tmp);
        int64_t d = 0;
        for (int64_t e = 0; e < len; e++) spop_push(list, &d, prefix[e], b->level);
        memcpy(out, b->level_f, (size_t)N * sizeof *out);
        spop_write(b->n_levels, list, d, tmp, out);
        free(list);
        free(tmp);
        break;
    }
    case BASELINE_ITEMKNN:
        memcpy(out, b->level_f, (size_t)N * sizeof *out);
        knn_write(b->knn, prefix[len - 1], out);
        break;
    case BASELINE_BPRMF: {
        const int F = b->mf->factors;
        float *sum = xcalloc((size_t)F, sizeof *sum), *avg = xmalloc((size_t)F * sizeof *avg);
        for (int64_t e = 0; e < len; e++) {
            const float *q = b->mf->Q + (size_t)prefix[e] * F;
            for (int f = 0; f < F; f++) sum[f] += q[f];
        }
        for (int f = 0; f < F; f++) avg[f] = sum[f] / (float)len;
        mf_scores(b->mf, avg, 1, out);
        free(sum);
        free(avg);
        break;
    }
    }
}

// ---- evaluation ---------------------------------------------------------------------------

typedef struct {
    const baseline_scorer *b;
    const csr_sessions *test;
    tie_mode ties;
    int rows;
    int64_t n_units;
    const int64_t *unit_start;  // [n_units + 1] session indices
    metrics *unit_met;          // [n_units]
    int64_t max_len;
    atomic_llong next;
} eval_job;

typedef struct {
    float *scores;  // rows x N
    int32_t *targets;
    float *avg, *sum;      // BPR-MF: rows x F, F
    sp_entry *list, *tmp;  // S-POP: max_len each
} eval_worker;

static void flush(const eval_job *j, eval_worker *w, int r, metrics *met) {
    if (r == 0) return;
    if (j->b->kind == BASELINE_BPRMF) mf_scores(j->b->mf, w->avg, r, w->scores);
    metrics_add_rows(met, w->scores, r, j->b->n_items, w->targets, j->ties);
}

static void eval_unit(const eval_job *j, eval_worker *w, int64_t u) {
    const baseline_scorer *b = j->b;
    const int64_t N = b->n_items;
    const int F = b->mf ? b->mf->factors : 0;
    metrics *met = &j->unit_met[u];
    int r = 0;
    for (int64_t s = j->unit_start[u]; s < j->unit_start[u + 1]; s++) {
        const int32_t *it = j->test->items + j->test->off[s];
        int64_t len = j->test->off[s + 1] - j->test->off[s], d = 0;
        if (F) memset(w->sum, 0, (size_t)F * sizeof *w->sum);
        for (int64_t p = 0; p + 1 < len; p++) {
            float *row = w->scores + (size_t)r * (size_t)N;
            switch (b->kind) {
            case BASELINE_POP: memcpy(row, b->level_f, (size_t)N * sizeof *row); break;
            case BASELINE_SPOP:
                spop_push(w->list, &d, it[p], b->level);
                memcpy(row, b->level_f, (size_t)N * sizeof *row);
                spop_write(b->n_levels, w->list, d, w->tmp, row);
                break;
            case BASELINE_ITEMKNN:
                memcpy(row, b->level_f, (size_t)N * sizeof *row);
                knn_write(b->knn, it[p], row);
                break;
            case BASELINE_BPRMF: {
                const float *q = b->mf->Q + (size_t)it[p] * F;
                float *avg = w->avg + (size_t)r * F;
                for (int f = 0; f < F; f++) w->sum[f] += q[f];
                for (int f = 0; f < F; f++) avg[f] = w->sum[f] / (float)(p + 1);
                break;
            }
            }
            w->targets[r++] = it[p + 1];
            if (r == j->rows) {
                flush(j, w, r, met);
                r = 0;
            }
        }
    }
    flush(j, w, r, met);
}

static void *eval_thread(void *arg) {
    eval_job *j = arg;
    const int64_t N = j->b->n_items;
    const int F = j->b->mf ? j->b->mf->factors : 0;
    eval_worker w = {0};
    w.scores = xmalloc((size_t)j->rows * (size_t)N * sizeof *w.scores);
    w.targets = xmalloc((size_t)j->rows * sizeof *w.targets);
    if (F) {
        w.avg = xmalloc((size_t)j->rows * (size_t)F * sizeof *w.avg);
        w.sum = xmalloc((size_t)F * sizeof *w.sum);
    }
    if (j->b->kind == BASELINE_SPOP) {
        w.list = xmalloc((size_t)(j->max_len ? j->max_len : 1) * sizeof *w.list);
        w.tmp = xmalloc((size_t)(j->max_len ? j->max_len : 1) * sizeof *w.tmp);
    }
    for (;;) {
        int64_t u = (int64_t)atomic_fetch_add(&j->next, 1);
        if (u >= j->n_units) break;
        eval_unit(j, &w, u);
    }
    free(w.scores);
    free(w.targets);
    free(w.avg);
    free(w.sum);
    free(w.list);
    free(w.tmp);
    return NULL;
}

void baseline_evaluate(const baseline_scorer *b, const csr_sessions *test, tie_mode ties, int threads, metrics *met) {
    CHECK(threads >= 1, "baseline_evaluate: %d threads", threads);
    const int64_t N = b->n_items, S = test->n_sessions;
    CHECK(test->off[0] == 0, "baseline_evaluate: offsets start at %lld", (long long)test->off[0]);
    int64_t max_len = 0, n_units = 0, acc = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t len = test->off[s + 1] - test->off[s];
        CHECK(len >= 0, "baseline_evaluate: session %lld has negative length", (long long)s);
        if (len > max_len) max_len = len;
        for (int64_t e = test->off[s]; e < test->off[s + 1]; e++)
            CHECK(test->items[e] >= 0 && test->items[e] < N, "baseline_evaluate: item %d outside 0..%lld",
                  (int)test->items[e], (long long)N - 1);
    }
    if (b->kind == BASELINE_SPOP)
        CHECK(b->n_levels + max_len < FLOAT_EXACT, "S-POP: session of %lld events too long for exact scores",
              (long long)max_len);
    // Units: consecutive sessions, closed once they hold UNIT_PREDICTIONS predictions.
    int64_t *unit_start = xmalloc((size_t)(S + 1) * sizeof *unit_start);
    unit_start[0] = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t len = test->off[s + 1] - test->off[s];
        acc += len > 1 ? len - 1 : 0;
        if (acc >= UNIT_PREDICTIONS || s == S - 1) {
            unit_start[++n_units] = s + 1;
            acc = 0;
        }
    }
    size_t rows = ROW_BUFFER_BYTES / ((size_t)N * sizeof(float));
    if (rows > MAX_ROWS) rows = MAX_ROWS;
    if (rows < 1) rows = 1;
    eval_job job = {.b = b, .test = test, .ties = ties, .rows = (int)rows, .n_units = n_units,
                    .unit_start = unit_start, .max_len = max_len};
    atomic_init(&job.next, 0);
    job.unit_met = xmalloc((size_t)(n_units ? n_units : 1) * sizeof *job.unit_met);
    for (int64_t u = 0; u < n_units; u++) metrics_init(&job.unit_met[u], met->cutoffs, met->n_cutoffs);
    if (threads > n_units) threads = n_units > 0 ? (int)n_units : 1;
    pthread_t *tid = xmalloc((size_t)threads * sizeof *tid);
    for (int t = 1; t < threads; t++)
        CHECK(pthread_create(&tid[t], NULL, eval_thread, &job) == 0, "baseline_evaluate: pthread_create failed");
    eval_thread(&job);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    free(tid);
    for (int64_t u = 0; u < n_units; u++) metrics_merge(met, &job.unit_met[u]);
    free(job.unit_met);
    free(unit_start);
}

// ---- grurec baseline ------------------------------------------------------------------------

static const char *const baseline_usage =
    "usage: grurec baseline pop|spop|itemknn|bprmf --data DIR [--split test|valid]\n"
    "                       [--cutoffs 1,5,10,20] [--ties conservative|standard|median] [--json]\n"
    "                       [--threads T] [method options]\n"
    "\n"
    "Fits a baseline of the GRU4Rec paper (ICLR 2016 §4.1) on the training split and evaluates\n"
    "it exactly as `grurec eval` evaluates a model: at every event of a session but the last,\n"
    "all items are scored and the next item ranked; same output, same --json keys.\n"
    "  pop       training popularity (meta.h5 item_support)\n"
    "  spop      the session's most frequent items so far, ties broken by popularity\n"
    "  itemknn   the current item's most similar items (session co-occurrence),\n"
    "            ties and items outside the top neighbours by popularity\n"
    "            --neighbors M (100)  --lambda L (20)  --alpha A (0.5: cosine)\n"
    "  bprmf     BPR matrix factorisation, sessions as users; a test session is the mean\n"
    "            of its items' factors so far\n"
    "            --factors F (100)  --learning-rate (0.05)  --reg (0.01)  --epochs (10)\n"
    "            --init-scale S (0.1: factors start uniform in ±S)  --seed (42)\n"
    "  --threads T   threads for fitting item-KNN and for scoring (1)\n"
    "Under mpirun each rank scores the sessions of its test shards (every rank fits the\n"
    "same model); the sums are added across ranks.\n";

int cmd_baseline(int argc, char **argv, comm *cm) {
    const char *data = NULL, *split_name = "test", *cutoffs_s = "1,5,10,20", *ties_s = "conservative",
               *method = NULL;
    int json = 0, threads = 1, neighbors = 100;
    double lambda = 20, alpha = 0.5;
    bprmf_options mo;
    bprmf_defaults(&mo);
    const char *knn_opt = NULL, *mf_opt = NULL;  // the last method option seen, for errors
    opt_parser op;
    for (opt_begin(&op, "baseline", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(baseline_usage, stdout); return 0; }
        else if (opt_is(&op, "--data")) data = opt_str(&op);
        else if (opt_is(&op, "--split")) split_name = opt_str(&op);
        else if (opt_is(&op, "--cutoffs")) cutoffs_s = opt_str(&op);
        else if (opt_is(&op, "--ties")) ties_s = opt_str(&op);
        else if (opt_is(&op, "--json")) json = 1;
        else if (opt_is(&op, "--threads")) threads = (int)opt_int(&op, 1, 1024);
        else if (opt_is(&op, "--neighbors")) { neighbors = (int)opt_int(&op, 1, 1000000); knn_opt = "--neighbors"; }
        else if (opt_is(&op, "--lambda")) { lambda = opt_num(&op, 0, 1e300); knn_opt = "--lambda"; }
        else if (opt_is(&op, "--alpha")) { alpha = opt_num(&op, 0, 1); knn_opt = "--alpha"; }
        else if (opt_is(&op, "--factors")) { mo.factors = (int)opt_int(&op, 1, 65536); mf_opt = "--factors"; }
        else if (opt_is(&op, "--learning-rate")) { mo.learning_rate = opt_float(&op, 0, 1e6); mf_opt = "--learning-rate"; }
        else if (opt_is(&op, "--reg")) { mo.reg = opt_float(&op, 0, 1e6); mf_opt = "--reg"; }
        else if (opt_is(&op, "--epochs")) { mo.epochs = (int)opt_int(&op, 0, 1000000); mf_opt = "--epochs"; }
        else if (opt_is(&op, "--init-scale")) { mo.init_scale = opt_float(&op, 0, 1e6); mf_opt = "--init-scale"; }
        else if (opt_is(&op, "--seed")) { mo.seed = (uint64_t)opt_int(&op, 0, INT64_MAX); mf_opt = "--seed"; }
        else if (!opt_positional(&op)) opt_unknown(&op);
        else if (method) usage_fail("baseline: one method, not '%s' and '%s'", method, op.arg);
        else method = op.arg;
    }
    baseline_kind kind;
    if (!method) usage_fail("baseline needs a method: pop, spop, itemknn or bprmf");
    if (!baseline_parse(method, &kind)) usage_fail("baseline: the method is pop, spop, itemknn or bprmf, not '%s'", method);
    if (!data) usage_fail("baseline needs --data DIR");
    if (knn_opt && kind != BASELINE_ITEMKNN) usage_fail("%s applies to itemknn only, not to %s", knn_opt, method);
    if (mf_opt && kind != BASELINE_BPRMF) usage_fail("%s applies to bprmf only, not to %s", mf_opt, method);
    eval_options eo;
    eval_options_parse(&eo, split_name, cutoffs_s, ties_s);
    const int split = eo.split, nc = eo.n_cutoffs;
    const int *cutoffs = eo.cutoffs;
    const tie_mode ties = eo.ties;

    openblas_set_num_threads(1);  // parallelism comes from our own threads (and ranks)
    const int rank = comm_rank(cm), world = comm_size(cm);
    dataset_meta m;
    dataset_open(data, &m);
    if (!m.split[split].present) input_fail(data, 0, "the dataset has no %s split", split_name);
    if (!m.split[SPLIT_TRAIN].present) input_fail(data, 0, "the dataset has no train split");

    double t0 = now_s();
    itemknn_model knn = {0};
    bprmf_model mf = {0};
    if (kind == BASELINE_ITEMKNN || kind == BASELINE_BPRMF) {
        session_stream tr;
        stream_load(&tr, &m, SPLIT_TRAIN, 0, 1);  // every rank fits on the whole training split
        csr_sessions trc = {tr.n_sessions, tr.off, tr.items};
        if (kind == BASELINE_ITEMKNN) itemknn_fit(&knn, &trc, m.item_support, m.n_items, lambda, alpha, neighbors, threads);
        else bprmf_fit(&mf, &trc, m.n_items, &mo, NULL);
        stream_free(&tr);
    }
    double t1 = now_s();
    baseline_scorer b;
    baseline_scorer_init(&b, kind, m.item_support, m.n_items, kind == BASELINE_ITEMKNN ? &knn : NULL,
                         kind == BASELINE_BPRMF ? &mf : NULL);
    session_stream te;
    stream_load(&te, &m, split, rank, world);
    csr_sessions tec = {te.n_sessions, te.off, te.items};
    metrics met;
    metrics_init(&met, cutoffs, nc);
    baseline_evaluate(&b, &tec, ties, threads, &met);
    metrics_allreduce(&met, cm);
    double t2 = now_s();
    if (rank == 0) {
        fprintf(stderr, "baseline %s: fitted in %.2f s, %lld predictions scored in %.2f s (%d rank%s x %d thread%s)\n",
                method, t1 - t0, (long long)met.n, t2 - t1, world, world == 1 ? "" : "s", threads,
                threads == 1 ? "" : "s");
        metrics_print(&met, json, split_name);
    }
    stream_free(&te);
    baseline_scorer_free(&b);
    itemknn_free(&knn);
    bprmf_free(&mf);
    dataset_close(&m);
    return 0;
}
