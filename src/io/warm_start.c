#include "io/warm_start.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/h5util.h"
#include "io/id_table.h"
#include "io/model_parts.h"
#include "io/tensor_io.h"
#include "util/check.h"

// The file FROM means: a file as given; in a run directory its newest checkpoint (it holds
// the optimizer state, and at the end of a run the same parameters as model.h5), else
// model.h5.
static void resolve(const char *from, char *path, size_t size) {
    struct stat st;
    if (stat(from, &st) != 0) input_fail(from, 0, "--warm-start: cannot read: %s", strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        xsnprintf(path, size, "%s", from);
        return;
    }
    char best[256] = "";
    DIR *d = opendir(from);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);  // ckpt-%012lld.h5: the newest sorts last
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && n > 8 && n < sizeof best && strcmp(e->d_name + n - 3, ".h5") == 0 &&
            strcmp(e->d_name, best) > 0)
            memcpy(best, e->d_name, n + 1);
    }
    if (d) closedir(d);
    xsnprintf(path, size, "%s/%s", from, best[0] ? best : "model.h5");
    if (!best[0] && stat(path, &st) != 0) input_fail(from, 0, "--warm-start: no checkpoint and no model.h5 in this run directory");
}

// FROM's item ids: its own, else its dataset's (a model from before models held them).
static char **from_ids(hid_t f, const char *path, int64_t n) {
    if (id_table_present(f)) return id_table_read(f, path, n);
    if (!h5_has_attr(f, "dataset_dir"))
        input_fail(path, 0, "--warm-start: this model holds no item ids and names no dataset");
    char *dir = h5_get_attr_str(f, "dataset_dir", path), *fp = h5_get_attr_str(f, "dataset_fingerprint", path);
    dataset_meta m;
    dataset_open(dir, &m);
    if (strcmp(m.fingerprint, fp) != 0 || m.n_items != n)
        input_fail(path, 0, "--warm-start: this model holds no item ids, and its dataset %s has changed since", dir);
    char **ids = dataset_item_ids(&m);  // (one allocation, as id_table_read's)
    dataset_close(&m);
    free(dir);
    free(fp);
    return ids;
}

static void same_setting(int equal, const char *path, const char *setting, const char *theirs, const char *ours) {
    if (!equal)
        input_fail(path, 0, "--warm-start: this model has %s %s, this run %s: the model's shape must stay (use its %s)",
                   setting, theirs, ours, setting);
}

static const char *act_str(const loss_config *l, char *buf, size_t n) {
    if (l->act == ACT_ELU) snprintf(buf, n, "elu-%g", (double)l->elu_alpha);
    else snprintf(buf, n, "%s", l->act == ACT_TANH ? "tanh" : "linear");
    return buf;
}

static const char *emb_str(const train_config *c, char *buf, size_t n) {
    if (c->embedding == EMB_SEPARATE) snprintf(buf, n, "%d", c->embedding_dim);
    else snprintf(buf, n, "%s", c->embedding == EMB_SHARED ? "shared" : "onehot");
    return buf;
}

static int64_t parts_of(hid_t f, const char *path);

void warm_start_check(const char *from, const train_config *c, const dataset_meta *m, warm_start_info *w) {
    memset(w, 0, sizeof *w);
    resolve(from, w->path, sizeof w->path);
    const char *path = w->path;
    hid_t f = h5_open_read(path);
    int count;
    const char *bad = tensor_verify_all(f, &count);
    if (bad) input_fail(path, 0, "--warm-start: damaged: %s", bad);
    const int64_t parts = parts_of(f, path);  // (a sharded checkpoint: its parts too)
    for (int64_t q = 0; q < parts; q++) {
        char name[4200];
        hid_t g = part_open_or_exit(path, q, parts, h5_get_attr_i64(f, "n_items", path), name, sizeof name);
        if ((bad = tensor_verify_all(g, &count))) input_fail(name, 0, "--warm-start: damaged: %s", bad);
        H5Fclose(g);
    }
    char *json = h5_get_attr_str(f, "config", path);
    train_config fc;
    config_defaults(&fc);
    if (!config_from_json(&fc, json)) input_fail(path, 0, "--warm-start: unreadable config attribute");
    free(json);
    char a[64], b[64];
    config_layers_str(&fc, a, sizeof a);
    config_layers_str(c, b, sizeof b);
    same_setting(strcmp(a, b) == 0, path, "--layers", a, b);
    same_setting(fc.embedding == c->embedding && (c->embedding != EMB_SEPARATE || fc.embedding_dim == c->embedding_dim),
                 path, "--embedding", emb_str(&fc, a, sizeof a), emb_str(c, b, sizeof b));
    same_setting(fc.loss.loss == c->loss.loss, path, "--loss", loss_kind_name(fc.loss.loss), loss_kind_name(c->loss.loss));
    same_setting(fc.loss.act == c->loss.act && (c->loss.act != ACT_ELU || fc.loss.elu_alpha == c->loss.elu_alpha), path,
                 "--final-act", act_str(&fc.loss, a, sizeof a), act_str(&c->loss, b, sizeof b));
    const int64_t n_from = h5_get_attr_i64(f, "n_items", path);
    char **ids = from_ids(f, path, n_from), **ours = dataset_item_ids(m);
    int64_t *from_of = xmalloc((size_t)(m->n_items ? m->n_items : 1) * sizeof *from_of);
    w->kept = id_match(ids, n_from, ours, m->n_items, from_of);
    w->added = m->n_items - w->kept;
    w->dropped = n_from - w->kept;
    w->optimizer = H5Lexists(f, "optim", H5P_DEFAULT) > 0;
    free(from_of);
    free(ids);
    dataset_free_item_ids(m, ours);
    H5Fclose(f);
}

// Reads FROM's dense tensor NAME (N floats) into DST. A tensor FROM lacks (the optimizer
// state of a model file, momenta of a run without momentum) leaves DST as it is.
static void take_dense(hid_t f, const char *path, const char *name, float *dst, size_t n) {
    if (!dst || H5Lexists(f, name, H5P_DEFAULT) <= 0) return;
    const char *why = tensor_read_f32(f, name, dst, n);
    if (why) input_fail(path, 0, "--warm-start: %s %s", name, why);
}

// ---- the item tables, row by row ------------------------------------------------------
// FROM's tables are read in rounds of a few MB (a whole file's, or a sharded checkpoint's
// parts: part q's row k is FROM's item q + k·P'), and each row of an item kept here goes
// to its row: the item tables of the whole model, or a rank's rows of sharded tables. No
// table is held whole. Every reading rank reads all of FROM's rows once.

// Where the kept rows go: the rows of items FIRST, FIRST + STRIDE, ... (N of them) of each
// table, its accumulators and momenta (DST[t][0..2]; NULL where absent).
typedef struct {
    float *dst[N_TABLES][3];
    size_t width[N_TABLES];
    int64_t first, stride, n;
    const int64_t *to_of;  // [n_from]: this run's item of FROM's item j, or -1
} rows_here;

// Tensor NAME of G (file PATH), N_ROWS rows of W floats, row r being FROM's item
// ITEM0 + r·STEP: read in rounds of a few MB, checked against its checksum, and each row
// of an item kept here copied into DST. A tensor FROM lacks leaves DST as it is.
static void scan_rows(hid_t g, const char *path, const char *name, float *dst, size_t w, int64_t n_rows, int64_t item0,
                      int64_t step, const rows_here *h) {
    if (!dst || w == 0 || H5Lexists(g, name, H5P_DEFAULT) <= 0) return;
    rows_into c = {dst, w, item0, step, h->to_of, h->first, h->stride, h->n};
    const char *why = tensor_read_rounds(g, name, H5T_NATIVE_FLOAT, sizeof(float), (size_t)n_rows * w,
                                         tensor_rows_round(w), rows_into_take, &c);
    if (why) input_fail(path, 0, "--warm-start: %s %s", name, why);
}

// Every table tensor of G (N_ROWS rows from ITEM0 by STEP) into H's rows.
static void scan_tables(hid_t g, const char *path, int64_t n_rows, int64_t item0, int64_t step, const rows_here *h) {
    static const char *const names[N_TABLES][3] = {{"params/Wy", "optim/acc_Wy", "optim/mom_Wy"},
                                                   {"params/by", "optim/acc_by", "optim/mom_by"},
                                                   {"params/E", "optim/acc_E", "optim/mom_E"}};
    for (int t = 0; t < N_TABLES; t++)
        for (int k = 0; k < 3; k++) scan_rows(g, path, names[t][k], h->dst[t][k], h->width[t], n_rows, item0, step, h);
}

// The parts of FROM, a manifest of sharded tables: their count (its world size), or 0
// where FROM holds whole tables.
static int64_t parts_of(hid_t f, const char *path) {
    if (H5Lexists(f, "params/Wy", H5P_DEFAULT) > 0) return 0;
    if (!h5_has_attr(f, "world_size")) input_fail(path, 0, "--warm-start: this file holds no item tables");
    return h5_get_attr_i64(f, "world_size", path);
}

// FROM's tables (file F, PATH) into H's rows: FROM's item j goes to this run's item
// to_of[j] where this rank keeps it.
static void load_rows(hid_t f, const char *path, const dataset_meta *m, rows_here *h) {
    const int64_t n_from = h5_get_attr_i64(f, "n_items", path), N = m->n_items;
    char **ids = from_ids(f, path, n_from), **ours = dataset_item_ids(m);
    int64_t *from_of = xmalloc((size_t)(N ? N : 1) * sizeof *from_of);
    int64_t *to_of = xmalloc((size_t)(n_from ? n_from : 1) * sizeof *to_of);
    id_match(ids, n_from, ours, N, from_of);
    for (int64_t j = 0; j < n_from; j++) to_of[j] = -1;
    for (int64_t i = 0; i < N; i++)
        if (from_of[i] >= 0) to_of[from_of[i]] = i;
    h->to_of = to_of;
    const int64_t parts = parts_of(f, path);
    if (!parts) scan_tables(f, path, n_from, 0, 1, h);
    for (int64_t q = 0; q < parts; q++) {
        char name[4200];
        hid_t g = part_open_or_exit(path, q, parts, n_from, name, sizeof name);
        scan_tables(g, name, (n_from - q + parts - 1) / parts, q, parts, h);
        H5Fclose(g);
    }
    free(to_of);
    free(from_of);
    free(ids);
    dataset_free_item_ids(m, ours);
}

static void set_widths(rows_here *h, const model_shape *s) {
    h->width[TABLE_WY] = (size_t)s->hid[s->n_layers - 1];
    h->width[TABLE_BY] = 1;
    h->width[TABLE_E] = (size_t)s->emb_width;
}

void warm_start_load(const warm_start_info *w, const model_shape *s, model_tensors *p, backend *b) {
    const char *path = w->path;
    hid_t f = h5_open_read(path);
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(b, oa, on);  // acc, mom of dense, Wy, by, E
    take_dense(f, path, "params/dense", p->dense, s->n_dense);
    take_dense(f, path, "optim/acc_dense", oa[0], on[0]);
    take_dense(f, path, "optim/mom_dense", oa[1], on[1]);
    H5Fclose(f);
    backend_sync_to_device(b);
}

void warm_start_load_rows(const warm_start_info *w, const model_shape *s, const dataset_meta *m,
                          const model_tensors *t, const table_optim *o, int64_t first, int64_t stride, int64_t n) {
    const char *path = w->path;
    hid_t f = h5_open_read(path);
    rows_here h = {{{t->Wy, o->acc[TABLE_WY], o->mom[TABLE_WY]},
                    {t->by, o->acc[TABLE_BY], o->mom[TABLE_BY]},
                    {t->E, o->acc[TABLE_E], o->mom[TABLE_E]}},
                   {0}, first, stride, n, NULL};
    set_widths(&h, s);
    load_rows(f, path, m, &h);
    H5Fclose(f);
}
