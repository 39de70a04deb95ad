#include "io/warm_start.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/h5util.h"
#include "io/id_table.h"
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

void warm_start_check(const char *from, const train_config *c, const dataset_meta *m, warm_start_info *w) {
    memset(w, 0, sizeof *w);
    resolve(from, w->path, sizeof w->path);
    const char *path = w->path;
    hid_t f = h5_open_read(path);
    int count;
    const char *bad = tensor_verify_all(f, &count);
    if (bad) input_fail(path, 0, "--warm-start: damaged: %s", bad);
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

// Reads FROM's NAME ([n_from × width], or the dense buffer when FROM_OF is NULL) into
// DST: whole, or row j from FROM's row from_of[j] where that is an item of both. A tensor
// FROM lacks (the optimizer state of a model file, momenta of a run without momentum)
// leaves DST as it is.
static void take(hid_t f, const char *path, const char *name, float *dst, size_t n, const int64_t *from_of,
                 int64_t n_to, int64_t n_from, size_t width) {
    if (!dst || H5Lexists(f, name, H5P_DEFAULT) <= 0) return;
    const char *why;
    if (!from_of) {
        if ((why = tensor_read_f32(f, name, dst, n))) input_fail(path, 0, "--warm-start: %s %s", name, why);
        return;
    }
    float *all = xmalloc((size_t)n_from * width * sizeof *all + 1);
    if ((why = tensor_read_f32(f, name, all, (size_t)n_from * width))) input_fail(path, 0, "--warm-start: %s %s", name, why);
    for (int64_t j = 0; j < n_to; j++)
        if (from_of[j] >= 0) memcpy(dst + (size_t)j * width, all + (size_t)from_of[j] * width, width * sizeof *dst);
    free(all);
}

void warm_start_load(const warm_start_info *w, const model_shape *s, model_tensors *p, backend *b,
                     const dataset_meta *m, int tables) {
    const char *path = w->path;
    hid_t f = h5_open_read(path);
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(b, oa, on);  // acc, mom of dense, Wy, by, E
    take(f, path, "params/dense", p->dense, s->n_dense, NULL, 0, 0, 0);
    take(f, path, "optim/acc_dense", oa[0], on[0], NULL, 0, 0, 0);
    take(f, path, "optim/mom_dense", oa[1], on[1], NULL, 0, 0, 0);
    if (tables) {
        const int64_t n_from = h5_get_attr_i64(f, "n_items", path), N = s->n_items;
        char **ids = from_ids(f, path, n_from), **ours = dataset_item_ids(m);
        int64_t *from_of = xmalloc((size_t)(N ? N : 1) * sizeof *from_of);
        id_match(ids, n_from, ours, N, from_of);
        const size_t H = (size_t)s->hid[s->n_layers - 1], D = (size_t)s->emb_width;
        const char *names[6] = {"params/Wy", "params/by", "params/E", NULL, NULL, NULL};
        float *params[3] = {p->Wy, p->by, p->E};
        const size_t widths[3] = {H, 1, D};
        static const char *const optim[3][2] = {{"optim/acc_Wy", "optim/mom_Wy"}, {"optim/acc_by", "optim/mom_by"},
                                                {"optim/acc_E", "optim/mom_E"}};
        for (int t = 0; t < 3; t++) {
            if (!params[t]) continue;
            take(f, path, names[t], params[t], 0, from_of, N, n_from, widths[t]);
            for (int k = 0; k < 2; k++) take(f, path, optim[t][k], oa[2 + 2 * t + k], 0, from_of, N, n_from, widths[t]);
        }
        free(from_of);
        free(ids);
        dataset_free_item_ids(m, ours);
    }
    H5Fclose(f);
    backend_sync_to_device(b);
}
