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
#include <string.h>
#include <unistd.h>

#include "io/h5seal.h"
#include "io/h5util.h"
#include "util/check.h"

static void part_name(char *out, size_t size, const char *ckpt, int r, int P) {
    xsnprintf(out, size, "%s.part-%d-of-%d", ckpt, r, P);
}

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
    errno = 0;
    if (H5Fclose(f) < 0 && !err) err = last_error();
    if (!err) err = h5seal_write(tmp);
    if (!err) {
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) err = last_error();
        if (fd >= 0) close(fd);
    }
    return err;
}

int tables_parts_save(tables *tb, const char *path) {
    const int r = comm_rank(tb->cm), P = comm_size(tb->cm);
    char part[4200], tmp[4300];
    part_name(part, sizeof part, path, r, P);
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

const char *tables_read_part(tables *tb, hid_t f) {
    static char why[4400];
    char ckpt[4096], part[4200];
    const int r = comm_rank(tb->cm), P = comm_size(tb->cm);
    if (H5Fget_name(f, ckpt, sizeof ckpt) < 0) return "its file name cannot be had";
    part_name(part, sizeof part, ckpt, r, P);
    if (access(part, R_OK) != 0) {
        snprintf(why, sizeof why, "part %s cannot be read: %s", part, strerror(errno));
        return why;
    }
    int sealed;
    const char *damage = h5seal_check(part, &sealed);
    if (damage) {
        snprintf(why, sizeof why, "part %s: %s", part, damage);
        return why;
    }
    hid_t g = H5Fopen(part, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (g < 0) {
        snprintf(why, sizeof why, "part %s cannot be opened as HDF5", part);
        return why;
    }
    const char *bad = NULL;
    static const char *const needed[] = {"part", "parts", "n_items"};
    for (int k = 0; k < 3 && !bad; k++)
        if (!h5_has_attr(g, needed[k])) bad = "an attribute is missing";
    if (!bad && (h5_get_attr_i64(g, "part", part) != r || h5_get_attr_i64(g, "parts", part) != P ||
                 h5_get_attr_i64(g, "n_items", part) != tb->s.n_items))
        bad = "another rank's or another run's rows";
    if (!bad) bad = tables_read_tensors(tb, g);
    H5Fclose(g);
    if (bad) {
        snprintf(why, sizeof why, "part %s: %s", part, bad);
        return why;
    }
    return NULL;
}
