#include "cmd/train.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "io/run_dir.h"
#include "io/warm_start.h"
#include "util/escape.h"
#include "util/check.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "dist/tables.h"
#include "data/lanes.h"
#include "model/memory_estimate.h"
#include "model/model.h"
#include "cmd/report.h"
#include "data/sampler.h"
#include "backend/sgemm.h"
#include "data/stream.h"
#include "util/clock.h"
#include "util/options.h"

static const char *const train_usage =
    "usage: grurec train --data DIR --out RUN [options]\n"
    "\n"
    "Trains GRU4Rec on DIR's train split with session-parallel mini-batches and evaluates\n"
    "on the test split at the end. Writes RUN/model.h5 and RUN/metrics.jsonl (one JSON\n"
    "object per progress interval, per epoch and per evaluation). Options are written\n"
    "--name value or --name=value.\n"
    "\n"
    "Model and loss (defaults: the official GRU4Rec PyTorch defaults)\n"
    "  --loss L             cross-entropy (default) | bpr-max | top1-max | bpr | top1\n"
    "  --final-act A        linear | tanh | elu-A (default: linear for cross-entropy and\n"
    "                       top1-max, elu-0.5 for bpr-max, tanh for bpr and top1)\n"
    "  --layers 100[,100…]  GRU layer sizes (default 100)\n"
    "  --embedding E        shared (default: one item matrix for input and output) |\n"
    "                       onehot (input weights per item) | N (separate N-dim embedding)\n"
    "  --n-sample K         extra negatives shared by the batch, drawn ∝ support^alpha (2048)\n"
    "  --sample-alpha A     0 = uniform, 1 = popularity (0.5)\n"
    "  --bpreg R            BPR-max score regularisation (1.0)\n"
    "  --logq W             logq correction for cross-entropy (0; 1 is recommended with XE)\n"
    "Training\n"
    "  --batch-size B       lanes (sessions in parallel) (64)\n"
    "  --dropout-embed P    inverted dropout on the input embedding (0)\n"
    "  --dropout-hidden P   inverted dropout on each GRU layer's output (0)\n"
    "  --learning-rate LR   Adagrad learning rate (0.05)\n"
    "  --momentum MU        momentum on the Adagrad step (0)\n"
    "  --epochs N           (10)\n"
    "  --seed S             parameters, negatives and dropout are functions of it (42)\n"
    "  --threads T          BLAS threads (1; with 1, the large weight gradients run on\n"
    "                       grurec's own AVX-512 kernel where the CPU has it, the same bits)\n"
    "  --device D           cpu | cuda | auto (default: $GRUREC_DEVICE, else auto = the GPU\n"
    "                       of this rank's local rank when usable, else the CPU, saying why\n"
    "                       in one line; every rank must end up on the same kind)\n"
    "  --tf32               CUDA: let cuBLAS use TF32 tensor cores for the products (faster,\n"
    "                       about 1e-3 relative error in each product)\n"
    "  --max-steps N        stop after N steps (benchmarks; 0 = no limit)\n"
    "Evaluation and logging\n"
    "  --eval-every N       evaluate every N epochs (on valid if present, else test);\n"
    "                       0 turns evaluation off; default: on test at the end only\n"
    "  --eval-batch N       sessions scored at once in evaluation (256)\n"
    "  --cutoffs 1,5,10,20  --ties conservative|standard|median\n"
    "  --log-every S        seconds between progress lines (5)\n"
    "  --config FILE        settings as 'key = value' lines (names as the flags, the same\n"
    "                       checks); flags win\n"
    "Ranks (run under mpirun or srun; see docs/distributed.md)\n"
    "  --comm-timeout S     every collective completes within S seconds or all ranks stop,\n"
    "                       naming a rank that did not answer (300)\n"
    "  --sparse-exchange on|off  exchange only the touched table rows (on), or whole tables\n"
    "                       (off: a baseline for benchmarks; same results)\n"
    "  --check-every N      compare a parameter checksum across ranks every N steps (0 = off)\n"
    "  --deterministic      accepted for compatibility: reductions always have a fixed order\n"
    "  --item-tables M      replicated (every rank a copy) | node (CPU ranks on one machine:\n"
    "                       one copy in shared memory, each rank updating its part of the\n"
    "                       rows and of the dense weights, reading the others' gradients in\n"
    "                       place) | sharded (item i's rows on rank i mod P alone: a step\n"
    "                       fetches the rows it needs and returns their gradients; a rank\n"
    "                       holds 1/P of the tables; on GPU ranks too, the shard in host\n"
    "                       memory); the same bits. Default: node where the ranks share a\n"
    "                       machine's memory, else replicated (GRUREC_SHARED_MODEL=0, the old\n"
    "                       switch: replicated). GRUREC_COMM_SHM=0: MPI messages instead of\n"
    "                       shared memory on one machine (and so replicated tables)\n"
    "Checkpoints (RUN/ckpt-STEP.h5; a run directory with checkpoints is resumed bit for bit;\n"
    "  it belongs to one dataset and one model configuration: another is refused, exit 2)\n"
    "  --checkpoint-every N also every N steps (default: at the end of every epoch only)\n"
    "  --checkpoint-minutes M  also every M minutes (rank 0's clock decides for all ranks)\n"
    "  --keep K             checkpoints kept (3)\n"
    "  --stop-at-step N     checkpoint and exit 75 after step N, as on a signal\n"
    "  --reshard            resume a checkpoint of another number of ranks (the epoch in\n"
    "                       progress starts over on the new ranks: not bit for bit)\n"
    "  SIGUSR1, SIGTERM, SIGINT: every rank stops at the next step boundary, a checkpoint is\n"
    "  written, and the exit status is 75 (checkpointed: run the same command to resume)\n"
    "Daily retraining\n"
    "  --warm-start FROM    start from another run's model (a run directory: its newest\n"
    "                       checkpoint, else model.h5; or a model or checkpoint file) instead\n"
    "                       of random numbers: items are matched by original id; an item of\n"
    "                       both keeps its rows and their Adagrad state, a new item starts as\n"
    "                       in a fresh model, FROM's other items are dropped. --layers,\n"
    "                       --embedding, --loss and --final-act must be FROM's; the rest may\n"
    "                       change. RUN is an ordinary run directory (a rerun resumes it).\n"
    "                       Any --item-tables, from any run (a sharded run's checkpoint is\n"
    "                       read from its parts); sharded, each rank reads only its rows.\n"
    "                       e.g. grurec-prep --input log.tsv.gz --since 2016-05-02 --until 2016-06-02 \\\n"
    "                              --test-days 1 --out data/jun01\n"
    "                            grurec train --data data/jun01 --out runs/jun01 --warm-start runs/may31 --epochs 2\n"
    "\n"
    "Exit status: 0 done, 1 internal error, a non-finite loss or a failed checkpoint write,\n"
    "2 bad input or usage, 75 checkpointed on request (resume with the same command).\n";

// Set by SIGUSR1 / SIGTERM / SIGINT; every rank learns of it through the step header.
static volatile sig_atomic_t g_stop_signal;
static void on_stop_signal(int sig) { g_stop_signal = sig; }

enum { EXIT_CHECKPOINTED = 75 };

typedef struct {
    const char *data, *out, *config_file, *cutoffs, *ties, *device, *item_tables, *warm_start;
    int tf32;
    double comm_timeout;
    int sparse_exchange, check_every;
    int64_t checkpoint_every, stop_at_step;
    double checkpoint_minutes;
    int reshard;
    int keep;
} train_args;

static void parse_train_args(int argc, char **argv, train_config *c, train_args *a) {
    memset(a, 0, sizeof *a);
    a->comm_timeout = 300;
    a->keep = 3;
    a->sparse_exchange = 1;
    a->cutoffs = "1,5,10,20";
    a->ties = "conservative";
    a->device = NULL;       // --device, else $GRUREC_DEVICE, else auto
    a->item_tables = NULL;  // --item-tables, else GRUREC_SHARED_MODEL, else the default
    // Model and training settings wait until the config file is read: flags win over it.
    struct { const char *name, *value; } *set = xmalloc((size_t)argc * sizeof *set);
    int n_set = 0;
    opt_parser op;
    for (opt_begin(&op, "train", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) { fputs(train_usage, stdout); exit(0); }
        else if (opt_is(&op, "--deterministic")) {}  // always: every reduction has a fixed order
        else if (opt_is(&op, "--reshard")) a->reshard = 1;
        else if (opt_is(&op, "--tf32")) a->tf32 = 1;
        else if (opt_is(&op, "--data")) a->data = opt_str(&op);
        else if (opt_is(&op, "--warm-start")) a->warm_start = opt_str(&op);
        else if (opt_is(&op, "--out")) a->out = opt_str(&op);
        else if (opt_is(&op, "--config")) a->config_file = opt_str(&op);
        else if (opt_is(&op, "--cutoffs")) a->cutoffs = opt_str(&op);
        else if (opt_is(&op, "--ties")) a->ties = opt_str(&op);
        else if (opt_is(&op, "--device")) a->device = opt_str(&op);
        else if (opt_is(&op, "--item-tables")) {
            tables_mode m;
            a->item_tables = opt_str(&op);
            if (!tables_mode_parse(a->item_tables, &m)) usage_fail("--item-tables is replicated, node or sharded, not '%s'", a->item_tables);
        }
        else if (opt_is(&op, "--comm-timeout")) a->comm_timeout = opt_num_above(&op, 0, 1e9);
        else if (opt_is(&op, "--sparse-exchange")) {
            const char *v = opt_str(&op);
            if (strcmp(v, "on") && strcmp(v, "off")) usage_fail("--sparse-exchange is on or off, not '%s'", v);
            a->sparse_exchange = strcmp(v, "on") == 0;
        }
        else if (opt_is(&op, "--checkpoint-every")) a->checkpoint_every = opt_int(&op, 0, INT64_MAX);
        else if (opt_is(&op, "--checkpoint-minutes")) a->checkpoint_minutes = opt_num_above(&op, 0, 1e9);
        else if (opt_is(&op, "--keep")) a->keep = (int)opt_int(&op, 1, INT_MAX);
        else if (opt_is(&op, "--stop-at-step")) a->stop_at_step = opt_int(&op, 1, INT64_MAX);
        else if (opt_is(&op, "--check-every")) a->check_every = (int)opt_int(&op, 0, INT_MAX);
        else if (strncmp(op.name, "--", 2) == 0 && config_setting_name(op.name + 2)) {
            set[n_set].name = config_setting_name(op.name + 2);
            set[n_set++].value = opt_raw(&op);
        } else opt_unknown(&op);
    }
    if (a->config_file) config_read_file(c, a->config_file);
    for (int k = 0; k < n_set; k++) config_set(c, set[k].name, set[k].value, NULL);  // the file's checks
    free(set);
    if (!a->data || !a->out) usage_fail("train needs --data DIR and --out RUN");
}

// Everything a training run holds, from set-up to the end.
typedef struct {
    train_config c;
    train_args a;
    eval_options eo;
    comm *cm;
    int rank, P, root;
    dataset_meta m;
    session_stream st;
    char data_dir[4096];
    char **item_ids;     // the dataset's original ids, for every checkpoint and model.h5 (rank 0)
    warm_start_info warm;  // --warm-start: what will be read, and the counts
    char *cfg_json;
    FILE *mf;            // RUN/metrics.jsonl (rank 0)
    model_shape s;
    model_tensors p;     // the dense weights, and the tables the table module binds
    tables *tb;
    backend *b;
    alias_table sampler;
    lanes ln;
    ckpt_position pos;
    int resumed;
    int B, K;
    int32_t *x, *y, *neg, *row_src;  // the step's inputs, targets, negatives; lanes_step's plan
    float scale;
    int eval_split;
    int64_t total_pairs, step;
    double t_checkpoint, train_seconds;
    size_t state_bytes;  // model state on this rank: parameters and optimizer state
    // The backend gives each step's loss a step late (backend_set_loss_late): the pairs
    // of the step whose loss is still to come (-1: none).
    int loss_late;
    int64_t late_pairs;
    int dev_neg;  // the backend draws the negatives (backend_draw_negatives): none drawn here
} trainer;

// One epoch's running sums.
typedef struct {
    int epoch;
    double t_epoch, t_log, loss_sum, loss_log, flops0;
    int64_t pairs, pairs_log, my_pairs;
    int64_t loss_pairs_log;  // the pairs whose losses loss_log holds
} epoch_sums;

static FILE *open_metrics(const char *run, int append) {
    char path[4096];
    xsnprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, append ? "a" : "w");
    CHECK(f, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static void run_eval(trainer *t, int split, int epoch) {
    metrics met;
    metrics_init(&met, t->eo.cutoffs, t->eo.n_cutoffs);
    double t0 = now_s();
    if (tables_mode_of(t->tb) == TABLES_SHARDED)  // (every rank scores its own rows)
        evaluate_sharded(&t->c, &t->s, &t->m, split, t->eo.ties, &met, t->cm, t->b, t->tb);
    else  // the training backend's parameters, where they live
        evaluate(&t->c, &t->s, &t->p, &t->m, split, t->eo.ties, &met, t->cm, t->b);
    double secs = now_s() - t0;
    if (!t->root) return;
    char label[64], buf[2048];
    snprintf(label, sizeof label, "epoch %d, %s split (%.1f s)", epoch, split_names[split], secs);
    metrics_print(&met, 0, label);
    metrics_json(&met, buf, sizeof buf);
    fprintf(t->mf, "{\"type\": \"eval\", \"epoch\": %d, \"split\": \"%s\", \"seconds\": %.3f, \"metrics\": %s}\n", epoch,
            split_names[split], secs, buf);
    fflush(t->mf);
}

// Writes a checkpoint, or stops every rank: training without a way back is not worth going on.
static void save_or_stop(trainer *t, const ckpt_position *pos) {
    if (checkpoint_save(t->cm, t->a.out, &t->c, &t->s, &t->p, t->b, t->tb, &t->ln, pos, t->m.fingerprint, t->data_dir,
                        t->item_ids, t->a.keep) == 0)
        return;
    if (t->root) fprintf(stderr, "grurec: stopping: training cannot go on without a way back\n");
    comm_finalize(t->cm);
    fail_exit(EXIT_INTERNAL);  // (HDF5 may still hold the failed file: no exit-time close)
}

// ---- set-up ----

// The settings, the checks that every rank runs the same job, the data and the run directory.
static void setup_run(trainer *t, int argc, char **argv, comm *cm) {
    memset(t, 0, sizeof *t);
    train_config *c = &t->c;
    config_defaults(c);
    parse_train_args(argc, argv, c, &t->a);
    config_default_act(c, c->act_given);
    if (!c->eval_every_given) c->eval_every = -1;  // default: evaluate at the end only
    config_validate(c);
    eval_options_parse(&t->eo, NULL, t->a.cutoffs, t->a.ties);
    sgemm_set_threads(c->threads);
    comm_set_timeout(cm, t->a.comm_timeout);
    t->cm = cm;
    t->rank = comm_rank(cm), t->P = comm_size(cm), t->root = t->rank == 0;
    const backend_device dev = backend_choose_device(t->a.device, comm_local_rank(cm), t->root);
    backend_set_tf32(t->a.tf32);
    // The step exchange runs in one kind of memory: every rank on the GPU, or every one on the CPU.
    comm_check_same_u64(cm, (uint64_t)dev, "the device (--device auto chose differently: give --device)");

    dataset_meta *m = &t->m;
    dataset_open(t->a.data, m);
    // Every rank must run the same model on the same data with the same program.
    comm_check_same_u64(cm, config_model_hash(c), "the model settings (config hash)");
    comm_check_same_u64(cm, (uint64_t)m->n_items, "the number of items");
    comm_check_same_u64(cm, strtoull(m->fingerprint, NULL, 16), "the dataset fingerprint");
    comm_check_same_u64(cm, (uint64_t)m->format_version * 1000003u + GRUREC_VERSION_NUMBER, "the format / program version");
    if (m->split[SPLIT_TRAIN].n_shards < t->P)
        input_fail_all(t->a.data, 0, "%d train shards for %d ranks: prepare the data with grurec-prep --shards %d (or a multiple)",
                   m->split[SPLIT_TRAIN].n_shards, t->P, t->P);
    stream_load(&t->st, m, SPLIT_TRAIN, t->rank, t->P);
    // (the evaluation shards are read at the end: a damaged or foreign one is refused now)
    for (int sp = SPLIT_VALID; sp <= SPLIT_TEST; sp++) dataset_check_shards(m, sp, t->rank, t->P);
    if (t->a.warm_start) warm_start_check(t->a.warm_start, c, m, &t->warm);  // (every rank: the same verdict)
    // RUN belongs to one dataset and one model configuration: another is refused here,
    // before anything in it is written or deleted.
    if (!realpath(t->a.data, t->data_dir)) xsnprintf(t->data_dir, sizeof t->data_dir, "%s", t->a.data);
    run_dir_claim(cm, t->a.out, t->data_dir, m->fingerprint, c);
    // The original item ids go into every checkpoint and model.h5 (models stand on their own).
    t->item_ids = t->root ? dataset_item_ids(m) : NULL;
    t->cfg_json = config_to_json(c);
    if (t->root) {  // an existing plain file or an unwritable directory is the user's to fix (exit 2)
        const char *out = t->a.out;
        if (!*out) usage_fail("train: --out is empty: name the run directory");
        if (mkdir(out, 0777) != 0 && errno != EEXIST) input_fail(out, 0, "cannot create run directory: %s", strerror(errno));
        struct stat rs;
        int e = stat(out, &rs) != 0 ? errno : !S_ISDIR(rs.st_mode) ? ENOTDIR : access(out, W_OK | X_OK) != 0 ? errno : 0;
        if (e) input_fail(out, 0, "cannot use as run directory: %s", strerror(e));
    }
}

// The model: its dense weights, the item tables (their mode chosen once, here), the
// backend, the lanes, and a checkpoint to resume from.
static void setup_model(trainer *t) {
    const train_config *c = &t->c;
    model_shape *s = &t->s;
    model_shape_init(s, c, t->m.n_items);
    const backend_device dev = backend_current_device();
    // before anything large is allocated (its estimate is of whole tables on every rank: not
    // the sharded mode's, whose start-up line gives the state per rank)
    const int sharded = t->a.item_tables && strcmp(t->a.item_tables, "sharded") == 0;
    if (dev == BACKEND_CPU && !sharded) memory_check_fits(s, c);
    t->B = c->batch_size, t->K = c->n_sample;
    tensors_alloc_dense(&t->p, s);
    model_init_dense(&t->p, s, c->seed);
    const tables_options to = {t->a.item_tables, t->a.sparse_exchange, dev, t->B};
    t->tb = tables_create(t->cm, c, s, &to, &t->p);
    if (t->K > 0) alias_build(&t->sampler, t->m.item_support, (int32_t)t->m.n_items, c->sample_alpha);
    model_shape bound = *s;  // (sharded tables bind a step table: a GPU copies its rows alone)
    bound.table_rows = tables_bound_rows(t->tb);
    t->b = backend_create_trainer(c, &bound, &t->p, tables_optim(t->tb), t->B, t->rank, t->m.item_support);
    tables_attach(t->tb, t->b);
    t->state_bytes = tables_bytes_here(t->tb) + s->n_dense * sizeof(float) * (2 + (c->momentum > 0));
    t->loss_late = backend_set_loss_late(t->b);
    t->dev_neg = t->K > 0 && backend_draw_negatives(t->b, &t->sampler);
    t->late_pairs = -1;
    lanes_init(&t->ln, t->st.off, t->st.items, t->st.n_sessions, t->B);
    // A run directory with checkpoints is resumed from the newest valid one.
    t->pos = (ckpt_position){1, 0, 0};
    t->resumed = checkpoint_load(t->cm, t->a.out, c, s, &t->p, t->b, t->tb, &t->ln, &t->pos, t->m.fingerprint,
                                 t->a.reshard);
    if (t->a.warm_start && !t->resumed) {  // (a rerun of a warm-started run resumes it instead)
        const warm_start_info *w = &t->warm;
        if (!tables_one_copy(t->tb) || t->root) {  // the rows this rank keeps (sharded: its own)
            const model_tensors *rows;
            int64_t first, stride, n;
            tables_rows_here(t->tb, &rows, &first, &stride, &n);
            warm_start_load_rows(w, s, &t->m, rows, tables_optim(t->tb), first, stride, n);
        }
        warm_start_load(w, s, &t->p, t->b);
        if (t->root)
            fprintf(stderr, "grurec: warm start from %s: %lld items kept, %lld new, %lld dropped%s\n", w->path,
                    (long long)w->kept, (long long)w->added, (long long)w->dropped,
                    w->optimizer ? "" : " (a model file: the Adagrad state starts at zero)");
    }
    tables_ready(t->tb);  // the tables, initialised or read, before any rank reads them
    t->x = xmalloc((size_t)t->B * sizeof *t->x), t->y = xmalloc((size_t)t->B * sizeof *t->y);
    t->neg = xmalloc((size_t)(t->K ? t->K : 1) * sizeof *t->neg);
    t->row_src = xmalloc((size_t)t->B * sizeof *t->row_src);
    // The gradient of the mean over the global nominal batch (B lanes × P ranks), also
    // when fewer lanes remain.
    t->scale = 1.0f / ((float)t->B * (float)t->P);
    t->eval_split = t->m.split[SPLIT_VALID].present ? SPLIT_VALID : SPLIT_TEST;
    t->total_pairs = t->st.n_pairs;
    comm_allreduce_sum_i64(t->cm, &t->total_pairs, 1);
    t->step = t->pos.step;
    t->t_checkpoint = now_s();
}

// The run's first lines: metrics.jsonl's config object and the start-up line, both
// naming the tables' mode and the transport.
static void announce(trainer *t) {
    if (!t->root) return;
    const char *mode = tables_mode_name(tables_mode_of(t->tb));
    const char *transport = tables_transport_name(tables_transport_of(t->tb));
    t->mf = open_metrics(t->a.out, t->resumed);
    fprintf(t->mf, "{\"type\": \"config\", \"config\": %s, \"dataset\": ", t->cfg_json);
    json_write_str(t->mf, t->a.data);
    fprintf(t->mf, ", \"fingerprint\": \"%s\", \"ranks\": %d, \"item_tables\": \"%s\", \"transport\": \"%s\", "
                   "\"resumed_at_step\": %lld", t->m.fingerprint, t->P, mode, transport,
            (long long)(t->resumed ? t->pos.step : -1));
    if (t->a.warm_start && !t->resumed) {
        const warm_start_info *w = &t->warm;
        fprintf(t->mf, ", \"warm_start\": {\"from\": ");
        json_write_str(t->mf, w->path);
        fprintf(t->mf, ", \"kept\": %lld, \"new\": %lld, \"dropped\": %lld, \"optimizer_state\": %s}",
                (long long)w->kept, (long long)w->added, (long long)w->dropped, w->optimizer ? "true" : "false");
    }
    fprintf(t->mf, "}\n");
    fflush(t->mf);
    const model_shape *s = &t->s;
    fprintf(stderr, "grurec: %d rank%s training on %lld pairs, %lld items; %zu dense + %lld table parameters; %s\n",
            t->P, t->P > 1 ? "s" : "", (long long)t->total_pairs, (long long)t->m.n_items, s->n_dense,
            (long long)(s->n_items * (s->hid[s->n_layers - 1] + 1) + (t->p.E ? s->n_items * s->emb_width : 0)),
            tables_summary(t->tb));
    fprintf(stderr, "grurec: model state per rank: %.1f MB (tables and their Adagrad state %.1f MB, dense weights "
                    "and their state %.1f MB)\n", (double)t->state_bytes / 1e6, (double)tables_bytes_here(t->tb) / 1e6,
            (double)(t->state_bytes - tables_bytes_here(t->tb)) / 1e6);
}

// ---- the steps of an epoch ----

// The summed loss of step STEP, over PAIRS pairs: stops the run if it is not finite.
static void add_loss(trainer *t, epoch_sums *e, float loss, int64_t pairs, int64_t step) {
    if (!isfinite(loss)) {
        if (t->root)
            fprintf(stderr, "grurec: the loss became %s at epoch %d, step %lld: lower --learning-rate or --momentum, "
                            "check --final-act and --bpreg, or the data (no model was saved)\n",
                    isnan(loss) ? "NaN" : "infinite", e->epoch, (long long)step);
        comm_finalize(t->cm);
        exit(EXIT_INTERNAL);
    }
    e->loss_sum += loss;
    e->loss_log += loss;
    e->loss_pairs_log += pairs;
}

// A late loss still to come (the last step's) is read and added: collective, before
// anything is saved and at an epoch's end.
static void settle_loss(trainer *t, epoch_sums *e) {
    if (!t->loss_late || t->late_pairs < 0) return;
    float loss = (float)backend_take_loss(t->b);
    if (t->P > 1) comm_allreduce_sum_f32(t->cm, &loss, 1);
    add_loss(t, e, loss, t->late_pairs, t->step - 1);
    t->late_pairs = -1;
}

// One step: the lanes' batch and the negatives, the gradient, the tables' sync (which
// sums HDR over the ranks and updates every parameter), the lanes moved on. *MINE: this
// rank still has pairs; it is updated for the next step.
static void train_step(trainer *t, epoch_sums *e, int *mine, float *hdr) {
    const int M = *mine ? t->ln.M : 0, K = t->K;
    e->my_pairs += M;
    if (M) lanes_batch(&t->ln, t->x, t->y);
    if (K && !t->dev_neg) alias_draw_step(&t->sampler, t->c.seed, (uint64_t)t->step, K, t->neg);
    const int32_t *x, *y, *neg;  // (sharded tables: rows of the step's fetched table)
    tables_fetch(t->tb, M, t->x, t->y, t->dev_neg ? NULL : t->neg, K, &x, &y, &neg);
    double loss = backend_gradient_step(t->b, M, x, y, neg, K, t->scale, t->step);
    const int next = *mine ? lanes_next_active(&t->ln) : 0;
    const int mine_next = next > 0 && !(K == 0 && next < 2);
    const int stop_here = g_stop_signal || (t->a.stop_at_step > 0 && t->step + 1 >= t->a.stop_at_step);
    // Rank 0's clock decides time-based checkpoints; the header tells every rank.
    const int ckpt_due = t->root && t->a.checkpoint_minutes > 0 && now_s() - t->t_checkpoint >= 60.0 * t->a.checkpoint_minutes;
    const float h[HDR_N] = {(float)loss, (float)M, (float)mine_next, (float)stop_here, (float)ckpt_due};
    memcpy(hdr, h, sizeof h);
    tables_sync(t->tb, hdr, M);
    const int64_t step_pairs = (int64_t)hdr[HDR_PAIRS];
    if (!t->loss_late) {
        add_loss(t, e, hdr[HDR_LOSS], step_pairs, t->step);
    } else {  // the loss is the step before's
        if (t->late_pairs >= 0) add_loss(t, e, hdr[HDR_LOSS], t->late_pairs, t->step - 1);
        t->late_pairs = step_pairs;
    }
    if (*mine) backend_move_rows(t->b, t->row_src, lanes_step(&t->ln, t->row_src));
    *mine = mine_next;
    e->pairs += step_pairs;
    e->pairs_log += step_pairs;
    t->step++;
    if (t->a.check_every > 0 && t->step % t->a.check_every == 0) {
        backend_sync_params_to_host(t->b);
        comm_check_same_u64(t->cm, tables_params_checksum(t->tb), "the parameters (replicas diverged)");
    }
}

// A progress line every --log-every seconds (rank 0).
static void log_progress(trainer *t, epoch_sums *e) {
    double now = now_s();
    if (!t->root || t->c.log_every_s <= 0 || now - e->t_log < t->c.log_every_s || e->pairs_log == 0) return;
    double eps = (double)e->pairs / (now - e->t_epoch), pct = 100.0 * (double)e->pairs / (double)t->total_pairs;
    double eta = eps > 0 ? (double)(t->total_pairs - e->pairs) / eps : 0;
    fprintf(stderr, "epoch %d %5.1f%%  loss %.4f  %.0f events/s  ETA %.0f s\n", e->epoch, pct,
            e->loss_pairs_log ? e->loss_log / (double)e->loss_pairs_log : 0.0, eps, eta);
    fprintf(t->mf, "{\"type\": \"progress\", \"epoch\": %d, \"step\": %lld, \"percent\": %.2f, \"loss\": %.6f, "
                   "\"events_per_s\": %.1f}\n", e->epoch, (long long)t->step, pct,
            e->loss_pairs_log ? e->loss_log / (double)e->loss_pairs_log : 0.0, eps);
    fflush(t->mf);
    e->t_log = now;
    e->loss_log = 0;
    e->pairs_log = 0;
    e->loss_pairs_log = 0;
}

// A checkpoint within the epoch: on request (a signal, --stop-at-step: then exit 75), or
// scheduled (--checkpoint-every, --checkpoint-minutes). ANY: some rank goes on this epoch;
// a scheduled checkpoint on an epoch's last step is left to the epoch's end.
static void checkpoint_if_due(trainer *t, epoch_sums *e, const float *hdr, int64_t any) {
    const int epoch = e->epoch;
    const int scheduled = hdr[HDR_CHECKPOINT] > 0 || (t->a.checkpoint_every > 0 && t->step % t->a.checkpoint_every == 0);
    if (!(hdr[HDR_STOP] > 0 || (scheduled && any > 0))) return;
    settle_loss(t, e);  // a non-finite loss stops before the save
    t->t_checkpoint = now_s();
    ckpt_position here = any > 0 ? (ckpt_position){epoch, 1, t->step} : (ckpt_position){epoch + 1, 0, t->step};
    save_or_stop(t, &here);
    if (hdr[HDR_STOP] > 0) {
        if (t->root) fprintf(stderr, "grurec: checkpointed at step %lld on request: run the same command to resume\n", (long long)t->step);
        if (t->mf) fclose(t->mf);
        comm_finalize(t->cm);
        exit(EXIT_CHECKPOINTED);
    }
}

// ---- the end of an epoch ----

// The epoch's line and metrics.jsonl objects (the exchange's cost, each rank's speed).
static void epoch_progress(trainer *t, const epoch_sums *e, double secs) {
    const int P = t->P, root = t->root;
    const double mean_loss = e->pairs ? e->loss_sum / (double)e->pairs : 0;
    const double gflops = (backend_flops(t->b) - e->flops0) / secs / 1e9;
    const exchange_stats *x = tables_stats(t->tb);
    if (root) {
        fprintf(stderr, "epoch %d done: loss %.4f, %lld events in %.1f s (%.0f events/s, %.1f GFLOP/s in products%s)\n",
                e->epoch, mean_loss, (long long)e->pairs, secs, (double)e->pairs / secs, gflops, P > 1 ? " on rank 0" : "");
        fprintf(t->mf, "{\"type\": \"epoch\", \"epoch\": %d, \"loss\": %.6f, \"events\": %lld, \"steps\": %lld, "
                       "\"seconds\": %.3f, \"events_per_s\": %.1f, \"gflops\": %.2f",
                e->epoch, mean_loss, (long long)e->pairs, (long long)t->step, secs, (double)e->pairs / secs, gflops);
        if (x->steps > 0)
            fprintf(t->mf, ", \"ranks\": %d, \"bytes_dense_per_step\": %.0f, \"bytes_sparse_per_step\": %.0f, "
                           "\"union_rows_per_step\": %.1f, \"comm_seconds\": %.3f, \"comm_wait_seconds\": %.3f, "
                           "\"comm_sum_seconds\": %.3f, \"compute_seconds\": %.3f",
                    P, (double)x->bytes_dense / (double)x->steps, (double)x->bytes_sparse / (double)x->steps,
                    (double)x->union_rows / (double)x->steps, x->seconds, x->wait_seconds, x->sum_seconds,
                    secs - x->seconds);
        fprintf(t->mf, "}\n");
        fflush(t->mf);
    }
    if (P > 1) {  // each rank's own speed, for the report's per-rank series
        double *rank_eps = xcalloc((size_t)P, sizeof *rank_eps);
        rank_eps[t->rank] = (double)e->my_pairs / secs;
        comm_allreduce_sum_f64(t->cm, rank_eps, (size_t)P);
        for (int r = 0; root && r < P; r++)
            fprintf(t->mf, "{\"type\": \"progress\", \"epoch\": %d, \"step\": %lld, \"percent\": 100.00, \"rank\": %d, "
                           "\"events_per_s\": %.1f}\n", e->epoch, (long long)t->step, r, rank_eps[r]);
        if (root) fflush(t->mf);
        free(rank_eps);
    }
}

// One epoch: its steps until every rank's stream is done (or --max-steps), then its
// line, its checkpoint and, when due, an evaluation. Returns 1 when training stops here.
static int run_epoch(trainer *t, int epoch) {
    if (!(t->resumed && t->pos.started && epoch == t->pos.epoch)) {  // else the checkpoint's lanes go on
        lanes_restart(&t->ln);
        backend_zero_states(t->b);
    }
    tables_stats_reset(t->tb);
    epoch_sums e = {.epoch = epoch, .t_epoch = now_s(), .flops0 = backend_flops(t->b)};
    e.t_log = e.t_epoch;
    // A lane alone has no negative without samples: such a rank is done (as the official code).
    int mine = t->ln.M > 0 && !(t->K == 0 && t->ln.M < 2), stopped = 0;
    int64_t any = mine;
    comm_allreduce_sum_i64(t->cm, &any, 1);
    while (any > 0) {
        float hdr[HDR_N];
        train_step(t, &e, &mine, hdr);
        any = (int64_t)hdr[HDR_ACTIVE_NEXT];
        if (t->c.max_steps && t->step >= t->c.max_steps) stopped = 1;
        log_progress(t, &e);
        checkpoint_if_due(t, &e, hdr, any);
        if (stopped) break;
    }
    settle_loss(t, &e);
    const double secs = now_s() - e.t_epoch;
    t->train_seconds += secs;
    epoch_progress(t, &e, secs);
    if (!stopped) {  // the end of every epoch is a checkpoint
        ckpt_position next = {epoch + 1, 0, t->step};
        save_or_stop(t, &next);
    }
    if (t->c.eval_every > 0 && epoch % t->c.eval_every == 0 && epoch < t->c.epochs && !stopped) {
        run_eval(t, t->eval_split, epoch);
        if (t->root) report_write(t->a.out);  // the report follows every evaluation
    }
    return stopped;
}

// ---- the end ----

// The device's cost per step (CUDA backend: kernels, copies, waits; docs/cuda.md), once
// at the end (rank 0's own): a line and a metrics.jsonl object.
static void report_device_counters(trainer *t) {
    backend_counters k;
    if (!t->root || !backend_counters_get(t->b, &k) || k.steps == 0) return;
    const double n = (double)k.steps;
    fprintf(stderr, "grurec: device work per step (mean of %lld steps): %.2f graph launches (%.1f nodes: %.1f kernels, "
                    "%.1f cuBLAS calls), %.1f kernels, %.1f cuBLAS "
                    "calls, %.2f NCCL calls, %.1f copies host->device (%.0f bytes, %.2f pageable), %.1f device->host "
                    "(%.0f bytes), %.2f host waits, %.1f us of host time\n",
            (long long)k.steps, (double)k.graph_launches / n, (double)k.graph_nodes / n, (double)k.graph_kernel_nodes / n,
            (double)k.graph_blas_nodes / n, (double)k.kernels / n, (double)k.blas_calls / n,
            (double)k.nccl_calls / n, (double)k.copies_h2d / n, (double)k.bytes_h2d / n, (double)k.pageable_h2d / n,
            (double)k.copies_d2h / n, (double)k.bytes_d2h / n, (double)k.host_waits / n, k.host_us / n);
    fprintf(t->mf, "{\"type\": \"device_counters\", \"steps\": %lld, \"graph_launches\": %lld, \"graph_nodes\": %lld, "
                   "\"graph_kernel_nodes\": %lld, \"graph_blas_nodes\": %lld, \"graph_captures\": %lld, "
                   "\"capture_us\": %.1f, \"kernels\": %lld, "
                   "\"blas_calls\": %lld, \"nccl_calls\": %lld, \"copies_h2d\": %lld, \"bytes_h2d\": %lld, "
                   "\"pageable_h2d\": %lld, \"copies_d2h\": %lld, \"bytes_d2h\": %lld, \"host_waits\": %lld, "
                   "\"host_us\": %.1f}\n",
            (long long)k.steps, (long long)k.graph_launches, (long long)k.graph_nodes, (long long)k.graph_kernel_nodes,
            (long long)k.graph_blas_nodes, (long long)k.graph_captures, k.capture_us, (long long)k.kernels,
            (long long)k.blas_calls,
            (long long)k.nccl_calls, (long long)k.copies_h2d, (long long)k.bytes_h2d, (long long)k.pageable_h2d,
            (long long)k.copies_d2h, (long long)k.bytes_d2h, (long long)k.host_waits, k.host_us);
    fflush(t->mf);
}

// RUN/model.h5, the final evaluation and the report; everything freed.
static void finish(trainer *t) {
    report_device_counters(t);
    backend_sync_to_host(t->b);
    char path[4096];
    xsnprintf(path, sizeof path, "%s/model.h5", t->a.out);
    tables_save_model(t->tb, path, &t->c, t->m.fingerprint, t->data_dir, t->item_ids);  // (sharded: streamed)
    if (t->root) fprintf(stderr, "grurec: wrote %s (%.1f s of training)\n", path, t->train_seconds);
    if (t->c.eval_every != 0) run_eval(t, SPLIT_TEST, t->c.epochs);
    if (t->mf) fclose(t->mf);
    if (t->root) report_write(t->a.out);  // RUN/report.html; a failure is only a warning
    free(t->cfg_json);
    free(t->x);
    free(t->y);
    free(t->neg);
    free(t->row_src);
    lanes_free(&t->ln);
    tables_free(t->tb);  // (first: its exchange gives its buffers back through the backend's memory)
    backend_free(t->b);
    if (t->K) alias_free(&t->sampler);
    tensors_free_dense(&t->p);
    stream_free(&t->st);
    if (t->item_ids) dataset_free_item_ids(&t->m, t->item_ids);
    dataset_close(&t->m);
}

int cmd_train(int argc, char **argv, comm *cm) {
    trainer t;
    setup_run(&t, argc, argv, cm);
    setup_model(&t);
    announce(&t);
    signal(SIGUSR1, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    int stopped = 0;
    for (int epoch = (int)t.pos.epoch; epoch <= t.c.epochs && !stopped; epoch++) stopped = run_epoch(&t, epoch);
    finish(&t);
    return 0;
}
