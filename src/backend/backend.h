// The compute interface the trainer and the evaluator call (DESIGN §5). Two
// implementations behind it (src/backend/backend.c dispatches): the CPU one (OpenBLAS sgemm +
// fused loops, src/backend/cpu_backend.c) and the CUDA one (cuBLAS + kernels,
// src/cuda/cuda_backend.cu), picked per process by backend_choose_device.
//
// Memory: the CPU backend works in PARAMS and its own host buffers. The CUDA backend
// keeps parameters, optimizer state and hidden states on the GPU; the host copies
// (PARAMS, backend_states, backend_optim_arrays) are brought up to date only by
// backend_sync_to_host, and read back by backend_sync_to_device.
#ifndef GRUREC_BACKEND_H
#define GRUREC_BACKEND_H

#include <stdint.h>

#include "cmd/config.h"
#include "data/sampler.h"
#include "eval/metrics.h"
#include "model/model.h"
#include "model/optim.h"

typedef struct backend backend;
typedef struct exchange_mem exchange_mem;
typedef struct comm comm;

typedef enum { BACKEND_CPU, BACKEND_CUDA } backend_device;

// --device cpu|cuda|auto (usage error otherwise; NULL: $GRUREC_DEVICE, else auto): the
// device of every backend this process creates from now on. A rank uses the GPU of its
// local rank (one GPU per rank of a node). auto = that GPU when it exists and is usable,
// else the CPU with one line on stderr (printed when VERBOSE) saying why; cuda without it
// (or in a build without CUDA) fails with that line. On a GPU, VERBOSE prints the device
// line ("grurec: device: GPU 0 (NAME, MEMORY)"; on the emulation it says so).
backend_device backend_choose_device(const char *want, int local_rank, int verbose);
backend_device backend_current_device(void);
// --tf32: cuBLAS may use TF32 tensor cores in the products of CUDA backends created
// from now on (the CPU backend ignores it).
void backend_set_tf32(int on);
int backend_tf32(void);
const char *backend_device_name(backend_device d);
// The devices of this build in words, for --version: "cpu", "cpu, cuda", or the CUDA
// backend on grurec's host emulation of CUDA (-DGRUREC_CUDA_EMU=ON, a test build).
const char *backend_devices_built(void);

// PARAMS are borrowed (they outlive the backend). MAX_ROWS bounds M (the lanes).
// With FOR_TRAINING, optimizer state, gradients and dropout are set up; the item tables'
// Adagrad state is then the backend's own (a backend trained alone: tests). RANK makes
// dropout masks differ between ranks.
backend *backend_create(const train_config *c, const model_shape *s, model_tensors *params, int max_rows,
                        int for_training, int rank, const int64_t *item_support);
// A training backend whose item tables' Adagrad state is OPT's (borrowed: the table
// module keeps it beside the tables, src/dist/tables.h). The backend keeps the dense
// weights' state itself.
backend *backend_create_trainer(const train_config *c, const model_shape *s, model_tensors *params,
                                const table_optim *opt, int max_rows, int rank, const int64_t *item_support);
// A scoring backend (as FOR_TRAINING = 0) over TRAINING's parameters where they live:
// evaluation during training needs no second copy of the model on a GPU. TRAINING must
// outlive it and must not step while it scores.
backend *backend_create_scorer(backend *training, int max_rows);
void backend_free(backend *b);

// Hidden state: one buffer of max_rows × hid[l] per layer, rows following the lanes.
float **backend_states(backend *b);
const int *backend_state_widths(const backend *b);
int backend_n_states(const backend *b);
void backend_zero_states(backend *b);

// One training step on M rows: inputs X, targets Y, K shared negatives NEG.
// The gradient is that of SCALE × (sum of the rows' losses); the parameters are
// updated. Returns the unscaled sum of the rows' losses.
double backend_train_step(backend *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                          float scale, int64_t step);

// Where gradients live: on the CUDA backend, backend_gradients().dense,
// backend_dense_grads and every row_grads' grad are DEVICE pointers (the row ids, rows[]
// and slot[], stay on the host), and the row gradients given to backend_apply_update
// must be device memory too (the exchange's memory ops, backend_exchange_mem, make them so).
//
// The gradient half of a training step, for tests: computes the loss and the
// gradients of SCALE × loss (readable through backend_gradients) and changes neither
// the parameters nor the hidden state. backend_clear_gradients forgets the touched rows
// and must come before the next step.
double backend_gradient_step(backend *b, int M, const int32_t *x, const int32_t *y, const int32_t *neg, int K,
                             float scale, int64_t step);
typedef struct {
    const float *dense;           // [n_dense], the layout of the model's dense buffer
    const row_grads *Wy, *by, *E; // touched rows; E is NULL without an input table
} backend_grads;
backend_grads backend_gradients(const backend *b);
void backend_clear_gradients(backend *b);

// Moves the hidden state rows as lanes_step planned: row k gets old row SRC[k], or
// zeros where SRC[k] < 0, for k < M (SRC[k] >= k: rows only move up); rows from M on
// keep their values.
void backend_move_rows(backend *b, const int32_t *src, int M);

// Host copies of the parameters, optimizer state and hidden state: brought up to date
// (before checkpoints, checksums, saving, evaluation), and read back after a resume.
// No-ops on the CPU backend.
void backend_sync_to_host(backend *b);
// The parameters alone (for checksums).
void backend_sync_params_to_host(backend *b);
void backend_sync_to_device(backend *b);

// How the step exchange reaches this backend's gradients (NULL: host memory, summed
// with the MPI comm layer; the CUDA backend's live on the GPU and are summed by NCCL).
const exchange_mem *backend_exchange_mem(backend *b, comm *c);

// The update half, for data-parallel training (the table module, src/dist/tables.h,
// calls these in its sync): the dense gradient (summed across ranks in place in
// backend_dense_grads) and the given row gradients (the union of every rank's rows,
// summed; NULL = this backend's own) update the parameters, whole; the hidden state of
// the M rows moves on and the backend's row gradients are cleared.
float *backend_dense_grads(backend *b);
void backend_apply_update(backend *b, int M, const row_grads *Wy, const row_grads *by, const row_grads *E);
// The same in three parts, for an update that a rank does in part:
// - Adagrad of the dense values LO to HI − 1, with this backend's own dense gradient
//   (N_PARTS 0) or the sum of the N_PARTS >= 2 arrays PARTS (the ranks' gradients of those
//   values, from LO on, added in order). (The CUDA backend: the whole, its own.)
void backend_update_dense(backend *b, const float *const *parts, int n_parts, size_t lo, size_t hi);
// - Adagrad of the rows G[t] of table t (Wy, by, E: TABLE_WY...; NULL: none) where this
//   backend keeps the table and its state (the CUDA kernel on the GPU);
void backend_update_rows(backend *b, const row_grads *const *g);
// - the step's end: the row gradients cleared, the hidden state of the M rows moved on.
void backend_end_step(backend *b, int M);

// From now on the step writes the dense gradients to DENSE and the rows of table t to
// ROWS[t] (room for as many rows as the backend's own buffers): memory the other ranks of
// a machine read in place (src/dist/slots.h). Host memory, kept by the caller until
// backend_free. (The CPU backend only.)
void backend_grad_buffers(backend *b, float *dense, float *const *rows);

// The optimizer state for checkpoints: Adagrad accumulators and momenta of the dense
// buffer, Wy, by and E, in that order (acc, mom per tensor; NULL and size 0 where absent).
int backend_optim_arrays(backend *b, float **arrays, size_t *sizes);

// Sharded item tables (src/dist/tables_sharded.c): from now on the ids a training step is
// given are rows of a step table (the parameters' Wy, by, E hold the rows fetched for the
// step), row k being item ITEMS[k] (kept by the caller): the logq correction reads each
// item's support through it. NULL: ids are items.
void backend_step_items(backend *b, const int32_t *items);
// And where the backend keeps its own copy of the parameters (the CUDA backend: created
// with the shape's table_rows, the step table's; it keeps no Adagrad state of the tables,
// which the caller updates on the host):
// - rows 0..N-1 of the host's tables (P's Wy, by, E) were fetched: to the backend's copy,
//   before the next gradient step or scoring feed (a no-op where the backend reads P);
void backend_put_table_rows(backend *b, int n);
// - the step's gradients (the rows, with backend_gradients' ids, and where DENSE the dense
//   gradient; else .dense is NULL or host memory) in host memory, valid until the next
//   step (backend_gradients itself where its gradients are host memory). The dense
//   gradient in the backend's memory is summed over the ranks with its exchange memory's
//   all-reduce (backend_exchange_mem), as the replicated mode's.
backend_grads backend_host_gradients(backend *b, int dense);

// Forward only (no dropout): scores all items for each row and adds the rank of Y
// to MET.
void backend_eval_step(backend *b, int M, const int32_t *x, const int32_t *y, metrics *met, tie_mode ties);

// Floating-point operations in matrix products so far (2·m·n·k each).
double backend_flops(const backend *b);

// What a training backend's steps cost the host and the device link, summed over the
// steps since it was created (the CUDA backend; the CPU backend keeps none). A step is
// everything from backend_gradient_step to backend_end_step and the lanes' row moves.
typedef struct {
    int64_t steps;           // gradient steps counted
    int64_t graph_launches;  // CUDA graphs launched
    int64_t graph_nodes;     // the nodes those launches ran, as the runtime counts them (kernels,
                             // cuBLAS's own kernels, copies)
    int64_t graph_kernel_nodes, graph_blas_nodes;  // of them, grurec's kernels and cuBLAS calls
    int64_t graph_captures;  // graphs captured (set-up: their host time is capture_us, not host_us)
    double capture_us;
    int64_t kernels;         // kernel launches (outside graphs)
    int64_t blas_calls;      // cuBLAS calls (outside graphs)
    int64_t nccl_calls;      // NCCL collectives started (the step exchange's all-reduce)
    int64_t copies_h2d, copies_d2h, bytes_h2d, bytes_d2h;
    int64_t pageable_h2d;    // of copies_h2d, those from pageable memory (the driver stages them)
    int64_t host_waits;      // the host drained the stream (the device idles until it issues more);
                             // waiting for an earlier step's event, this one queued, is not one
    double host_us;          // host time in the step's calls, not counting the waits
} backend_counters;
// 1 and *OUT filled when B keeps counters, else 0.
int backend_counters_get(const backend *b, backend_counters *out);

// The loss a step late, so that the host never waits for a step (the CUDA backend: the
// loss sum stays on the device and is read while the next step runs). After
// backend_set_loss_late(B), backend_gradient_step returns the PREVIOUS step's loss sum
// (0 when none is pending), and backend_take_loss waits for the newest step's and
// returns it (0 when none is pending). Returns 0 where the backend gives its losses at
// once (the CPU backend), and nothing changes.
int backend_set_loss_late(backend *b);
double backend_take_loss(backend *b);

// The step's negatives drawn by the backend itself from T (the same draws as
// alias_draw_step with the step's seed and number): from now on a step given NEG = NULL
// draws its K negatives, and builds its index lists, on the device (the CUDA backend on
// one rank: the upload per step shrinks to the inputs and targets). Returns 0 where the
// caller must keep drawing them (the CPU backend; CUDA with ranks, whose exchange needs
// every id on the host), and nothing changes.
int backend_draw_negatives(backend *b, const alias_table *t);

// Feeds X to the M rows (no dropout) and moves their hidden state on, scoring nothing:
// the steps of a session before the one whose scores are wanted.
void backend_feed(backend *b, int M, const int32_t *x);

// Scores of all items for the M rows after feeding X (for recommendations): [M × n_items].
const float *backend_score_all(backend *b, int M, const int32_t *x);

#endif
