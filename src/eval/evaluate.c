#include "eval/evaluate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "util/check.h"
#include "data/lanes.h"
#include "data/stream.h"
#include "util/options.h"
#include "io/id_table.h"

// Replays the sessions of ST (the model's item numbers) and adds every prediction to MET
// (this rank's only; the caller sums over ranks).
static void evaluate_stream(const train_config *c, const model_shape *s, model_tensors *p, const session_stream *st_,
                            tie_mode ties, metrics *met, backend *training) {
    session_stream st = *st_;
    const int B = c->eval_batch;
    backend *b = training ? backend_create_scorer(training, B) : backend_create(c, s, p, B, 0, 0, NULL);
    lanes ln;
    lanes_init(&ln, st.off, st.items, st.n_sessions, B);
    lanes_restart(&ln);
    backend_zero_states(b);
    int32_t *x = xmalloc((size_t)B * sizeof *x), *y = xmalloc((size_t)B * sizeof *y);
    int32_t *src = xmalloc((size_t)B * sizeof *src);
    while (ln.M > 0) {
        lanes_batch(&ln, x, y);
        backend_eval_step(b, ln.M, x, y, met, ties);
        backend_move_rows(b, src, lanes_step(&ln, src));
    }
    free(src);
    free(x);
    free(y);
    lanes_free(&ln);
    backend_free(b);
}

void evaluate(const train_config *c, const model_shape *s, model_tensors *p, const dataset_meta *m, int split,
              tie_mode ties, metrics *met, comm *cm, backend *training) {
    session_stream st;
    stream_load(&st, m, split, comm_rank(cm), comm_size(cm));
    evaluate_stream(c, s, p, &st, ties, met, training);
    stream_free(&st);
    metrics_allreduce(met, cm);
}

void metrics_allreduce(metrics *met, comm *cm) {
    comm_allreduce_sum_f64(cm, met->hits, (size_t)met->n_cutoffs);
    comm_allreduce_sum_f64(cm, met->rr, (size_t)met->n_cutoffs);
    comm_allreduce_sum_f64(cm, met->dcg, (size_t)met->n_cutoffs);
    comm_allreduce_sum_i64(cm, &met->n, 1);
}

void metrics_json(const metrics *met, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "{");
    for (int k = 0; k < met->n_cutoffs && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "\"recall@%d\": %.6f, \"mrr@%d\": %.6f, ", met->cutoffs[k],
                              metrics_recall(met, k), met->cutoffs[k], metrics_mrr(met, k));
    // NDCG came later: after the recall/mrr pairs, so the older keys keep their places.
    for (int k = 0; k < met->n_cutoffs && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "\"ndcg@%d\": %.6f, ", met->cutoffs[k], metrics_ndcg(met, k));
    if (n < size) snprintf(buf + n, size - n, "\"predictions\": %lld}", (long long)met->n);
}

void metrics_print(const metrics *met, int json, const char *label) {
    if (json) {
        char buf[2048];
        metrics_json(met, buf, sizeof buf);
        printf("%s\n", buf);
        return;
    }
    printf("%s: %lld predictions\n", label, (long long)met->n);
    printf("  %8s %10s %10s %10s\n", "cutoff", "Recall", "MRR", "NDCG");
    for (int k = 0; k < met->n_cutoffs; k++)
        printf("  %8d %10.4f %10.4f %10.4f\n", met->cutoffs[k], metrics_recall(met, k), metrics_mrr(met, k),
               metrics_ndcg(met, k));
}

void eval_options_parse(eval_options *o, const char *split, const char *cutoffs, const char *ties) {
    o->split = -1;
    if (split) {
        o->split = strcmp(split, "test") == 0 ? SPLIT_TEST : strcmp(split, "valid") == 0 ? SPLIT_VALID : -1;
        if (o->split < 0) usage_fail("--split is test or valid, not '%s'", split);
    }
    o->n_cutoffs = metrics_parse_cutoffs(cutoffs, o->cutoffs, METRICS_MAX_CUTOFFS);
    if (o->n_cutoffs <= 0) usage_fail("--cutoffs takes positive numbers like 1,5,10,20, not '%s'", cutoffs);
    if (!tie_mode_parse(ties, &o->ties)) usage_fail("--ties is conservative, standard or median, not '%s'", ties);
}

// A model of another dataset: the split's items are matched to the model's by original id.
static void evaluate_other_dataset(const train_config *c, const model_shape *s, model_tensors *p, const dataset_meta *m,
                                   int split, tie_mode ties, metrics *met, comm *cm, const char *path, const char *fp,
                                   char **theirs, int json, const char *label) {
    if (!theirs)
        input_fail(path, 0, "this model was trained on another dataset (fingerprint %s, %lld items; %s has %s, %lld items) "
                            "and holds no item ids to match them by",
                   fp, (long long)s->n_items, m->dir, m->fingerprint, (long long)m->n_items);
    char **ours = dataset_item_ids(m);
    int64_t *to = xmalloc((size_t)(m->n_items ? m->n_items : 1) * sizeof *to);
    const int64_t known = id_match(theirs, s->n_items, ours, m->n_items, to);
    session_stream st;
    stream_load(&st, m, split, comm_rank(cm), comm_size(cm));
    int64_t counts[2];
    stream_remap(&st, to, &counts[0], &counts[1]);
    evaluate_stream(c, s, p, &st, ties, met, NULL);
    met->n += counts[0];  // misses: in the denominator, never a hit
    stream_free(&st);
    metrics_allreduce(met, cm);
    comm_allreduce_sum_i64(cm, counts, 2);
    if (comm_rank(cm) == 0) {
        fprintf(stderr, "%s: a model of another dataset (%s): items matched by original id, %lld of the dataset's %lld known "
                        "to it; %lld events of unknown items skipped, %lld targets it cannot predict counted as misses\n",
                program_name(), fp, (long long)known, (long long)m->n_items, (long long)counts[1], (long long)counts[0]);
        if (json) {
            char buf[2048];
            metrics_json(met, buf, sizeof buf);
            buf[strlen(buf) - 1] = '\0';  // (the closing brace)
            printf("%s, \"misses\": %lld, \"unknown_events\": %lld}\n", buf, (long long)counts[0], (long long)counts[1]);
        } else {
            metrics_print(met, 0, label);
        }
    }
    free(to);
    dataset_free_item_ids(m, ours);

}

static const char *const eval_usage =
    "usage: grurec eval --data DIR --model RUN|FILE [--split test|valid] [--cutoffs 1,5,10,20]\n"
    "                   [--ties conservative|standard|median] [--batch N] [--json]\n"
    "                   [--device cpu|cuda|auto]\n"
    "\n"
    "Replays every session of the split from a zero state and, at each event but the last,\n"
    "ranks the next item among all items (scores h·Wyᵀ + by). Prints Recall@K, MRR@K and\n"
    "NDCG@K (1/log2(rank + 1) when rank <= K) per cutoff and the number of predictions;\n"
    "--json prints one object with keys \"recall@K\", \"mrr@K\" (pairs by cutoff), then\n"
    "\"ndcg@K\", then \"predictions\".\n"
    "  --model     a model file, or a run directory (its model.h5). A model of another\n"
    "              dataset is evaluated by matching items by original id (the model holds\n"
    "              them): an event whose item the model does not know is skipped as an\n"
    "              input, and a target it cannot predict counts as a miss (both counted in\n"
    "              one line, and as \"misses\" and \"unknown_events\" with --json)\n"
    "  --device    auto (default: $GRUREC_DEVICE, else auto = this rank's GPU when usable,\n"
    "              else the CPU) | cpu | cuda\n"
    "  --ties      conservative (default: rank = items scoring >= the target), standard\n"
    "              (1 + items scoring above it), median (ties share the middle rank);\n"
    "              Recall, MRR and NDCG all use this rank\n";

int cmd_eval(int argc, char **argv, comm *cm) {
    const char *data = NULL, *model = NULL, *split_name = "test", *cutoffs_s = "1,5,10,20", *ties_s = "conservative";
    const char *device = NULL;  // --device, else $GRUREC_DEVICE, else auto
    int json = 0, batch = 256;
    opt_parser op;
    for (opt_begin(&op, "eval", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(eval_usage, stdout); return 0; }
        else if (opt_is(&op, "--data")) data = opt_str(&op);
        else if (opt_is(&op, "--model")) model = opt_str(&op);
        else if (opt_is(&op, "--split")) split_name = opt_str(&op);
        else if (opt_is(&op, "--cutoffs")) cutoffs_s = opt_str(&op);
        else if (opt_is(&op, "--ties")) ties_s = opt_str(&op);
        else if (opt_is(&op, "--device")) device = opt_str(&op);
        else if (opt_is(&op, "--batch")) batch = (int)opt_int(&op, 1, INT_MAX);
        else if (opt_is(&op, "--json")) json = 1;
        else opt_unknown(&op);
    }
    if (!data || !model) usage_fail("eval needs --data DIR and --model RUN|FILE");
    backend_choose_device(device, comm_local_rank(cm), comm_rank(cm) == 0);
    eval_options eo;
    eval_options_parse(&eo, split_name, cutoffs_s, ties_s);
    const int split = eo.split;
    char path[4096];
    model_resolve_path(model, path, sizeof path);
    dataset_meta m;
    dataset_open(data, &m);
    if (!m.split[split].present) input_fail(data, 0, "the dataset has no %s split", split_name);
    train_config c;
    model_shape s;
    model_tensors p;
    char *fp;
    char **ids;  // (only a model of another dataset needs them)
    model_load(path, &s, &p, &c, &fp, &ids);
    c.eval_batch = batch;
    metrics met;
    metrics_init(&met, eo.cutoffs, eo.n_cutoffs);
    if (s.n_items == m.n_items && strcmp(fp, m.fingerprint) == 0) {
        evaluate(&c, &s, &p, &m, split, eo.ties, &met, cm, NULL);
        if (comm_rank(cm) == 0) metrics_print(&met, json, split_name);
    } else {
        evaluate_other_dataset(&c, &s, &p, &m, split, eo.ties, &met, cm, path, fp, ids, json, split_name);
    }
    free(fp);
    free(ids);
    tensors_free(&p);
    dataset_close(&m);
    return 0;
}
