#include "io/run_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5seal.h"
#include "io/h5util.h"
#include "util/check.h"

void run_dir_stamp(hid_t f, const train_config *c, const char *fingerprint, const char *data_dir, int64_t n_items) {
    char *json = config_to_json(c);
    h5_attr_str(f, "config", json);
    free(json);
    h5_attr_i64(f, "config_hash", (int64_t)config_model_hash(c));
    h5_attr_str(f, "dataset_fingerprint", fingerprint);
    h5_attr_str(f, "dataset_dir", data_dir);
    h5_attr_i64(f, "n_items", n_items);
    h5_attr_str(f, "created_by", "grurec " GRUREC_VERSION);
}

static int is_run_file(const char *name) {
    size_t n = strlen(name);
    return strcmp(name, "model.h5") == 0 || (strncmp(name, "ckpt-", 5) == 0 && n > 8 && strcmp(name + n - 3, ".h5") == 0);
}

// Checks one file of the run; 0 if it agrees (or says nothing), else prints why not.
static int check_file(const char *run, const char *path, const char *data_dir, const char *fingerprint,
                      const train_config *c) {
    int sealed;
    if (h5seal_check(path, &sealed)) return 0;  // damaged: left to the loader, which says so
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    int refused = 0;
    if (h5_has_attr(f, "dataset_fingerprint")) {
        char *fp = h5_get_attr_str(f, "dataset_fingerprint", path);
        if (strcmp(fp, fingerprint) != 0) {
            char *dir = h5_has_attr(f, "dataset_dir") ? h5_get_attr_str(f, "dataset_dir", path) : xstrdup("directory not recorded");
            fprintf(stderr, "%s: %s was trained on dataset %s (%s); this is %s (%s): use another --out\n",
                    program_name(), run, fp, dir, fingerprint, data_dir);
            free(dir);
            refused = 1;
        }
        free(fp);
    }
    if (!refused && h5_has_attr(f, "config_hash") &&
        h5_get_attr_i64(f, "config_hash", path) != (int64_t)config_model_hash(c)) {
        fprintf(stderr, "%s: %s was trained with other model settings (%s): resume with the same flags (--epochs, "
                        "evaluation, logging and checkpoint cadence may change), or use another --out\n",
                program_name(), run, path);
        refused = 1;
    }
    H5Fclose(f);
    return refused;
}

void run_dir_claim(comm *cm, const char *run, const char *data_dir, const char *fingerprint, const train_config *c) {
    int refused = 0;
    DIR *d = comm_rank(cm) == 0 ? opendir(run) : NULL;
    if (d) {
        h5_quiet();
        struct dirent *e;
        while (!refused && (e = readdir(d))) {
            if (!is_run_file(e->d_name)) continue;
            char path[4096];
            xsnprintf(path, sizeof path, "%s/%s", run, e->d_name);
            refused = check_file(run, path, data_dir, fingerprint, c);
        }
        closedir(d);
    }
    comm_bcast(cm, &refused, sizeof refused, 0);
    if (!refused) return;
    comm_finalize(cm);
    fail_exit(EXIT_INPUT);
}
