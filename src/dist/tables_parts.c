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
    return h5seal_close_sync(f, tmp, err);
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

// Part Q of P_OLD of checkpoint CKPT, checked (seal, attributes) and opened; or -1 and WHY.
static hid_t open_part(const tables *tb, const char *ckpt, int q, int P_old, char *why, size_t size) {
    char part[4200];
    part_name(part, sizeof part, ckpt, q, P_old);
    int sealed;
    const char *damage = access(part, R_OK) != 0 ? strerror(errno) : h5seal_check(part, &sealed);
    hid_t g = damage ? -1 : H5Fopen(part, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!damage && g < 0) damage = "cannot be opened as HDF5";
    static const char *const needed[] = {"part", "parts", "n_items"};
    for (int k = 0; k < 3 && !damage; k++)
        if (!h5_has_attr(g, needed[k])) damage = "an attribute is missing";
    if (!damage && (h5_get_attr_i64(g, "part", part) != q || h5_get_attr_i64(g, "parts", part) != P_old ||
                    h5_get_attr_i64(g, "n_items", part) != tb->s.n_items))
        damage = "another rank's or another run's rows";
    if (!damage) return g;
    snprintf(why, size, "part %s: %s", part, damage);
    if (g >= 0) H5Fclose(g);
    return -1;
}

// Rows LO to LO + N - 1 of tensor D (rows of W floats) into BUF: 0, or -1.
static int read_rows(hid_t d, int64_t lo, int64_t n, int w, float *buf) {
    hsize_t off = (hsize_t)lo * w, cnt = (hsize_t)n * w;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &cnt, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    if (e >= 0) e = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

// --reshard: this rank's rows (items r, r + P, ...) from the P_OLD parts of CKPT, where
// item i is row i / P_OLD of part i mod P_OLD. Each part is read in rounds of a few MB,
// so a rank holds no more than its own rows and one round. (Each rank reads every part:
// P times the checkpoint's bytes, once per reshard.) The seals vouch for the bytes.
static const char *read_resharded(tables *tb, const char *ckpt, int P_old) {
    static char why[4400];
    const int64_t r = comm_rank(tb->cm), P = comm_size(tb->cm), N = tb->s.n_items, n_own = tb->own.n_items;
    tensor_list l;
    tables_list_tensors(tb, &l);
    float *buf = NULL;
    size_t cap = 0;
    for (int q = 0; q < P_old; q++) {
        hid_t g = open_part(tb, ckpt, q, P_old, why, sizeof why);
        if (g < 0) {
            free(buf);
            return why;
        }
        const int64_t n_q = (N - q + P_old - 1) / P_old;
        const char *bad = NULL;
        for (int k = 0; k < l.count && !bad; k++) {
            const int w = (int)(l.n[k] / (size_t)n_own);
            hid_t d = H5Lexists(g, l.name[k], H5P_DEFAULT) > 0 ? H5Dopen2(g, l.name[k], H5P_DEFAULT) : -1;
            hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
            hsize_t dims[2] = {0, 0};
            if (d < 0) bad = "is missing";
            else if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) != 1 ||
                     dims[0] != (hsize_t)(n_q * w))
                bad = "has another size than the model's config";
            if (sp >= 0) H5Sclose(sp);
            const int64_t per = (4 << 20) / ((int64_t)w * 4) + 1;
            if (!bad && (size_t)(per * w) > cap) {
                free(buf);
                cap = (size_t)(per * w);
                buf = xmalloc(cap * sizeof *buf);
            }
            for (int64_t lo = 0; lo < n_q && !bad; lo += per) {
                const int64_t n = n_q - lo < per ? n_q - lo : per;
                if (read_rows(d, lo, n, w, buf) < 0) {
                    bad = "cannot be read";
                    break;
                }
                for (int64_t j = 0; j < n; j++) {
                    const int64_t item = (lo + j) * P_old + q;
                    if (item % P == r) memcpy(l.data[k] + (size_t)(item / P) * w, buf + (size_t)j * w, (size_t)w * sizeof *buf);
                }
            }
            if (d >= 0) H5Dclose(d);
            if (bad) snprintf(why, sizeof why, "part %s.part-%d-of-%d: %s %s", ckpt, q, P_old, l.name[k], bad);
        }
        H5Fclose(g);
        if (bad) {
            free(buf);
            return why;
        }
    }
    free(buf);
    return NULL;
}

const char *tables_read_part(tables *tb, hid_t f) {
    static char why[4400];
    char ckpt[4096], part[4200];
    const int r = comm_rank(tb->cm), P = comm_size(tb->cm);
    if (H5Fget_name(f, ckpt, sizeof ckpt) < 0) return "its file name cannot be had";
    // (another rank count: checkpoint.c let it through only with --reshard)
    const int64_t P_old = h5_has_attr(f, "world_size") ? h5_get_attr_i64(f, "world_size", ckpt) : P;
    if (P_old != P) return read_resharded(tb, ckpt, (int)P_old);
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
