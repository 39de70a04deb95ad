#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/check.h"
#include "io/h5seal.h"
#include "io/h5util.h"
#include "io/run_dir.h"
#include "io/tensor_io.h"
#include "io/id_table.h"

static uint64_t fnv_floats(uint64_t h, const float *v, size_t n) {
    const uint32_t *w = (const uint32_t *)v;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001B3ull;
    return h;
}

uint64_t params_checksum(const model_shape *s, const model_tensors *p) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    h = fnv_floats(h, p->dense, s->n_dense);
    h = fnv_floats(h, p->Wy, (size_t)s->n_items * s->hid[s->n_layers - 1]);
    h = fnv_floats(h, p->by, (size_t)s->n_items);
    if (p->E) h = fnv_floats(h, p->E, (size_t)s->n_items * s->emb_width);
    return h;
}

// The dense tensors of a checkpoint: the GRU's weights and their optimizer state (the item
// tables' are the table module's: tables_save, tables_load).
typedef struct {
    const char *name[3];
    float *data[3];
    size_t n[3];
    int count;
} tensor_list;

static void list_dense(tensor_list *t, const model_shape *s, const model_tensors *p, backend *b) {
    memset(t, 0, sizeof *t);
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(b, oa, on);  // (acc_dense, mom_dense first)
    const char *names[3] = {"params/dense", "optim/acc_dense", "optim/mom_dense"};
    float *data[3] = {p->dense, oa[0], oa[1]};
    for (int k = 0; k < 3; k++)
        if (data[k]) t->name[t->count] = names[k], t->data[t->count] = data[k], t->n[t->count++] = s->n_dense;
}

// This rank's lanes and hidden state, gathered to every rank (slot per rank, summed).
typedef struct {
    int64_t *lane;   // [P × (2 + 2B)]: M, next, sess[B], pos[B]
    float *hidden;   // [P × B × Σ H_l]
    size_t per_rank_h;
} lane_dump;

static void gather_lanes(comm *cm, const model_shape *s, backend *b, const lanes *ln, lane_dump *d) {
    const int P = comm_size(cm), r = comm_rank(cm), B = ln->B;
    d->per_rank_h = 0;
    for (int l = 0; l < s->n_layers; l++) d->per_rank_h += (size_t)B * s->hid[l];
    d->lane = xcalloc((size_t)P * (2 + 2 * B), sizeof *d->lane);
    d->hidden = xcalloc((size_t)P * d->per_rank_h, sizeof *d->hidden);
    int64_t *mine = d->lane + (size_t)r * (2 + 2 * B);
    mine[0] = ln->M;
    mine[1] = ln->next;
    for (int k = 0; k < ln->M; k++) mine[2 + k] = ln->sess[k], mine[2 + B + k] = ln->pos[k];
    float *h = d->hidden + (size_t)r * d->per_rank_h;
    float **st = backend_states(b);
    for (int l = 0; l < s->n_layers; l++) {
        memcpy(h, st[l], (size_t)B * s->hid[l] * sizeof(float));
        h += (size_t)B * s->hid[l];
    }
    comm_allreduce_sum_i64(cm, d->lane, (size_t)P * (2 + 2 * B));
    comm_allreduce_sum_f32(cm, d->hidden, (size_t)P * d->per_rank_h);
}

static int ckpt_step_of(const char *name, int64_t *step) {
    long long v;
    char tail[8];
    if (sscanf(name, "ckpt-%lld.h%1[5]%1s", &v, tail, tail + 2) != 2) return 0;
    *step = v;
    return 1;
}

// Checkpoint steps in RUN, newest first.
static int list_checkpoints(const char *run, int64_t *steps, int max) {
    DIR *d = opendir(run);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        int64_t st;
        if (ckpt_step_of(e->d_name, &st)) steps[n++] = st;
    }
    closedir(d);
    for (int i = 1; i < n; i++)  // insertion sort, newest first
        for (int j = i; j > 0 && steps[j] > steps[j - 1]; j--) {
            int64_t t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t;
        }
    return n;
}

// The failure hook while rank 0 writes a checkpoint: any CHECK inside (an attribute that
// cannot be made) still says which write failed and removes the temporary file.
static char g_writing[4096];
static void abandon_checkpoint(void *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", (const char *)path);
    fprintf(stderr, "%s: writing checkpoint %s failed; the previous checkpoint is kept\n", program_name(),
            (const char *)path);
    unlink(tmp);
}

static int last_error(void) { return errno ? errno : EIO; }

// Writes the checkpoint file TMP; 0 on success, else the errno of the failed step (a full
// disk shows in a write, the flush or the close). Nothing is printed.
static int write_checkpoint_file(const char *tmp, comm *cm, const train_config *c, const model_shape *s,
                                 const model_tensors *p, backend *b, const tables *tb, const lanes *ln,
                                 const ckpt_position *pos, const char *fingerprint, const char *data_dir,
                                 char *const *item_ids,
                                 const lane_dump *d) {
    errno = 0;
    hid_t f = h5_create_file(tmp);
    if (f < 0) return last_error();
    int err = 0;
    const char *groups[3] = {"params", "optim", "state"};
    for (int k = 0; k < 3 && !err; k++) {
        hid_t g = H5Gcreate2(f, groups[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) err = last_error();
        else H5Gclose(g);
    }
    tensor_list t;
    list_dense(&t, s, p, b);
    for (int k = 0; k < t.count && !err; k++)
        if (tensor_write_f32(f, t.name[k], t.data[k], t.n[k]) < 0) err = last_error();
    if (!err && tables_save(tb, f) < 0) err = last_error();
    const int P = comm_size(cm);
    if (!err && tensor_write_i64(f, "state/lanes", d->lane, (size_t)P * (2 + 2 * ln->B)) < 0) err = last_error();
    if (!err && tensor_write_f32(f, "state/hidden", d->hidden, (size_t)P * d->per_rank_h) < 0) err = last_error();
    if (!err && item_ids && id_table_write(f, item_ids, s->n_items) < 0) err = last_error();
    if (!err) {
        run_dir_stamp(f, c, fingerprint, data_dir, s->n_items);
        h5_attr_i64(f, "world_size", P);
        h5_attr_i64(f, "batch_size", ln->B);
        h5_attr_i64(f, "epoch", pos->epoch);
        h5_attr_i64(f, "epoch_started", pos->started);
        h5_attr_i64(f, "step", pos->step);
        errno = 0;
        if (H5Fflush(f, H5F_SCOPE_LOCAL) < 0) err = last_error();
    }
    return h5seal_close_sync(f, tmp, err);
}

// Deletes the part files of checkpoint NAME in RUN (sharded item tables: NAME.part-R-of-P).
static void remove_parts(const char *run, const char *name) {
    DIR *d = opendir(run);
    if (!d) return;
    char prefix[4200], path[8400];
    xsnprintf(prefix, sizeof prefix, "%s.part-", name);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            xsnprintf(path, sizeof path, "%s/%s", run, e->d_name);
            unlink(path);
        }
    closedir(d);
}

// Deletes the checkpoints this run has gone past: of those before STEP, all but the newest
// KEEP-1. A later one (read as damaged and skipped, or of a cadence given up) is left
// alone until the run passes it: the rotation never deletes what the run did not supersede.
static void rotate_checkpoints(const char *run, int64_t step, int keep) {
    int64_t steps[4096];
    int n = list_checkpoints(run, steps, 4096), older = 0;
    for (int k = 0; k < n; k++) {
        if (steps[k] >= step || ++older < keep) continue;
        char old[4096];
        xsnprintf(old, sizeof old, "%s/ckpt-%012lld.h5", run, (long long)steps[k]);
        unlink(old);
        remove_parts(run, old + strlen(run) + 1);
    }
}

int checkpoint_save(comm *cm, const char *run, const train_config *c, const model_shape *s, const model_tensors *p,
                    backend *b, tables *tb, const lanes *ln, const ckpt_position *pos, const char *fingerprint,
                    const char *data_dir, char *const *item_ids, int keep) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tables_settle(tb);        // (state a rank keeps current in part only, made whole)
    backend_sync_to_host(b);  // parameters, optimizer state and hidden rows
    lane_dump d;
    gather_lanes(cm, s, b, ln, &d);
    int64_t ok = 1;
    // Sharded tables: every rank's part first; the checkpoint's own file, the manifest, last.
    xsnprintf(g_writing, sizeof g_writing, "%s/ckpt-%012lld.h5", run, (long long)pos->step);
    const int parts_err = tables_save_parts(tb, g_writing);
    if (parts_err) {
        if (comm_rank(cm) == 0)
            fprintf(stderr, "grurec: writing checkpoint %s failed (%s in a rank's part); the previous checkpoint "
                            "is kept\n", g_writing, strerror(parts_err));
        ok = 0;
    }
    if (comm_rank(cm) == 0 && ok) {
        char tmp[4200];
        const char *path = g_writing;
        xsnprintf(tmp, sizeof tmp, "%s.tmp", path);
        h5_quiet();
        // GRUREC_FAIL_CHECKPOINT_AT=STEP injects a failed write (tests of the error path).
        const char *inject = getenv("GRUREC_FAIL_CHECKPOINT_AT");
        set_fail_cleanup(abandon_checkpoint, g_writing);
        int err = inject && atoll(inject) == pos->step
                      ? EIO : write_checkpoint_file(tmp, cm, c, s, p, b, tb, ln, pos, fingerprint, data_dir, item_ids,
                                                    &d);
        set_fail_cleanup(NULL, NULL);
        errno = 0;
        if (!err && rename(tmp, path) != 0) err = last_error();
        if (err) {
            fprintf(stderr, "grurec: writing checkpoint %s failed (%s); the previous checkpoint is kept\n", path,
                    strerror(err));
            unlink(tmp);
            ok = 0;
        } else {
            struct stat st;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (stat(path, &st) == 0)
                fprintf(stderr, "grurec: checkpoint %s: %.1f MB in %.2f s\n", path, (double)st.st_size / 1e6,
                        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
            rotate_checkpoints(run, pos->step, keep);
        }
    }
    free(d.lane);
    free(d.hidden);
    comm_allreduce_min_i64(cm, &ok, 1);
    return ok ? 0 : 1;
}

// Reads and verifies one checkpoint; 0 if damaged (warning printed, naming what is wrong).
// A checkpoint that is whole but not this run's to resume from (another dataset, other
// model settings, world size or batch size, or one that cannot be read) is an input error,
// never "damaged". TB NULL: the item tables and their optimizer state are left alone (a
// rank other than 0 of ranks that share one copy): the dense tensors, lanes and hidden states only.
static int try_load(const char *path, const train_config *c, const model_shape *s, model_tensors *p, backend *b,
                    tables *tb, int P, int B, int64_t **lane, float **hidden, size_t per_rank_h, ckpt_position *pos,
                    const char *fingerprint, int reshard) {
    h5_quiet();
    if (access(path, R_OK) != 0) input_fail(path, 0, "cannot read the checkpoint: %s", strerror(errno));
    int sealed;  // (io/h5seal.h: no byte of a damaged file reaches HDF5)
    const char *damage = h5seal_check(path, &sealed);
    if (damage) {
        if (strncmp(damage, "damaged: ", 9) == 0) damage += 9;
        fprintf(stderr, "grurec: warning: checkpoint %s is damaged (%s): skipped\n", path, damage);
        return 0;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "grurec: warning: checkpoint %s is damaged (cannot be opened as HDF5): skipped\n", path);
        return 0;
    }
    const char *why = NULL;
    static const char *const needed[] = {"config_hash", "dataset_fingerprint", "n_items", "world_size", "batch_size",
                                         "epoch", "epoch_started", "step"};
    for (size_t k = 0; k < sizeof needed / sizeof *needed && !why; k++)
        if (!h5_has_attr(f, needed[k])) why = "an attribute is missing";
    if (!why) {
        char *fp = h5_get_attr_str(f, "dataset_fingerprint", path);
        const int other_data = strcmp(fp, fingerprint) != 0 || h5_get_attr_i64(f, "n_items", path) != s->n_items;
        if (other_data)
            input_fail(path, 0, "written for dataset %s, not this one (%s): use another --out", fp, fingerprint);
        free(fp);
        if (h5_get_attr_i64(f, "config_hash", path) != (int64_t)config_model_hash(c))
            input_fail(path, 0, "this run was started with other model settings: resume with the same flags "
                                "(--epochs, logging and checkpoint cadence may change), or use another --out");
    }
    const int other_world = !why && h5_get_attr_i64(f, "world_size", path) != P;
    if (other_world && !reshard)
        input_fail(path, 0, "this run was checkpointed with %lld ranks, not %d: resume with the same number, or "
                            "--reshard (not bit for bit: the epoch in progress starts over on the new ranks)",
                   (long long)h5_get_attr_i64(f, "world_size", path), P);
    if (!why && h5_get_attr_i64(f, "batch_size", path) != B) input_fail(path, 0, "another batch size");
    // Whole tables in the file, or a manifest of parts: resumed only in a mode of that
    // layout (starting over instead would silently lose the run).
    const int whole = !why && H5Lexists(f, "params/Wy", H5P_DEFAULT) > 0;
    if (!why && tb && whole == tables_in_parts(tb))
        input_fail(path, 0, whole ? "written with whole item tables (--item-tables replicated or node), not sharded: "
                                    "resume with --item-tables replicated or node"
                                  : "a manifest of sharded item tables (one part per rank): resume with --item-tables "
                                    "sharded");
    tensor_list t;
    list_dense(&t, s, p, b);
    static char bad[256];
    for (int k = 0; k < t.count && !why; k++) {
        const char *w = tensor_read_f32(f, t.name[k], t.data[k], t.n[k]);
        if (w) snprintf(bad, sizeof bad, "%s %s", t.name[k], w), why = bad;
    }
    if (tb && !why) why = tables_load(tb, f);
    size_t nl = (size_t)P * (2 + 2 * B);
    *lane = xmalloc(nl * sizeof **lane);
    *hidden = xmalloc((size_t)P * per_rank_h * sizeof **hidden);
    if (!why && other_world) {  // --reshard: parameters and optimizer state only
        memset(*lane, 0, nl * sizeof **lane);
        memset(*hidden, 0, (size_t)P * per_rank_h * sizeof **hidden);
    } else if (!why) {
        const char *w = tensor_read_i64(f, "state/lanes", *lane, nl);
        if (w) snprintf(bad, sizeof bad, "state/lanes %s", w), why = bad;
        else if ((w = tensor_read_f32(f, "state/hidden", *hidden, (size_t)P * per_rank_h)))
            snprintf(bad, sizeof bad, "state/hidden %s", w), why = bad;
    }
    if (!why) {
        pos->epoch = h5_get_attr_i64(f, "epoch", path);
        pos->started = other_world ? 0 : (int)h5_get_attr_i64(f, "epoch_started", path);
        pos->step = h5_get_attr_i64(f, "step", path);
        if (other_world)
            fprintf(stderr, "grurec: warning: resharding %lld ranks' checkpoint onto %d: epoch %lld starts over (not bit for bit)\n",
                    (long long)h5_get_attr_i64(f, "world_size", path), P, (long long)pos->epoch);
    } else {
        fprintf(stderr, "grurec: warning: checkpoint %s is damaged (%s): skipped\n", path, why);
        free(*lane);
        free(*hidden);
    }
    H5Fclose(f);
    return !why;
}

// Moves the checkpoint's lanes and hidden state of rank R into LN and B (frees both arrays).
static void take_lanes(backend *b, const model_shape *s, lanes *ln, int r, int64_t *lane, float *hidden,
                       size_t per_rank_h) {
    const int B = ln->B;
    const int64_t *mine = lane + (size_t)r * (2 + 2 * B);
    ln->M = (int)mine[0];
    ln->next = mine[1];
    for (int q = 0; q < ln->M; q++) ln->sess[q] = mine[2 + q], ln->pos[q] = mine[2 + B + q];
    const float *h = hidden + (size_t)r * per_rank_h;
    float **st = backend_states(b);
    for (int l = 0; l < s->n_layers; l++) {
        memcpy(st[l], h, (size_t)B * s->hid[l] * sizeof(float));
        h += (size_t)B * s->hid[l];
    }
    free(lane);
    free(hidden);
}

int checkpoint_load(comm *cm, const char *run, const train_config *c, const model_shape *s, model_tensors *p,
                    backend *b, tables *tb, lanes *ln, ckpt_position *pos, const char *fingerprint, int reshard) {
    int64_t steps[4096];
    int n = list_checkpoints(run, steps, 4096);
    const int P = comm_size(cm), r = comm_rank(cm), B = ln->B;
    size_t per_rank_h = 0;
    for (int l = 0; l < s->n_layers; l++) per_rank_h += (size_t)B * s->hid[l];
    // With one copy of the tables for every rank, rank 0 alone reads it and picks the
    // checkpoint; the others then read their own tensors and lanes from that same file.
    const int shared = tables_one_copy(tb);
    char path[4096];
    int64_t chosen = -1, *lane;
    float *hidden;
    for (int k = 0; k < n && (!shared || r == 0); k++) {
        xsnprintf(path, sizeof path, "%s/ckpt-%012lld.h5", run, (long long)steps[k]);
        int loaded = try_load(path, c, s, p, b, tb, P, B, &lane, &hidden, per_rank_h, pos, fingerprint, reshard);
        if (tables_in_parts(tb)) {  // every rank reads its own part: all take this one, or none
            int64_t all = loaded;
            comm_allreduce_min_i64(cm, &all, 1);
            if (loaded && !all) free(lane), free(hidden);
            loaded = (int)all;
        }
        if (!loaded) continue;
        take_lanes(b, s, ln, r, lane, hidden, per_rank_h);
        chosen = k;
        break;
    }
    if (shared) {
        comm_bcast(cm, &chosen, sizeof chosen, 0);
        if (r != 0 && chosen >= 0) {
            xsnprintf(path, sizeof path, "%s/ckpt-%012lld.h5", run, (long long)steps[chosen]);
            if (!try_load(path, c, s, p, b, NULL, P, B, &lane, &hidden, per_rank_h, pos, fingerprint, reshard))
                input_fail(path, 0, "rank %d cannot read its part of the checkpoint rank 0 resumed from", r);
            take_lanes(b, s, ln, r, lane, hidden, per_rank_h);
        }
    }
    if (chosen >= 0) {
        backend_sync_to_device(b);
        if (r == 0) fprintf(stderr, "grurec: resuming from %s (epoch %lld, step %lld)\n", path, (long long)pos->epoch, (long long)pos->step);
        return 1;
    }
    if (n > 0) {  // every checkpoint was damaged: a failed read may have left parts of it behind
        if (r == 0) fprintf(stderr, "grurec: warning: no checkpoint of %s could be read: training starts over\n", run);
        model_init_dense(p, s, c->seed);
        tables_reset(tb);
        float *oa[8];
        size_t on[8];
        backend_optim_arrays(b, oa, on);
        for (int k = 0; k < 2; k++)  // acc_dense, mom_dense (the tables' state: tables_reset)
            if (oa[k]) memset(oa[k], 0, on[k] * sizeof(float));
        backend_zero_states(b);
        backend_sync_to_device(b);
    }
    return 0;
}
