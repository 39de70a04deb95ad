// memory_estimate_cpu against what the allocations it mirrors really request: the model
// tensors, the CPU training backend, the sampler, the evaluation scorer and the lanes,
// counted by wrapping malloc, calloc, realloc and posix_memalign (-Wl,--wrap, see
// tests/CMakeLists.txt). The estimate must never be below the count (it is used to
// refuse runs that cannot fit) and not far above it.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd/config.h"
#include "data/lanes.h"
#include "data/sampler.h"
#include "model/memory_estimate.h"
#include "model/model.h"

static size_t g_counted;
static int g_counting;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

void *__wrap_malloc(size_t n) {
    if (g_counting) g_counted += n;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
    if (g_counting) g_counted += n * size;
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
    if (g_counting) g_counted += n;  // (only fresh blocks are realloc'd in the window)
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    if (g_counting) g_counted += n;
    return __real_posix_memalign(p, align, n);
}

// Allocates what a training run allocates before its first step, and its evaluation
// scorer once it has scored; returns the bytes requested.
static size_t allocated_for(const train_config *c, const model_shape *s) {
    int64_t *support = malloc((size_t)s->n_items * sizeof *support);
    for (int64_t i = 0; i < s->n_items; i++) support[i] = 1 + i % 7;
    const int64_t off[2] = {0, 0};
    const int32_t items[1] = {0};
    model_tensors p;
    alias_table sampler = {0};
    lanes ln, eln;
    const int B = c->batch_size, EB = c->eval_batch, K = c->n_sample;
    g_counted = 0;
    g_counting = 1;
    tensors_alloc(&p, s);
    if (K > 0) alias_build(&sampler, support, (int32_t)s->n_items, c->sample_alpha);
    backend *b = backend_create(c, s, &p, B, 1, 0, support);
    lanes_init(&ln, off, items, 0, B);
    int32_t *x = malloc((size_t)B * 4), *y = malloc((size_t)B * 4), *src = malloc((size_t)B * 4);
    int32_t *neg = malloc((size_t)(K ? K : 1) * 4);
    backend *scorer = backend_create_scorer(b, EB);
    lanes_init(&eln, off, items, 0, EB);
    int32_t *ex = malloc((size_t)EB * 4), *ey = malloc((size_t)EB * 4), *esrc = malloc((size_t)EB * 4);
    const int32_t first[1] = {0};
    backend_score_all(scorer, 1, first);  // (a scorer takes its score buffer at its first scoring)
    g_counting = 0;
    size_t n = g_counted;
    free(ex); free(ey); free(esrc);
    lanes_free(&eln);
    backend_free(scorer);
    free(x); free(y); free(src); free(neg);
    lanes_free(&ln);
    backend_free(b);
    if (K > 0) alias_free(&sampler);
    tensors_free(&p);
    free(support);
    return n;
}

static void expect_tight_bound(const char *what, const train_config *c, int64_t n_items) {
    model_shape s;
    model_shape_init(&s, c, n_items);
    memory_estimate e;
    memory_estimate_cpu(&s, c, &e);
    size_t got = allocated_for(c, &s);
    cr_log_info("%s: estimate %zu bytes, allocated %zu bytes (%.3f)", what, e.total, got, (double)e.total / (double)got);
    cr_assert_geq(e.total, got, "%s: estimate %zu is below the %zu bytes allocated", what, e.total, got);
    // Slack: a few small blocks per buffer (alias_build's worst case, 16-byte lanes).
    cr_assert_leq(e.total, got + got / 20 + 4096, "%s: estimate %zu is far above the %zu bytes allocated", what, e.total, got);
    size_t parts = e.tables + e.dense + e.activations + e.sampler + e.eval + e.steps;
    cr_assert_eq(parts, e.total, "%s: the parts add up to %zu, not the total %zu", what, parts, e.total);
}

static train_config base(void) {
    train_config c;
    config_defaults(&c);
    return c;
}

Test(memory_estimate, defaults) {
    train_config c = base();
    expect_tight_bound("defaults", &c, 500);
}

Test(memory_estimate, onehot_input) {
    train_config c = base();
    config_set(&c, "embedding", "onehot", "test");
    config_set(&c, "batch-size", "33", "test");
    expect_tight_bound("onehot", &c, 400);
}

Test(memory_estimate, two_layers_separate_embedding_momentum) {
    train_config c = base();
    config_set(&c, "layers", "48,32", "test");
    config_set(&c, "embedding", "24", "test");  // a separate 24-wide input table
    config_set(&c, "momentum", "0.1", "test");
    config_set(&c, "batch-size", "40", "test");
    config_set(&c, "n-sample", "30", "test");
    expect_tight_bound("2 layers, separate embedding, momentum", &c, 777);
}

Test(memory_estimate, shared_embedding_without_samples) {
    train_config c = base();
    config_set(&c, "n-sample", "0", "test");
    config_set(&c, "batch-size", "17", "test");
    config_set(&c, "eval-batch", "9", "test");
    expect_tight_bound("shared embedding, no samples", &c, 300);
}

// Buffers of 2 MiB and more are rounded up to whole huge pages (xcalloc_huge).
Test(memory_estimate, large_tables_round_to_huge_pages) {
    train_config c = base();
    config_set(&c, "layers", "64", "test");
    config_set(&c, "batch-size", "256", "test");
    config_set(&c, "n-sample", "512", "test");
    expect_tight_bound("large tables", &c, 50000);
}

// The case of issue 18: --batch-size 1000000 needs terabytes (four 1e6 × 1e6 score blocks).
Test(memory_estimate, batch_of_a_million_needs_terabytes) {
    train_config c = base();
    config_set(&c, "batch-size", "1000000", "test");
    model_shape s;
    model_shape_init(&s, &c, 1000);
    memory_estimate e;
    memory_estimate_cpu(&s, &c, &e);
    const double blocks = 4.0 * 1e6 * (1e6 + c.n_sample) * 4;
    cr_assert_geq((double)e.activations, blocks, "activations %zu below the score blocks' %.0f bytes", e.activations, blocks);
    cr_assert_leq((double)e.activations, blocks * 1.01, "activations %zu far above %.0f", e.activations, blocks);
}
