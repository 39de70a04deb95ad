#include "cmd/inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/check.h"
#include "util/options.h"
#include "io/checkpoint.h"
#include "data/dataset.h"
#include "io/h5util.h"
#include "io/tensor_io.h"
#include "model/model.h"

static const char *const inspect_usage =
    "usage: grurec inspect PATH [--hash]\n"
    "\n"
    "PATH is a dataset directory (made by grurec-prep), a model or checkpoint file, or a run\n"
    "directory (its final model.h5, else its newest checkpoint). Prints what it holds: for a\n"
    "dataset the items, splits, shards, fingerprint, prep options and counts; for a model the\n"
    "configuration, the tensors and, for a checkpoint, the epoch, step and ranks; the file's\n"
    "seal and every tensor's checksum are verified (damage: exit 2 naming the file).\n"
    "  --hash   print a checksum of the parameters as the last line (compare runs with it)\n";

static void inspect_dataset(const char *dir) {
    dataset_meta m;
    dataset_open(dir, &m);
    printf("dataset %s\n  format version %lld, %lld items, time unit %s, fingerprint %s\n", dir,
           (long long)m.format_version, (long long)m.n_items, m.time_unit, m.fingerprint);
    for (int sp = 0; sp < N_SPLITS; sp++) {
        const split_info *si = &m.split[sp];
        if (!si->present) continue;
        printf("  %-5s %10lld sessions %12lld events  %3d shards  time %lld..%lld  unknown items dropped %lld\n",
               split_names[sp], (long long)si->n_sessions, (long long)si->n_events, si->n_shards, (long long)si->t_min,
               (long long)si->t_max, (long long)si->n_dropped_unknown_items);
    }
    printf("  prep options: %s\n  counts: %s\n", m.filters, m.summary);
    dataset_close(&m);
}

int cmd_inspect(int argc, char **argv, comm *cm) {
    const char *target = NULL;
    int hash = 0;
    opt_parser op;
    for (opt_begin(&op, "inspect", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(inspect_usage, stdout); return 0; }
        else if (opt_is(&op, "--hash")) hash = 1;
        else if (!opt_positional(&op)) opt_unknown(&op);
        else if (target) usage_fail("inspect takes one PATH");
        else target = op.arg;
    }
    if (!target) usage_fail("inspect needs a PATH (dataset, model, checkpoint or run directory)");
    if (comm_rank(cm) != 0) return 0;
    char path[4096];
    xsnprintf(path, sizeof path, "%s/meta.h5", target);
    if (access(path, F_OK) == 0) {
        if (hash) usage_fail("--hash is for models and checkpoints");
        inspect_dataset(target);
        return 0;
    }
    model_resolve_path(target, path, sizeof path);
    train_config c;
    model_shape s;
    model_tensors p;
    char *fp;
    model_load(path, &s, &p, &c, &fp, NULL);
    char *json = config_to_json(&c);
    printf("%s\n  config %s\n  dataset fingerprint %s, %lld items\n", path, json, fp, (long long)s.n_items);
    printf("  tensors: dense %zu (GRU weights and biases), Wy %lld x %d, by %lld", s.n_dense, (long long)s.n_items,
           s.hid[s.n_layers - 1], (long long)s.n_items);
    if (p.E) printf(", E %lld x %d", (long long)s.n_items, s.emb_width);
    printf("\n");
    hid_t f = h5_open_read(path);
    int n_verified = 0;
    const char *bad = tensor_verify_all(f, &n_verified);  // a checkpoint's optimizer state and lanes too
    if (bad) input_fail(path, 0, "damaged: %s", bad);
    printf("  checksums: all %d tensors verify\n", n_verified);
    if (h5_has_attr(f, "step"))
        printf("  checkpoint: epoch %lld (%s), step %lld, %lld rank(s)\n", (long long)h5_get_attr_i64(f, "epoch", path),
               h5_get_attr_i64(f, "epoch_started", path) ? "in progress" : "not started",
               (long long)h5_get_attr_i64(f, "step", path), (long long)h5_get_attr_i64(f, "world_size", path));
    H5Fclose(f);
    if (hash) printf("%016llx\n", (unsigned long long)params_checksum(&s, &p));
    free(json);
    free(fp);
    tensors_free(&p);
    return 0;
}
