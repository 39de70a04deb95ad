#include "model/model.h"
#include "model/model_save.h"

#include <errno.h>
#include <math.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/check.h"
#include "io/h5seal.h"
#include "io/h5util.h"
#include "io/model_parts.h"
#include "io/run_dir.h"
#include "io/tensor_io.h"
#include "io/id_table.h"
#include "data/rng.h"

void model_shape_init(model_shape *s, const train_config *c, int64_t n_items) {
    memset(s, 0, sizeof *s);
    s->n_layers = c->n_layers;
    s->n_items = n_items;
    int H_last = c->layers[c->n_layers - 1];
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int H = c->layers[l];
        s->hid[l] = H;
        if (l > 0) s->in_dim[l] = c->layers[l - 1];
        else if (c->embedding == EMB_ONEHOT) s->in_dim[l] = 0;
        else if (c->embedding == EMB_SHARED) s->in_dim[l] = H_last;
        else s->in_dim[l] = c->embedding_dim;
        s->off_W[l] = off;
        off += (size_t)s->in_dim[l] * 3 * H;
        s->off_U[l] = off;
        off += (size_t)H * 3 * H;
        s->off_b[l] = off;
        off += (size_t)3 * H;
    }
    s->n_dense = off;
    s->emb_width = c->embedding == EMB_ONEHOT ? 3 * c->layers[0] : c->embedding == EMB_SEPARATE ? c->embedding_dim : 0;
}

size_t model_table_size(const model_shape *s, int t) {
    const size_t N = (size_t)s->n_items;
    return t == TABLE_WY ? N * (size_t)s->hid[s->n_layers - 1] : t == TABLE_BY ? N : N * (size_t)s->emb_width;
}

// (the GRU's dense weights are every process's own: each rank reads them whole every
// step, so a shared copy would bounce between the cores' caches; the tables may be shared)
void tensors_alloc_dense(model_tensors *t, const model_shape *s) {
    memset(t, 0, sizeof *t);
    t->dense = xcalloc_huge(s->n_dense * sizeof(float));
}

void tensors_free_dense(model_tensors *t) {
    free(t->dense);
    t->dense = NULL;
}

void model_tables_alloc(model_tensors *t, const model_shape *s, arena *a) {
    t->Wy = arena_floats(a, model_table_size(s, TABLE_WY));
    t->by = arena_floats(a, model_table_size(s, TABLE_BY));
    t->E = s->emb_width ? arena_floats(a, model_table_size(s, TABLE_E)) : NULL;
}

void model_tables_release(model_tensors *t, const arena *a) {
    arena_release(a, t->Wy);
    arena_release(a, t->by);
    arena_release(a, t->E);
    t->Wy = t->by = t->E = NULL;
}

void table_optim_alloc(table_optim *o, const model_shape *s, int momentum, arena *a) {
    memset(o, 0, sizeof *o);
    for (int k = 0; k < N_TABLES; k++) {
        const size_t n = model_table_size(s, k);
        if (!n) continue;
        o->acc[k] = arena_floats(a, n);
        if (momentum) o->mom[k] = arena_floats(a, n);
    }
}

void table_optim_release(table_optim *o, const arena *a) {
    for (int k = 0; k < N_TABLES; k++) arena_release(a, o->acc[k]), arena_release(a, o->mom[k]);
    memset(o, 0, sizeof *o);
}

void tensors_alloc(model_tensors *t, const model_shape *s) {
    tensors_alloc_dense(t, s);
    arena heap = arena_heap();
    model_tables_alloc(t, s, &heap);
}

void tensors_free(model_tensors *t) {
    arena heap = arena_heap();
    model_tables_release(t, &heap);
    tensors_free_dense(t);
}

size_t model_tables_bytes(const model_shape *s, int momentum) {
    size_t n[3 * N_TABLES];
    int k = 0;
    for (int t = 0; t < N_TABLES; t++) {  // each table, its accumulator (and momentum)
        const size_t size = model_table_size(s, t);
        if (!size) continue;
        n[k++] = size;
        n[k++] = size;
        if (momentum) n[k++] = size;
    }
    return arena_bytes(n, k);
}

// The N rows FIRST, FIRST + STRIDE, ... of a ROWS × (blocks·COLS) matrix whose every
// ROWS × COLS block is uniform in ±sqrt(6/(ROWS+COLS)): each element's counter is its place
// in the whole matrix, so a rank's share of a sharded table holds the whole table's values.
static void init_block_rows(float *m, int64_t rows, int cols, int blocks, uint64_t seed, uint64_t tensor,
                            int64_t first, int64_t stride, int64_t n) {
    float sigma = sqrtf(6.0f / (float)(rows + cols));
    int64_t width = (int64_t)cols * blocks;
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = first + k * stride;
        for (int64_t j = 0; j < width; j++) {
            uint64_t counter = (tensor << 48) + (uint64_t)(i * width + j);
            m[k * width + j] = sigma * (2.0f * rng_uniform(seed, RNG_STREAM_INIT, counter) - 1.0f);
        }
    }
}

void model_init_table_rows(model_tensors *t, const model_shape *s, uint64_t seed, int64_t first, int64_t stride,
                           int64_t n) {
    int H = s->hid[s->n_layers - 1];
    init_block_rows(t->Wy, s->n_items, H, 1, seed, 100, first, stride, n);
    memset(t->by, 0, (size_t)n * sizeof(float));
    if (t->E) {
        if (s->in_dim[0] == 0) init_block_rows(t->E, s->n_items, s->hid[0], 3, seed, 101, first, stride, n);
        else init_block_rows(t->E, s->n_items, s->emb_width, 1, seed, 101, first, stride, n);
    }
}

void model_init_dense(model_tensors *t, const model_shape *s, uint64_t seed) {
    memset(t->dense, 0, s->n_dense * sizeof(float));
    uint64_t id = 1;
    for (int l = 0; l < s->n_layers; l++, id += 2) {
        int H = s->hid[l];
        if (s->in_dim[l]) init_block_rows(layer_W(t, s, l), s->in_dim[l], H, 3, seed, id, 0, 1, s->in_dim[l]);
        init_block_rows(layer_U(t, s, l), H, H, 3, seed, id + 1, 0, 1, H);
    }
}

void model_init_tables(model_tensors *t, const model_shape *s, uint64_t seed) {
    model_init_table_rows(t, s, seed, 0, 1, s->n_items);
}

void model_init(model_tensors *t, const model_shape *s, uint64_t seed) {
    model_init_dense(t, s, seed);
    model_init_tables(t, s, seed);
}

// The failure hook while the model is written: a CHECK inside still names the model and
// removes its temporary file.
static char g_model_path[4096];
static void abandon_model(void *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", (const char *)path);
    fprintf(stderr, "%s: writing model %s failed\n", program_name(), (const char *)path);
    unlink(tmp);
}

GRUREC_NORETURN void model_save_failed(const char *path, int err) {
    set_fail_cleanup(NULL, NULL);  // (this line says it already)
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fprintf(stderr, "%s: writing model %s failed (%s)\n", program_name(), path, strerror(err ? err : EIO));
    unlink(tmp);
    fail_exit(EXIT_INTERNAL);  // (HDF5 may still hold the failed file: no exit-time close)
}

hid_t model_save_begin(const char *path, const model_shape *s, const float *dense) {
    char tmp[4200];
    xsnprintf(g_model_path, sizeof g_model_path, "%s", path);
    xsnprintf(tmp, sizeof tmp, "%s.tmp", path);
    h5_quiet();
    set_fail_cleanup(abandon_model, g_model_path);
    errno = 0;
    hid_t f = h5_create_file(tmp);
    if (f < 0) model_save_failed(path, errno);
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) model_save_failed(path, errno);
    H5Gclose(g);
    errno = 0;
    if (tensor_write_f32(f, "params/dense", dense, s->n_dense) < 0) model_save_failed(path, errno);
    return f;
}

void model_save_end(hid_t f, const char *path, const model_shape *s, const train_config *c, const char *fingerprint,
                    const char *data_dir, char *const *item_ids) {
    char tmp[4200];
    xsnprintf(tmp, sizeof tmp, "%s.tmp", path);
    errno = 0;
    if (item_ids && id_table_write(f, item_ids, s->n_items) < 0) model_save_failed(path, errno);
    run_dir_stamp(f, c, fingerprint, data_dir, s->n_items);
    errno = 0;
    if (H5Fflush(f, H5F_SCOPE_LOCAL) < 0 || H5Fclose(f) < 0) model_save_failed(path, errno);
    int err = h5seal_write(tmp);  // (io/h5seal.h: readers verify every byte before HDF5 reads one)
    if (err) model_save_failed(path, err);
    errno = 0;
    if (rename(tmp, path) != 0) model_save_failed(path, errno);
    set_fail_cleanup(NULL, NULL);
}

void model_save(const char *path, const model_shape *s, const model_tensors *t, const train_config *c,
                const char *fingerprint, const char *data_dir, char *const *item_ids) {
    hid_t f = model_save_begin(path, s, t->dense);
    const size_t N = (size_t)s->n_items, H = (size_t)s->hid[s->n_layers - 1];
    const char *names[3] = {"params/Wy", "params/by", "params/E"};
    const float *data[3] = {t->Wy, t->by, t->E};
    const size_t n[3] = {N * H, N, N * (size_t)s->emb_width};
    for (int k = 0; k < 3; k++) {
        errno = 0;
        if (data[k] && tensor_write_f32(f, names[k], data[k], n[k]) < 0) model_save_failed(path, errno);
    }
    model_save_end(f, path, s, c, fingerprint, data_dir, item_ids);
}

void model_resolve_path(const char *model, char *path, size_t size) {
    struct stat st;
    if (stat(model, &st) != 0 || !S_ISDIR(st.st_mode)) {
        xsnprintf(path, size, "%s", model);
        return;
    }
    xsnprintf(path, size, "%s/model.h5", model);
    if (access(path, R_OK) == 0) return;
    // The newest checkpoint that verifies (ckpt-%012lld.h5: the newest sorts last); a damaged
    // one is skipped with a warning.
    char best[256] = "", bound[256] = "\x7f";
    for (;;) {
        DIR *d = opendir(model);
        struct dirent *e;
        best[0] = '\0';
        while (d && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, "ckpt-", 5) == 0 && n > 8 && strcmp(e->d_name + n - 3, ".h5") == 0 &&
                n < sizeof best && strcmp(e->d_name, best) > 0 && strcmp(e->d_name, bound) < 0)
                memcpy(best, e->d_name, n + 1);
        }
        if (d) closedir(d);
        if (!best[0]) input_fail(model, 0, "no model.h5 and no readable checkpoint in this run directory");
        xsnprintf(path, size, "%s/%s", model, best);
        if (h5_readable(path)) return;
        fprintf(stderr, "%s: warning: checkpoint %s is damaged: skipped\n", program_name(), path);
        memcpy(bound, best, sizeof bound);
    }
}

// A tensor that is missing, of another size or fails its checksum: the file is damaged.
static void read_f32(hid_t f, const char *name, float *v, size_t n, const char *path) {
    const char *why = tensor_read_f32(f, name, v, n);
    if (why) input_fail(path, 0, "damaged: %s %s", name, why);
}

void model_load(const char *path, model_shape *s, model_tensors *t, train_config *c, char **fingerprint,
                char ***item_ids) {
    hid_t f = h5_open_read(path);  // (verifies the seal: one pass over the file, so one open for all)
    char *json = h5_get_attr_str(f, "config", path);
    if (!config_from_json(c, json)) input_fail(path, 0, "unreadable config attribute");
    free(json);
    *fingerprint = h5_get_attr_str(f, "dataset_fingerprint", path);
    int64_t n_items = h5_get_attr_i64(f, "n_items", path);
    model_shape_init(s, c, n_items);
    tensors_alloc(t, s);
    const size_t N = (size_t)n_items, H = (size_t)s->hid[s->n_layers - 1];
    read_f32(f, "params/dense", t->dense, s->n_dense, path);
    if (item_ids) *item_ids = id_table_present(f) ? id_table_read(f, path, n_items) : NULL;
    if (H5Lexists(f, "params/Wy", H5P_DEFAULT) <= 0 && h5_has_attr(f, "world_size")) {
        // a manifest of sharded item tables: the tables are in its parts
        model_read_table_parts(path, h5_get_attr_i64(f, "world_size", path), s, t);
        H5Fclose(f);
        return;
    }
    read_f32(f, "params/Wy", t->Wy, N * H, path);
    read_f32(f, "params/by", t->by, N, path);
    if (t->E) read_f32(f, "params/E", t->E, N * (size_t)s->emb_width, path);
    H5Fclose(f);
}
