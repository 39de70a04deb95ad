// Evaluation (DESIGN §7): every test session is replayed from a zero state; at every
// event but the last, all items are scored and the next item's rank counted.
#ifndef GRUREC_EVALUATE_H
#define GRUREC_EVALUATE_H

#include "comm/comm.h"
#include "cmd/config.h"
#include "data/dataset.h"
#include "eval/metrics.h"
#include "model/model.h"

typedef struct backend backend;

// Each rank scores the sessions of its shards; the sums are then added across ranks,
// so every rank returns the figures of the whole split. TRAINING: a training backend
// whose parameters are scored in place (no second copy of the model on a GPU), or NULL
// to score P.
void evaluate(const train_config *c, const model_shape *s, model_tensors *p, const dataset_meta *m, int split,
              tie_mode ties, metrics *met, comm *cm, backend *training);
// The same over sharded item tables TB (src/eval/evaluate_sharded.c), from TRAINING's
// dense weights: the same figures as evaluate over whole tables, exactly.
typedef struct tables tables;
void evaluate_sharded(const train_config *c, const model_shape *s, const dataset_meta *m, int split, tie_mode ties,
                      metrics *met, comm *cm, backend *training, tables *tb);
// Adds the sums (hits, rr, dcg, n) of every rank: each rank then holds the whole split's.
void metrics_allreduce(metrics *met, comm *cm);
// One line per cutoff for people (cutoff, Recall, MRR, NDCG), or one JSON object:
// "recall@K", "mrr@K" pairs by cutoff, then the "ndcg@K", then "predictions".
void metrics_print(const metrics *met, int json, const char *label);
// The same JSON object into BUF.
void metrics_json(const metrics *met, char *buf, size_t size);

// The evaluation options every command shares (--split, --cutoffs, --ties), checked:
// a bad value is a usage error. SPLIT may be NULL (then split is -1).
typedef struct {
    int split;
    int cutoffs[METRICS_MAX_CUTOFFS];
    int n_cutoffs;
    tie_mode ties;
} eval_options;
void eval_options_parse(eval_options *o, const char *split, const char *cutoffs, const char *ties);

int cmd_eval(int argc, char **argv, comm *cm);

#endif
