// Warm start (src/io/warm_start.c) row by row. FROM is a model on items A B C D E (a
// model file with optimizer state added, as a checkpoint holds it); NEW is a dataset whose
// items are, in dense order, E X A Y C (A, C, E kept in another order, B and D dropped, X
// and Y new). After warm_start_load_rows (every item's) and warm_start_load every row of
// every item table and of its Adagrad accumulators and momenta is checked: a kept item's
// rows are FROM's rows of the same original id; a new item's rows are a fresh model's (model_init, same seed) and its
// accumulators 0; the dense weights and their state are FROM's. A run with other layers,
// embedding or loss is refused (exit 2) naming the setting. warm_start_load_rows (sharded
// tables) gives each of P ranks its rows of the same result.
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd/config.h"
#include "data/dataset.h"
#include "io/h5seal.h"
#include "io/tensor_io.h"
#include "io/warm_start.h"
#include "model/model.h"
#include "prep_harness.h"

TestSuite(warm_start, .init = th_setup, .fini = th_teardown);

// A dataset whose train items, in order of first appearance, are ITEMS (each session
// "s<i>" clicks items i and i+1 at times 1 day apart; a last-day test session on the first two).
static void make_dataset(const char *dir, const char *const *items, int n) {
    char log[4096] = "SessionId\tItemId\tTime\n";
    for (int i = 0; i + 1 < n; i++) {
        char line[128];
        snprintf(line, sizeof line, "s%d\t%s\t%d\ns%d\t%s\t%d\n", i, items[i], 100 * i + 1, i, items[i + 1], 100 * i + 2);
        strcat(log, line);
    }
    char line[128];
    snprintf(line, sizeof line, "t\t%s\t900000\nt\t%s\t900001\n", items[0], items[1]);
    strcat(log, line);
    char path[4096];
    snprintf(path, sizeof path, "%s.tsv", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(log, f);
    fclose(f);
    th_result r;
    th_prep(&r, "--input", path, "--test-days", "1", "--min-item-support", "1", "--shards", "1", "--out", dir, "--quiet",
            NULL);
    cr_assert_eq(r.status, 0, "grurec-prep: %s", r.err);
    th_result_free(&r);
}

static void configure(train_config *c, const char *layers, const char *emb, int momentum) {
    config_defaults(c);
    cr_assert(config_set(c, "layers", layers, "test"));
    cr_assert(config_set(c, "embedding", emb, "test"));
    cr_assert(config_set(c, "n-sample", "0", "test"));
    if (momentum) cr_assert(config_set(c, "momentum", "0.5", "test"));
    config_default_act(c, 0);
}

// A value that tells which tensor, row and column it came from.
static float mark(int tensor, int64_t row, size_t col) { return (float)(1000 * (tensor + 1) + 10 * row) + 0.001f * (float)col; }

// FROM: a model on DIR's items with every table row and optimizer row marked, written as
// a model file plus the optimizer tensors a checkpoint has.
static void make_from(const char *path, const char *dir, const train_config *c) {
    dataset_meta m;
    dataset_open(dir, &m);
    model_shape s;
    model_shape_init(&s, c, m.n_items);
    model_tensors t;
    tensors_alloc(&t, &s);
    backend *b = backend_create(c, &s, &t, 4, 1, 0, m.item_support);
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(b, oa, on);
    float *all[12] = {t.dense, t.Wy, t.by, t.E, oa[0], oa[1], oa[2], oa[3], oa[4], oa[5], oa[6], oa[7]};
    size_t n[12] = {s.n_dense, (size_t)s.n_items * s.hid[s.n_layers - 1], (size_t)s.n_items,
                    t.E ? (size_t)s.n_items * s.emb_width : 0, on[0], on[1], on[2], on[3], on[4], on[5], on[6], on[7]};
    for (int k = 0; k < 12; k++)
        for (size_t i = 0; all[k] && i < n[k]; i++) all[k][i] = mark(k, 0, i);
    char **ids = dataset_item_ids(&m);
    model_save(path, &s, &t, c, m.fingerprint, dir, ids);
    dataset_free_item_ids(&m, ids);
    static const char *const names[8] = {"optim/acc_dense", "optim/mom_dense", "optim/acc_Wy", "optim/mom_Wy",
                                         "optim/acc_by", "optim/mom_by", "optim/acc_E", "optim/mom_E"};
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    for (int k = 0; k < 8; k++)
        if (oa[k]) cr_assert_eq(tensor_write_f32(f, names[k], oa[k], on[k]), 0);
    H5Fclose(f);
    cr_assert_eq(h5seal_write(path), 0);  // the change is the writer's own (io/h5seal.h)
    backend_free(b);
    tensors_free(&t);
    dataset_close(&m);
}

// Sharded tables (warm_start_load_rows): rank r of P keeps items r, r + P, ... at rows
// 0, 1, ...; its rows start as FRESH's, its state at 0, and must end as the whole load's
// (WHOLE, WOA: the tables and their state after the whole load).
static void check_rows_here(const warm_start_info *w, const model_shape *s, const dataset_meta *m,
                            const model_tensors *fresh, const model_tensors *whole, float *const *woa) {
    const int64_t N = s->n_items;
    const size_t width[N_TABLES] = {(size_t)s->hid[s->n_layers - 1], 1, (size_t)s->emb_width};
    const float *ftab[N_TABLES] = {fresh->Wy, fresh->by, fresh->E}, *wtab[N_TABLES] = {whole->Wy, whole->by, whole->E};
    for (int64_t P = 1; P <= 3; P++)
        for (int64_t r = 0; r < P; r++) {
            const int64_t n = (N - r + P - 1) / P;
            float *buf[N_TABLES][3] = {{NULL}};
            for (int t = 0; t < N_TABLES; t++)
                for (int k = 0; k < 3 && ftab[t]; k++) {
                    if (k > 0 && !woa[2 + 2 * t + k - 1]) continue;
                    buf[t][k] = calloc((size_t)n * width[t] + 1, sizeof(float));
                    for (int64_t j = 0; k == 0 && j < n; j++)
                        memcpy(buf[t][k] + j * width[t], ftab[t] + (r + j * P) * width[t], width[t] * sizeof(float));
                }
            model_tensors here = {.Wy = buf[0][0], .by = buf[1][0], .E = buf[2][0]};
            table_optim o = {{buf[0][1], buf[1][1], buf[2][1]}, {buf[0][2], buf[1][2], buf[2][2]}};
            warm_start_load_rows(w, s, m, &here, &o, r, P, n);
            for (int t = 0; t < N_TABLES; t++)
                for (int k = 0; k < 3; k++) {
                    if (!buf[t][k]) continue;
                    const float *want = k == 0 ? wtab[t] : woa[2 + 2 * t + k - 1];
                    for (int64_t j = 0; j < n; j++)
                        cr_assert(memcmp(buf[t][k] + j * width[t], want + (r + j * P) * width[t], width[t] * sizeof(float)) == 0,
                                  "rank %lld of %lld: table %d (%d) row %lld differs from the whole load", (long long)r,
                                  (long long)P, t, k, (long long)j);
                    free(buf[t][k]);
                }
        }
}

static void check_mode(const char *emb, int momentum) {
    static const char *const from_items[] = {"A", "B", "C", "D", "E"}, *const new_items[] = {"E", "X", "A", "Y", "C"};
    const int64_t from_row[5] = {4, -1, 0, -1, 2};  // FROM's row of each NEW item
    make_dataset(th_path("from"), from_items, 5);
    make_dataset(th_path("new"), new_items, 5);
    train_config c;
    configure(&c, "6", emb, momentum);
    make_from(th_path("from.h5"), th_path("from"), &c);

    dataset_meta m;
    dataset_open(th_path("new"), &m);
    char **ids = dataset_item_ids(&m);
    for (int j = 0; j < 5; j++) cr_assert_str_eq(ids[j], new_items[j], "the dataset's item order");
    dataset_free_item_ids(&m, ids);
    warm_start_info w;
    warm_start_check(th_path("from.h5"), &c, &m, &w);
    cr_assert_eq(w.kept, 3);
    cr_assert_eq(w.added, 2);
    cr_assert_eq(w.dropped, 2);
    cr_assert(w.optimizer);
    model_shape s;
    model_shape_init(&s, &c, m.n_items);
    model_tensors t, fresh;
    tensors_alloc(&t, &s);
    tensors_alloc(&fresh, &s);
    model_init(&t, &s, c.seed);
    model_init(&fresh, &s, c.seed);
    backend *b = backend_create(&c, &s, &t, 4, 1, 0, m.item_support);
    float *oa[8];
    size_t on[8];
    backend_optim_arrays(b, oa, on);
    const table_optim o = {{oa[2], oa[4], oa[6]}, {oa[3], oa[5], oa[7]}};  // (the backend's own: trained alone)
    warm_start_load_rows(&w, &s, &m, &t, &o, 0, 1, s.n_items);  // whole tables: every item's row
    warm_start_load(&w, &s, &t, b);

    for (size_t i = 0; i < s.n_dense; i++) cr_assert_eq(t.dense[i], mark(0, 0, i), "dense[%zu]", i);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; oa[k] && i < on[k]; i++) cr_assert_eq(oa[k][i], mark(4 + k, 0, i), "optim %d [%zu]", k, i);
    // Tables: k = 1 (Wy), 2 (by), 3 (E); their optimizer arrays 2 + 2(k-1) (+1 momenta).
    float *tab[4] = {NULL, t.Wy, t.by, t.E}, *ftab[4] = {NULL, fresh.Wy, fresh.by, fresh.E};
    const size_t width[4] = {0, (size_t)s.hid[0], 1, (size_t)s.emb_width};
    int rows_checked = 0;
    for (int k = 1; k <= 3; k++) {
        if (!tab[k]) continue;
        const size_t W = width[k];
        for (int64_t j = 0; j < 5; j++) {
            const int64_t fr = from_row[j];
            for (size_t col = 0; col < W; col++) {
                const size_t at = (size_t)j * W + col, from_at = (size_t)fr * W + col;
                if (fr >= 0) cr_assert_eq(tab[k][at], mark(k, 0, from_at), "table %d item %s col %zu", k, new_items[j], col);
                else cr_assert_eq(tab[k][at], ftab[k][at], "table %d new item %s col %zu: a fresh row", k, new_items[j], col);
                for (int q = 0; q < 2; q++) {
                    const int a = 2 + 2 * (k - 1) + q;
                    if (!oa[a]) continue;
                    const float want = fr >= 0 ? mark(4 + a, 0, from_at) : 0.0f;
                    cr_assert_eq(oa[a][at], want, "optim %d item %s col %zu", a, new_items[j], col);
                }
            }
            rows_checked++;
        }
    }
    cr_assert_geq(rows_checked, 10);
    check_rows_here(&w, &s, &m, &fresh, &t, oa);
    backend_free(b);
    tensors_free(&t);
    tensors_free(&fresh);
    dataset_close(&m);
}

Test(warm_start, rows_and_optimizer_state_by_original_id_shared) { check_mode("shared", 0); }
Test(warm_start, rows_and_optimizer_state_by_original_id_separate_with_momentum) { check_mode("4", 1); }
Test(warm_start, rows_and_optimizer_state_by_original_id_onehot) { check_mode("onehot", 1); }

static void refused(const char *layers, const char *emb, const char *loss) {
    static const char *const items[] = {"A", "B", "C"};
    make_dataset(th_path("from"), items, 3);
    train_config c, other;
    configure(&c, "6", "shared", 0);
    make_from(th_path("from.h5"), th_path("from"), &c);
    configure(&other, layers, emb, 0);
    if (loss) {
        cr_assert(config_set(&other, "loss", loss, "test"));
        config_default_act(&other, 0);
    }
    dataset_meta m;
    dataset_open(th_path("from"), &m);
    warm_start_info w;
    warm_start_check(th_path("from.h5"), &other, &m, &w);  // exits 2
}

Test(warm_start, other_layers_refused, .exit_code = 2) { refused("8", "shared", NULL); }
Test(warm_start, other_embedding_refused, .exit_code = 2) { refused("6", "onehot", NULL); }
Test(warm_start, other_loss_refused, .exit_code = 2) { refused("6", "shared", "bpr-max"); }
