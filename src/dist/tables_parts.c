// A checkpoint's sharded item tables (docs/distributed.md, "Checkpoints"): every rank
// writes its rows and their Adagrad state to CKPT.part-R-of-P (params/Wy, params/by,
// params/E, optim/acc_*, optim/mom_*: row k is item R + k·P), sealed and synced like the
// checkpoint itself; rank 0 writes CKPT, the manifest (dense weights, lanes, attributes),
// only after every part is in place, so a checkpoint whose manifest exists has its parts.
// No rank ever holds a whole table.
#include "dist/tables_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/h5seal.h"
#include "io/h5util.h"
#include "io/model_parts.h"
#include "io/tensor_io.h"
#include "util/check.h"

static int last_error(void) { return errno ? errno : EIO; }

static int write_part(const tables *tb, const char *tmp, int r, int P) {
    errno = 0;
    hid_t f = h5_create_file(tmp);
    if (f < 0) return last_error();
    int err = 0;
    const char *groups[2] = {"params", "optim"};
    for (int k = 0; k < 2 && !err; k++) {
        hid_t g = H5Gcreate2(f, groups[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) err = last_error();
        else H5Gclose(g);
    }
    if (!err && tables_write_tensors(tb, f) < 0) err = last_error();
    if (!err) {
        h5_attr_i64(f, "part", r);
        h5_attr_i64(f, "parts", P);
        h5_attr_i64(f, "n_items", tb->s.n_items);
        h5_attr_i64(f, "first_item", tb->first);
        h5_attr_i64(f, "item_stride", tb->stride);
    }
    return h5seal_close_sync(f, tmp, err);
}

int tables_parts_save(tables *tb, const char *path) {
    const int r = comm_rank(tb->cm), P = comm_size(tb->cm);
    char part[4200], tmp[4300];
    part_path(part, sizeof part, path, r, P);
    xsnprintf(tmp, sizeof tmp, "%s.tmp", part);
    h5_quiet();
    int64_t err = write_part(tb, tmp, r, P);
    errno = 0;
    if (!err && rename(tmp, part) != 0) err = last_error();
    if (err) {
        fprintf(stderr, "grurec: rank %d: writing checkpoint part %s failed (%s)\n", r, part, strerror((int)err));
        unlink(tmp);
    }
    comm_allreduce_max_i64(tb->cm, &err, 1);  // (every rank learns that some part failed)
    return (int)err;
}

// Part Q of P_OLD of checkpoint CKPT, checked (seal, attributes) and opened; or -1 and WHY.
static hid_t open_part(const tables *tb, const char *ckpt, int q, int P_old, char *why, size_t size) {
    char part[4200];
    part_path(part, sizeof part, ckpt, q, P_old);
    int sealed;
    const char *damage = access(part, R_OK) != 0 ? strerror(errno) : h5seal_check(part, &sealed);
    hid_t g = damage ? -1 : H5Fopen(part, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!damage && g < 0) damage = "cannot be opened as HDF5";
    if (!damage) damage = part_mismatch(g, part, q, P_old, tb->s.n_items);
    if (!damage) return g;
    snprintf(why, size, "part %s: %s", part, damage);
    if (g >= 0) H5Fclose(g);
    return -1;
}

// --reshard: this rank's rows (items r, r + P, ...) from the P_OLD parts of CKPT, where
// item i is row i / P_OLD of part i mod P_OLD. Each part's tensors are read in rounds of a
// few MB (checksums taken on the way), so a rank holds no more than its own rows and one
// round. (Each rank reads every part: P times the checkpoint's bytes, once per reshard.)
static const char *read_resharded(tables *tb, const char *ckpt, int P_old) {
    static char why[4400];
    const int64_t r = comm_rank(tb->cm), P = comm_size(tb->cm), N = tb->s.n_items, n_own = tb->own.n_items;
    tensor_list l;
    tables_list_tensors(tb, &l);
    for (int q = 0; q < P_old; q++) {
        hid_t g = open_part(tb, ckpt, q, P_old, why, sizeof why);
        if (g < 0) return why;
        const size_t n_q = (size_t)((N - q + P_old - 1) / P_old);
        const char *bad = NULL;
        for (int k = 0; k < l.count && !bad; k++) {
            const size_t w = l.n[k] / (size_t)n_own;
            rows_into h = {l.data[k], w, q, P_old, NULL, r, P, n_own};
            bad = H5Lexists(g, l.name[k], H5P_DEFAULT) > 0
                      ? tensor_read_rounds(g, l.name[k], H5T_NATIVE_FLOAT, sizeof(float), n_q * w,
                                           tensor_rows_round(w), rows_into_take, &h)
                      : "is missing";
            if (bad) snprintf(why, sizeof why, "part %s.part-%d-of-%d: %s %s", ckpt, q, P_old, l.name[k], bad);
        }
        H5Fclose(g);
        if (bad) return why;
    }
    return NULL;
}

const char *tables_read_part(tables *tb, hid_t f) {
    static char why[4400];
    char ckpt[4096];
    const int r = comm_rank(tb->cm), P = comm_size(tb->cm);
    if (H5Fget_name(f, ckpt, sizeof ckpt) < 0) return "its file name cannot be had";
    // (another rank count: checkpoint.c let it through only with --reshard)
    const int64_t P_old = h5_has_attr(f, "world_size") ? h5_get_attr_i64(f, "world_size", ckpt) : P;
    if (P_old != P) return read_resharded(tb, ckpt, (int)P_old);
    hid_t g = open_part(tb, ckpt, r, P, why, sizeof why);
    if (g < 0) return why;
    const char *bad = tables_read_tensors(tb, g);
    H5Fclose(g);
    if (!bad) return NULL;
    char part[4200];
    part_path(part, sizeof part, ckpt, r, P);
    snprintf(why, sizeof why, "part %s: %s", part, bad);
    return why;
}
