// The table of functions behind src/backend/backend.h: one per implementation (cpu_backend.c,
// cuda/cuda_backend.cu); backend.c holds the chosen table and forwards every call.
// Each implementation defines struct backend_impl its own way.
#ifndef GRUREC_BACKEND_OPS_H
#define GRUREC_BACKEND_OPS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct backend_impl backend_impl;

typedef struct backend_ops {
    const char *name;
    // OPT: the tables' Adagrad state of a training backend (borrowed); NULL: a scoring backend
    backend_impl *(*create)(const train_config *c, const model_shape *s, model_tensors *params, const table_optim *opt,
                            int max_rows, int rank, const int64_t *item_support);
    backend_impl *(*create_scorer)(backend_impl *training, int max_rows);
    void (*free)(backend_impl *b);
    float **(*states)(backend_impl *b);
    const int *(*state_widths)(const backend_impl *b);
    int (*n_states)(const backend_impl *b);
    void (*zero_states)(backend_impl *b);
    void (*move_rows)(backend_impl *b, const int32_t *src, int M);
    double (*gradient_step)(backend_impl *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                            float scale, int64_t step);
    backend_grads (*gradients)(const backend_impl *b);
    void (*clear_gradients)(backend_impl *b);
    float *(*dense_grads)(backend_impl *b);
    void (*grad_buffers)(backend_impl *b, float *dense, float *const *rows);  // NULL: the backend cannot
    void (*update_dense)(backend_impl *b, const float *const *parts, int n_parts, size_t lo, size_t hi);
    void (*update_rows)(backend_impl *b, const row_grads *const *g);
    void (*end_step)(backend_impl *b, int M);
    int (*optim_arrays)(backend_impl *b, float **arrays, size_t *sizes);
    void (*eval_step)(backend_impl *b, int M, const int32_t *x, const int32_t *y, metrics *met, tie_mode ties);
    double (*flops)(const backend_impl *b);
    void (*feed)(backend_impl *b, int M, const int32_t *x);
    const float *(*score_all)(backend_impl *b, int M, const int32_t *x);
    void (*sync_to_host)(backend_impl *b);
    void (*sync_params_to_host)(backend_impl *b);
    void (*sync_to_device)(backend_impl *b);
    const exchange_mem *(*exchange_mem)(backend_impl *b, comm *c);
    void (*step_items)(backend_impl *b, const int32_t *items);  // NULL: not supported (sharded tables)
    void (*counters)(const backend_impl *b, backend_counters *out);  // NULL: none kept
    int (*set_loss_late)(backend_impl *b);  // NULL: losses at once
    double (*take_loss)(backend_impl *b);
    int (*draw_negatives)(backend_impl *b, const alias_table *t);  // NULL: the caller draws them
    void (*update_own_rows)(backend_impl *b);  // update_rows of its own gradients (NULL: through gradients)
    // Sharded item tables on a backend that keeps its own copy of the parameters' tables
    // (NULL, both: it reads the host's tables, and its gradients are host memory):
    void (*put_table_rows)(backend_impl *b, int n);          // rows 0..N-1 of the host's tables to its copy
    backend_grads (*host_gradients)(backend_impl *b, int dense);  // the step's gradients, brought to the host
} backend_ops;

extern const backend_ops cpu_backend_ops;
extern const backend_ops cuda_backend_ops;  // only in builds with GRUREC_HAVE_CUDA

#ifdef __cplusplus
}
#endif

#endif
