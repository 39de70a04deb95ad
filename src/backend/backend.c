// Dispatch of the backend interface to the implementation chosen for this process.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "util/check.h"
#ifdef GRUREC_HAVE_CUDA
#include "device_info.h"
#endif

struct backend {
    const backend_ops *ops;
    backend_impl *impl;
    table_optim own;  // the tables' Adagrad state of a backend trained alone (backend_create)
    size_t n_dense;   // the dense values (a whole update)
};

static backend_device g_device = BACKEND_CPU;
static int g_tf32;

void backend_set_tf32(int on) { g_tf32 = on; }
int backend_tf32(void) { return g_tf32; }

const char *backend_device_name(backend_device d) { return d == BACKEND_CUDA ? "cuda" : "cpu"; }
backend_device backend_current_device(void) { return g_device; }

const char *backend_devices_built(void) {
#ifdef GRUREC_HAVE_CUDA
    if (cuda_emulated()) return "cpu, cuda (EMULATED on the host CPU: a test build, no GPU)";
    return "cpu, cuda";
#else
    return "cpu";
#endif
}

backend_device backend_choose_device(const char *want, int local_rank, int verbose) {
    if (!want) want = getenv("GRUREC_DEVICE");
    if (!want || !*want) want = "auto";
    const int is_auto = strcmp(want, "auto") == 0;
    if (strcmp(want, "cpu") == 0) return g_device = BACKEND_CPU;
    if (!is_auto && strcmp(want, "cuda") != 0) usage_fail("--device is cpu, cuda or auto, not '%s'", want);
    char why[320] = "this grurec was built without CUDA (configure with nvcc on the PATH)";
#ifdef GRUREC_HAVE_CUDA
    int n = cuda_usable_devices(why, (int)sizeof why);
    if (n > local_rank) {  // one GPU per rank of a node, by local rank
        cuda_select_device(local_rank);
        if (verbose) {
            char gpu[400];
            cuda_describe_device(gpu, (int)sizeof gpu);
            fprintf(stderr, "%s: device: %s%s\n", program_name(), gpu,
                    cuda_emulated() ? ": a test build, no GPU runs and no speed figure means anything (docs/cuda.md)"
                                    : "");
        }
        return g_device = BACKEND_CUDA;
    }
    if (n > 0)
        snprintf(why, sizeof why, "local rank %d has no GPU of its own (%d on this node): start at most %d rank%s per node",
                 local_rank, n, n, n > 1 ? "s" : "");
#else
    (void)local_rank;
#endif
    if (!is_auto) {
        fprintf(stderr, "%s: --device cuda: no usable GPU: %s\n", program_name(), why);
        exit(EXIT_INTERNAL);
    }
    if (verbose) fprintf(stderr, "%s: --device auto: no usable GPU (%s): running on the CPU\n", program_name(), why);
    return g_device = BACKEND_CPU;
}

static backend *create(const train_config *c, const model_shape *s, model_tensors *params, const table_optim *opt,
                       int max_rows, int rank, const int64_t *item_support) {
    backend *b = xcalloc(1, sizeof *b);
    b->ops = &cpu_backend_ops;
#ifdef GRUREC_HAVE_CUDA
    if (g_device == BACKEND_CUDA) b->ops = &cuda_backend_ops;
#endif
    b->impl = b->ops->create(c, s, params, opt, max_rows, rank, item_support);
    b->n_dense = s->n_dense;
    return b;
}

backend *backend_create(const train_config *c, const model_shape *s, model_tensors *params, int max_rows,
                        int for_training, int rank, const int64_t *item_support) {
    table_optim own = {0};
    arena heap = arena_heap();
    if (for_training) table_optim_alloc(&own, s, c->momentum > 0, &heap);
    backend *b = create(c, s, params, for_training ? &own : NULL, max_rows, rank, item_support);
    b->own = own;
    return b;
}

backend *backend_create_trainer(const train_config *c, const model_shape *s, model_tensors *params,
                                const table_optim *opt, int max_rows, int rank, const int64_t *item_support) {
    CHECK(opt, "a training backend without the tables' optimizer state");
    return create(c, s, params, opt, max_rows, rank, item_support);
}

backend *backend_create_scorer(backend *training, int max_rows) {
    backend *b = xcalloc(1, sizeof *b);
    b->ops = training->ops;
    b->impl = b->ops->create_scorer(training->impl, max_rows);
    return b;
}

void backend_free(backend *b) {
    if (!b) return;
    b->ops->free(b->impl);
    arena heap = arena_heap();
    table_optim_release(&b->own, &heap);
    free(b);
}

float **backend_states(backend *b) { return b->ops->states(b->impl); }
const int *backend_state_widths(const backend *b) { return b->ops->state_widths(b->impl); }
int backend_n_states(const backend *b) { return b->ops->n_states(b->impl); }
void backend_zero_states(backend *b) { b->ops->zero_states(b->impl); }
void backend_move_rows(backend *b, const int32_t *src, int M) { b->ops->move_rows(b->impl, src, M); }

double backend_gradient_step(backend *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                             float scale, int64_t step) {
    return b->ops->gradient_step(b->impl, M, x, y, neg, K, scale, step);
}

backend_grads backend_gradients(const backend *b) { return b->ops->gradients(b->impl); }
void backend_clear_gradients(backend *b) { b->ops->clear_gradients(b->impl); }
float *backend_dense_grads(backend *b) { return b->ops->dense_grads(b->impl); }

void backend_grad_buffers(backend *b, float *dense, float *const *rows) {
    CHECK(b->ops->grad_buffers, "the %s backend keeps its gradients in its own memory", b->ops->name);
    b->ops->grad_buffers(b->impl, dense, rows);
}

void backend_update_dense(backend *b, const float *const *parts, int n_parts, size_t lo, size_t hi) {
    CHECK(n_parts == 0 || n_parts >= 2, "dense gradients in %d parts", n_parts);
    b->ops->update_dense(b->impl, parts, n_parts, lo, hi);
}

void backend_update_rows(backend *b, const row_grads *const *g) { b->ops->update_rows(b->impl, g); }
void backend_end_step(backend *b, int M) { b->ops->end_step(b->impl, M); }

void backend_apply_update(backend *b, int M, const row_grads *Wy, const row_grads *by, const row_grads *E) {
    backend_update_dense(b, NULL, 0, 0, b->n_dense);
    if (!Wy && !by && !E && b->ops->update_own_rows) {  // (rows the host may not know: the CUDA backend's own)
        b->ops->update_own_rows(b->impl);
    } else {
        const backend_grads own = backend_gradients(b);
        const row_grads *g[N_TABLES] = {Wy ? Wy : own.Wy, by ? by : own.by, own.E ? (E ? E : own.E) : NULL};
        backend_update_rows(b, g);
    }
    backend_end_step(b, M);
}

int backend_counters_get(const backend *b, backend_counters *out) {
    memset(out, 0, sizeof *out);
    if (!b->ops->counters) return 0;
    b->ops->counters(b->impl, out);
    return 1;
}

int backend_set_loss_late(backend *b) { return b->ops->set_loss_late ? b->ops->set_loss_late(b->impl) : 0; }
int backend_draw_negatives(backend *b, const alias_table *t) {
    return b->ops->draw_negatives ? b->ops->draw_negatives(b->impl, t) : 0;
}
double backend_take_loss(backend *b) { return b->ops->take_loss ? b->ops->take_loss(b->impl) : 0.0; }

double backend_train_step(backend *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                          float scale, int64_t step) {
    double loss = backend_gradient_step(b, M, x, y, neg, K, scale, step);
    backend_apply_update(b, M, NULL, NULL, NULL);
    return loss;
}

int backend_optim_arrays(backend *b, float **arrays, size_t *sizes) { return b->ops->optim_arrays(b->impl, arrays, sizes); }

void backend_eval_step(backend *b, int M, const int32_t *x, const int32_t *y, metrics *met, tie_mode ties) {
    b->ops->eval_step(b->impl, M, x, y, met, ties);
}

double backend_flops(const backend *b) { return b->ops->flops(b->impl); }
void backend_feed(backend *b, int M, const int32_t *x) { b->ops->feed(b->impl, M, x); }
const float *backend_score_all(backend *b, int M, const int32_t *x) { return b->ops->score_all(b->impl, M, x); }
void backend_sync_to_host(backend *b) { b->ops->sync_to_host(b->impl); }
void backend_sync_params_to_host(backend *b) { b->ops->sync_params_to_host(b->impl); }
void backend_sync_to_device(backend *b) { b->ops->sync_to_device(b->impl); }
const exchange_mem *backend_exchange_mem(backend *b, comm *c) { return b->ops->exchange_mem(b->impl, c); }

void backend_step_items(backend *b, const int32_t *items) {
    CHECK(b->ops->step_items, "the %s backend cannot train sharded item tables yet", b->ops->name);
    b->ops->step_items(b->impl, items);
}

void backend_put_table_rows(backend *b, int n) {
    if (b->ops->put_table_rows) b->ops->put_table_rows(b->impl, n);
}

backend_grads backend_host_gradients(backend *b, int dense) {
    return b->ops->host_gradients ? b->ops->host_gradients(b->impl, dense) : backend_gradients(b);
}
