// The GRU4Rec model's tensors (DESIGN §3, §8): the dense GRU weights and biases in
// one contiguous buffer with named views (so the all-reduce, the checksum and the
// checkpoint are one call each), and the row-addressed item tables.
#ifndef GRUREC_MODEL_H
#define GRUREC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/config.h"
#include "util/arena.h"

typedef struct {
    int n_layers;
    int in_dim[MAX_LAYERS];  // input width of each layer (layer 0 onehot: 0, its input weights are table E)
    int hid[MAX_LAYERS];
    int64_t n_items;
    // Rows of the item tables bound into the parameters a backend is given, where they are
    // not the n_items of the whole tables: sharded tables (src/dist/tables_sharded.c) bind
    // a step table of the rows a step fetched (tables_bound_rows). 0: n_items.
    int64_t table_rows;
    int emb_width;            // width of the input table E: 3*H0 (onehot), D (separate), 0 (shared: Wy)
    size_t n_dense;
    // Offsets of each layer's W [in × 3H], U [H × 3H] and b [3H] in the dense buffer
    // (gates ordered r, z, candidate within each 3H block).
    size_t off_W[MAX_LAYERS], off_U[MAX_LAYERS], off_b[MAX_LAYERS];
} model_shape;

typedef struct {
    float *dense;  // [n_dense]
    float *Wy;     // [n_items × hid[L-1]]  output item table (also the input in shared mode)
    float *by;     // [n_items]
    float *E;      // [n_items × emb_width] or NULL
} model_tensors;

void model_shape_init(model_shape *s, const train_config *c, int64_t n_items);

// The item tables, in the order every per-table array follows (E absent with the shared embedding).
enum { TABLE_WY, TABLE_BY, TABLE_E, N_TABLES };
// The item tables' Adagrad state: accumulator and momentum per table (NULL where the
// table is absent, or without momentum). Training keeps it beside the tables, in the
// table module's arena (src/dist/tables.h); a backend trained alone keeps its own.
typedef struct {
    float *acc[N_TABLES], *mom[N_TABLES];
} table_optim;

// Zeroed tensors of SHAPE on this process's heap (every pointer of T non-NULL where the
// shape has it): for models read from files and for tests.
void tensors_alloc(model_tensors *t, const model_shape *s);
void tensors_free(model_tensors *t);
// The dense GRU weights alone (the item tables NULL: training binds the table module's).
void tensors_alloc_dense(model_tensors *t, const model_shape *s);
void tensors_free_dense(model_tensors *t);
// The item tables of T, and their Adagrad state O (momenta when MOMENTUM), carved from A;
// model_tables_bytes is the region that both need.
void model_tables_alloc(model_tensors *t, const model_shape *s, arena *a);
void model_tables_release(model_tensors *t, const arena *a);
void table_optim_alloc(table_optim *o, const model_shape *s, int momentum, arena *a);
void table_optim_release(table_optim *o, const arena *a);
size_t model_tables_bytes(const model_shape *s, int momentum);
// The floats of table T (0 where the shape has no such table).
size_t model_table_size(const model_shape *s, int t);
// Uniform ±sqrt(6/(fan_in+fan_out)) per gate block, biases 0: a function of the seed
// alone (counter-based random numbers), whatever the machine or the number of ranks.
void model_init(model_tensors *t, const model_shape *s, uint64_t seed);
// The dense GRU weights alone, and the item tables alone, as model_init sets them.
void model_init_dense(model_tensors *t, const model_shape *s, uint64_t seed);
void model_init_tables(model_tensors *t, const model_shape *s, uint64_t seed);
// Rows FIRST, FIRST + STRIDE, ... (N of them, T's tables holding just these) of the item
// tables of S, with the values model_init_tables gives them: a rank's rows of sharded tables.
void model_init_table_rows(model_tensors *t, const model_shape *s, uint64_t seed, int64_t first, int64_t stride,
                           int64_t n);

static inline float *layer_W(const model_tensors *t, const model_shape *s, int l) { return t->dense + s->off_W[l]; }
static inline float *layer_U(const model_tensors *t, const model_shape *s, int l) { return t->dense + s->off_U[l]; }
static inline float *layer_b(const model_tensors *t, const model_shape *s, int l) { return t->dense + s->off_b[l]; }

// Model files (RUN/model.h5): /params/dense, /params/Wy, /params/by, /params/E, each
// with its checksum (io/tensor_io.h), and the config (JSON and its model hash), the
// dataset's fingerprint and directory and n_items as attributes, and the original item
// ids (io/id_table.h; ITEM_IDS NULL: none, for tests). Written to a temporary
// name and renamed; a failed write (a full disk) says "writing model PATH failed (why)",
// removes the temporary file and exits 1.
void model_save(const char *path, const model_shape *s, const model_tensors *t, const train_config *c,
                const char *fingerprint, const char *data_dir, char *const *item_ids);
// The file a model argument means: a file as given; a run directory's final model.h5,
// else its newest checkpoint (checkpoints hold the same /params). Input error if none.
void model_resolve_path(const char *model, char *path, size_t size);
// Reads a model file (or a checkpoint's /params); fills C from its config. Wrong layout,
// or a tensor that fails its checksum: input error naming PATH ("damaged: ...").
// ITEM_IDS (NULL: not wanted): the model's original item ids, NULL when it has none
// (written before models held them); free().
void model_load(const char *path, model_shape *s, model_tensors *t, train_config *c, char **fingerprint,
                char ***item_ids);

#endif
