// The GRU4Rec model's tensors (DESIGN §3, §8): the dense GRU weights and biases in
// one contiguous buffer with named views (so the all-reduce, the checksum and the
// checkpoint are one call each), and the row-addressed item tables.
#ifndef GRUREC_MODEL_H
#define GRUREC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/config.h"

typedef struct {
    int n_layers;
    int in_dim[MAX_LAYERS];  // input width of each layer (layer 0 onehot: 0, its input weights are table E)
    int hid[MAX_LAYERS];
    int64_t n_items;
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
// Allocates zeroed tensors of SHAPE (every pointer of T non-NULL where the shape has it):
// the item tables through state_alloc (the heap, or the region the ranks of a machine
// share), the dense GRU weights on this process's heap.
void tensors_alloc(model_tensors *t, const model_shape *s);
void tensors_free(model_tensors *t);
// The bytes of a region holding the item tables and their optimizer state (Adagrad
// accumulators, and momenta when MOMENTUM), as tensors_alloc and the CPU backend carve it.
size_t model_state_bytes(const model_shape *s, int momentum);
// Uniform ±sqrt(6/(fan_in+fan_out)) per gate block, biases 0: a function of the seed
// alone (counter-based random numbers), whatever the machine or the number of ranks.
void model_init(model_tensors *t, const model_shape *s, uint64_t seed);
// The dense GRU weights alone, as model_init sets them.
void model_init_dense(model_tensors *t, const model_shape *s, uint64_t seed);

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
void model_load(const char *path, model_shape *s, model_tensors *t, train_config *c, char **fingerprint);
// The original ids of the N_ITEMS items of a model or checkpoint file, NULL when it has
// none (written before models held them). Damage is an input error naming PATH. Free
// with id_table_free.
char **model_load_item_ids(const char *path, int64_t n_items);

#endif
