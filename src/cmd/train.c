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
#include "util/check.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "dist/exchange.h"
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
    "  CPU ranks on one machine keep the item tables once in shared memory and read each\n"
    "  other's gradients there, each updating its part of the rows and of the dense\n"
    "  weights (same bits as replicas; GRUREC_SHARED_MODEL=0: replicas and a shared-memory\n"
    "  all-reduce, GRUREC_COMM_SHM=0: replicas and MPI messages)\n"
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
    "\n"
    "Exit status: 0 done, 1 internal error, a non-finite loss or a failed checkpoint write,\n"
    "2 bad input or usage, 75 checkpointed on request (resume with the same command).\n";

// Set by SIGUSR1 / SIGTERM / SIGINT; every rank learns of it through the step header.
static volatile sig_atomic_t g_stop_signal;
static void on_stop_signal(int sig) { g_stop_signal = sig; }

enum { EXIT_CHECKPOINTED = 75 };

typedef struct {
    const char *data, *out, *config_file, *cutoffs, *ties, *device;
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
    a->device = NULL;  // --device, else $GRUREC_DEVICE, else auto
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
        else if (opt_is(&op, "--out")) a->out = opt_str(&op);
        else if (opt_is(&op, "--config")) a->config_file = opt_str(&op);
        else if (opt_is(&op, "--cutoffs")) a->cutoffs = opt_str(&op);
        else if (opt_is(&op, "--ties")) a->ties = opt_str(&op);
        else if (opt_is(&op, "--device")) a->device = opt_str(&op);
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

static FILE *open_metrics(const char *run, int append) {
    char path[4096];
    xsnprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, append ? "a" : "w");
    CHECK(f, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static void run_eval(const train_config *c, const model_shape *s, model_tensors *p, const dataset_meta *m, int split,
                     const int *cutoffs, int nc, tie_mode ties, int epoch, FILE *mf, comm *cm, backend *b) {
    metrics met;
    metrics_init(&met, cutoffs, nc);
    double t0 = now_s();
    evaluate(c, s, p, m, split, ties, &met, cm, b);  // the training backend's parameters, where they live
    double secs = now_s() - t0;
    if (comm_rank(cm) != 0) return;
    char label[64], buf[2048];
    snprintf(label, sizeof label, "epoch %d, %s split (%.1f s)", epoch, split_names[split], secs);
    metrics_print(&met, 0, label);
    metrics_json(&met, buf, sizeof buf);
    fprintf(mf, "{\"type\": \"eval\", \"epoch\": %d, \"split\": \"%s\", \"seconds\": %.3f, \"metrics\": %s}\n", epoch,
            split_names[split], secs, buf);
    fflush(mf);
}

// Writes a checkpoint, or stops every rank: training without a way back is not worth going on.
static void save_or_stop(comm *cm, const train_args *a, const train_config *c, const model_shape *s,
                         const model_tensors *p, backend *b, const lanes *ln, const ckpt_position *pos,
                         const char *fingerprint, const char *data_dir, exchange *ex) {
    if (ex && ex->in_place) {  // each rank's optimizer state of the dense values is whole in its range only
        float *oa[8];
        size_t on[8];
        backend_optim_arrays(b, oa, on);
        for (int k = 0; k < 2; k++)  // acc_dense, mom_dense
            if (oa[k]) exchange_gather_dense(ex, oa[k]);
    }
    if (checkpoint_save(cm, a->out, c, s, p, b, ln, pos, fingerprint, data_dir, a->keep) == 0) return;
    if (comm_rank(cm) == 0) fprintf(stderr, "grurec: stopping: training cannot go on without a way back\n");
    comm_finalize(cm);
    fail_exit(EXIT_INTERNAL);  // (HDF5 may still hold the failed file: no exit-time close)
}

int cmd_train(int argc, char **argv, comm *cm) {
    train_config c;
    config_defaults(&c);
    train_args a;
    parse_train_args(argc, argv, &c, &a);
    config_default_act(&c, c.act_given);
    if (!c.eval_every_given) c.eval_every = -1;  // default: evaluate at the end only
    config_validate(&c);
    eval_options eo;
    eval_options_parse(&eo, NULL, a.cutoffs, a.ties);
    const int *cutoffs = eo.cutoffs;
    const int nc = eo.n_cutoffs;
    const tie_mode ties = eo.ties;
    sgemm_set_threads(c.threads);
    comm_set_timeout(cm, a.comm_timeout);
    const int rank = comm_rank(cm), P = comm_size(cm), root = rank == 0;
    const backend_device dev = backend_choose_device(a.device, comm_local_rank(cm), root);
    backend_set_tf32(a.tf32);
    // The step exchange runs in one kind of memory: every rank on the GPU, or every one on the CPU.
    comm_check_same_u64(cm, (uint64_t)dev, "the device (--device auto chose differently: give --device)");

    dataset_meta m;
    dataset_open(a.data, &m);
    // Every rank must run the same model on the same data with the same program.
    comm_check_same_u64(cm, config_model_hash(&c), "the model settings (config hash)");
    comm_check_same_u64(cm, (uint64_t)m.n_items, "the number of items");
    comm_check_same_u64(cm, strtoull(m.fingerprint, NULL, 16), "the dataset fingerprint");
    comm_check_same_u64(cm, (uint64_t)m.format_version * 1000003u + GRUREC_VERSION_NUMBER, "the format / program version");
    if (m.split[SPLIT_TRAIN].n_shards < P)
        input_fail_all(a.data, 0, "%d train shards for %d ranks: prepare the data with grurec-prep --shards %d (or a multiple)",
                   m.split[SPLIT_TRAIN].n_shards, P, P);
    session_stream st;
    stream_load(&st, &m, SPLIT_TRAIN, rank, P);
    // RUN belongs to one dataset and one model configuration: another is refused here,
    // before anything in it is written or deleted.
    char data_dir[4096];
    if (!realpath(a.data, data_dir)) xsnprintf(data_dir, sizeof data_dir, "%s", a.data);
    run_dir_claim(cm, a.out, data_dir, m.fingerprint, &c);
    FILE *mf = NULL;
    char *cfg_json = config_to_json(&c);
    if (root) {  // an existing plain file or an unwritable directory is the user's to fix (exit 2)
        if (!*a.out) usage_fail("train: --out is empty: name the run directory");
        if (mkdir(a.out, 0777) != 0 && errno != EEXIST) input_fail(a.out, 0, "cannot create run directory: %s", strerror(errno));
        struct stat rs;
        int e = stat(a.out, &rs) != 0 ? errno : !S_ISDIR(rs.st_mode) ? ENOTDIR : access(a.out, W_OK | X_OK) != 0 ? errno : 0;
        if (e) input_fail(a.out, 0, "cannot use as run directory: %s", strerror(e));
    }

    model_shape s;
    model_shape_init(&s, &c, m.n_items);
    if (dev == BACKEND_CPU) memory_check_fits(&s, &c);  // before anything large is allocated
    // CPU ranks on one machine keep one copy of the item tables and their optimizer state
    // in shared memory, each updating its part of the step's rows (docs/distributed.md;
    // GRUREC_SHARED_MODEL=0: a replica per rank). Rank 0 alone writes them outside the
    // update; the dense GRU weights stay every rank's own.
    const char *sm = getenv("GRUREC_SHARED_MODEL");
    const int want_shared = P > 1 && dev == BACKEND_CPU && comm_shared_memory(cm) && !(sm && strcmp(sm, "0") == 0);
    comm_check_same_u64(cm, (uint64_t)want_shared, "GRUREC_SHARED_MODEL");
    const size_t shared_bytes = model_tables_bytes(&s, c.momentum > 0);
    void *shared = want_shared ? comm_node_segment(cm, shared_bytes) : NULL;
    arena tables_arena = shared ? arena_region(shared, shared_bytes) : arena_heap();
    model_tensors p;
    tensors_alloc_dense(&p, &s);
    model_tables_alloc(&p, &s, &tables_arena);
    table_optim topt;
    table_optim_alloc(&topt, &s, c.momentum > 0, &tables_arena);
    model_init_dense(&p, &s, c.seed);
    if (!shared || root) model_init_tables(&p, &s, c.seed);
    alias_table sampler = {0};
    if (c.n_sample > 0) alias_build(&sampler, m.item_support, (int32_t)m.n_items, c.sample_alpha);
    const int B = c.batch_size, K = c.n_sample;
    backend *b = backend_create_trainer(&c, &s, &p, &topt, B, rank, m.item_support);
    exchange ex = {0};
    const int widths[3] = {s.hid[s.n_layers - 1], 1, s.emb_width}, caps[3] = {B + K + B, B + K, B};
    if (P > 1) exchange_init(&ex, cm, a.sparse_exchange, s.n_dense, m.n_items, widths, caps, p.E ? 3 : 2,
                            backend_exchange_mem(b, cm));
    // With shared tables each rank updates its part of every step's rows: summed in place
    // from the other ranks' slots (sparse exchange), else cut from the all-reduced union.
    exchange_places places;
    if (shared && exchange_read_in_place(&ex, &places)) backend_grad_buffers(b, places.dense, places.rows);
    lanes ln;
    lanes_init(&ln, st.off, st.items, st.n_sessions, B);
    // A run directory with checkpoints is resumed from the newest valid one.
    ckpt_position pos = {1, 0, 0};
    const int resumed = checkpoint_load(cm, a.out, &c, &s, &p, b, &ln, &pos, m.fingerprint, a.reshard, shared != NULL);
    if (shared) comm_node_barrier(cm);  // rank 0's tables, initialised or read, before anyone uses them
    if (root) {
        mf = open_metrics(a.out, resumed);
        fprintf(mf, "{\"type\": \"config\", \"config\": %s, \"dataset\": \"%s\", \"fingerprint\": \"%s\", \"ranks\": %d, "
                    "\"resumed_at_step\": %lld}\n", cfg_json, a.data, m.fingerprint, P, (long long)(resumed ? pos.step : -1));
        fflush(mf);
    }
    signal(SIGUSR1, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    int32_t *x = xmalloc((size_t)B * sizeof *x), *y = xmalloc((size_t)B * sizeof *y);
    int32_t *neg = xmalloc((size_t)(K ? K : 1) * sizeof *neg);
    int32_t *row_src = xmalloc((size_t)B * sizeof *row_src);  // lanes_step's plan for the state rows
    // The gradient of the mean over the global nominal batch (B lanes × P ranks), also
    // when fewer lanes remain.
    const float scale = 1.0f / ((float)B * (float)P);
    const int eval_split = m.split[SPLIT_VALID].present ? SPLIT_VALID : SPLIT_TEST;
    int64_t total_pairs = st.n_pairs;
    comm_allreduce_sum_i64(cm, &total_pairs, 1);
    if (root)  // (how the step's gradients are summed: after the first all-reduce, which settles it)
        fprintf(stderr, "grurec: %d rank%s training on %lld pairs, %lld items; %zu dense + %lld table parameters%s\n",
                P, P > 1 ? "s" : "", (long long)total_pairs, (long long)m.n_items, s.n_dense,
                (long long)(m.n_items * (s.hid[s.n_layers - 1] + 1) + (p.E ? m.n_items * s.emb_width : 0)),
                P == 1 ? "" : dev == BACKEND_CUDA ? "; gradients summed by NCCL"
                            : shared ? "; gradients summed through shared memory, the tables kept there once, each rank updating its part"
                            : comm_shared_memory(cm) ? "; gradients summed through shared memory"
                                                     : "; gradients summed by MPI messages");

    int64_t step = pos.step;
    double t_checkpoint = now_s();
    double train_seconds = 0;
    int stopped = 0;
    for (int epoch = (int)pos.epoch; epoch <= c.epochs && !stopped; epoch++) {
        if (!(resumed && pos.started && epoch == pos.epoch)) {  // else the checkpoint's lanes go on
            lanes_restart(&ln);
            backend_zero_states(b);
        }
        if (P > 1) exchange_stats_reset(&ex);
        double t_epoch = now_s(), t_log = t_epoch, loss_sum = 0, loss_log = 0, flops0 = backend_flops(b);
        int64_t pairs = 0, pairs_log = 0, my_pairs = 0;
        // A lane alone has no negative without samples: such a rank is done (as the official code).
        int mine = ln.M > 0 && !(K == 0 && ln.M < 2);
        int64_t any = mine;
        comm_allreduce_sum_i64(cm, &any, 1);
        while (any > 0) {
            const int M = mine ? ln.M : 0;
            my_pairs += M;
            if (M) lanes_batch(&ln, x, y);
            if (K) alias_draw_step(&sampler, c.seed, (uint64_t)step, K, neg);
            double loss = backend_gradient_step(b, M, x, y, neg, K, scale, step);
            const int next = mine ? lanes_next_active(&ln) : 0;
            const int mine_next = next > 0 && !(K == 0 && next < 2);
            const int stop_here = g_stop_signal || (a.stop_at_step > 0 && step + 1 >= a.stop_at_step);
            // Rank 0's clock decides time-based checkpoints; the header tells every rank.
            const int ckpt_due = root && a.checkpoint_minutes > 0 && now_s() - t_checkpoint >= 60.0 * a.checkpoint_minutes;
            float hdr[HDR_N] = {(float)loss, (float)M, (float)mine_next, (float)stop_here, (float)ckpt_due};
            if (P > 1) {
                backend_grads g = backend_gradients(b);
                const row_grads *mine_rows[3] = {g.Wy, g.by, g.E}, *sums[3] = {NULL, NULL, NULL};
                exchange_step(&ex, hdr, backend_dense_grads(b), mine_rows, sums);
                if (shared) {
                    row_grads part[3];
                    const row_grads *parts[3] = {NULL, NULL, NULL};
                    for (int t = 0; t < (p.E ? 3 : 2); t++)
                        part[t] = ex.in_place ? *sums[t] : row_grads_part(sums[t], rank, P), parts[t] = &part[t];
                    if (ex.in_place) backend_update_dense(b, places.dense_parts, places.n_parts, places.dense_lo, places.dense_hi);
                    else backend_update_dense(b, NULL, 0, 0, s.n_dense);
                    backend_update_rows(b, parts);
                    backend_end_step(b, M);
                } else backend_apply_update(b, M, sums[0], sums[1], sums[2]);
                if (ex.in_place) exchange_publish_dense(&ex, p.dense);
                if (shared) comm_node_barrier(cm);  // every part updated before the next step reads them
                if (ex.in_place) exchange_fetch_dense(&ex, p.dense);
            } else {
                backend_apply_update(b, M, NULL, NULL, NULL);
            }
            if (!isfinite(hdr[HDR_LOSS])) {
                if (root)
                    fprintf(stderr, "grurec: the loss became %s at epoch %d, step %lld: lower --learning-rate or --momentum, "
                                    "check --final-act and --bpreg, or the data (no model was saved)\n",
                            isnan(hdr[HDR_LOSS]) ? "NaN" : "infinite", epoch, (long long)step);
                comm_finalize(cm);
                exit(EXIT_INTERNAL);
            }
            if (mine) backend_move_rows(b, row_src, lanes_step(&ln, row_src));
            mine = mine_next;
            any = (int64_t)hdr[HDR_ACTIVE_NEXT];
            const int64_t step_pairs = (int64_t)hdr[HDR_PAIRS];
            loss_sum += hdr[HDR_LOSS];
            loss_log += hdr[HDR_LOSS];
            pairs += step_pairs;
            pairs_log += step_pairs;
            step++;
            if (a.check_every > 0 && step % a.check_every == 0) {
                backend_sync_params_to_host(b);
                comm_check_same_u64(cm, params_checksum(&s, &p), "the parameters (replicas diverged)");
            }
            if (c.max_steps && step >= c.max_steps) stopped = 1;
            double t = now_s();
            if (root && c.log_every_s > 0 && t - t_log >= c.log_every_s && pairs_log > 0) {
                double eps = (double)pairs / (t - t_epoch), pct = 100.0 * (double)pairs / (double)total_pairs;
                double eta = eps > 0 ? (double)(total_pairs - pairs) / eps : 0;
                fprintf(stderr, "epoch %d %5.1f%%  loss %.4f  %.0f events/s  ETA %.0f s\n", epoch, pct,
                        loss_log / (double)pairs_log, eps, eta);
                fprintf(mf, "{\"type\": \"progress\", \"epoch\": %d, \"step\": %lld, \"percent\": %.2f, \"loss\": %.6f, "
                            "\"events_per_s\": %.1f}\n", epoch, (long long)step, pct, loss_log / (double)pairs_log, eps);
                fflush(mf);
                t_log = t;
                loss_log = 0;
                pairs_log = 0;
            }
            // A scheduled checkpoint on an epoch's last step is left to the epoch's end.
            const int scheduled = hdr[HDR_CHECKPOINT] > 0 || (a.checkpoint_every > 0 && step % a.checkpoint_every == 0);
            if (hdr[HDR_STOP] > 0 || (scheduled && any > 0)) {
                t_checkpoint = now_s();
                ckpt_position here = any > 0 ? (ckpt_position){epoch, 1, step} : (ckpt_position){epoch + 1, 0, step};
                save_or_stop(cm, &a, &c, &s, &p, b, &ln, &here, m.fingerprint, data_dir, P > 1 ? &ex : NULL);
                if (hdr[HDR_STOP] > 0) {
                    if (root) fprintf(stderr, "grurec: checkpointed at step %lld on request: run the same command to resume\n", (long long)step);
                    if (mf) fclose(mf);
                    comm_finalize(cm);
                    exit(EXIT_CHECKPOINTED);
                }
            }
            if (stopped) break;
        }
        double secs = now_s() - t_epoch;
        train_seconds += secs;
        double mean_loss = pairs ? loss_sum / (double)pairs : 0;
        double gflops = (backend_flops(b) - flops0) / secs / 1e9;
        if (root) {
            fprintf(stderr, "epoch %d done: loss %.4f, %lld events in %.1f s (%.0f events/s, %.1f GFLOP/s in products%s)\n",
                    epoch, mean_loss, (long long)pairs, secs, (double)pairs / secs, gflops, P > 1 ? " on rank 0" : "");
            fprintf(mf, "{\"type\": \"epoch\", \"epoch\": %d, \"loss\": %.6f, \"events\": %lld, \"steps\": %lld, "
                        "\"seconds\": %.3f, \"events_per_s\": %.1f, \"gflops\": %.2f",
                    epoch, mean_loss, (long long)pairs, (long long)step, secs, (double)pairs / secs, gflops);
            if (P > 1 && ex.steps > 0)
                fprintf(mf, ", \"ranks\": %d, \"bytes_dense_per_step\": %.0f, \"bytes_sparse_per_step\": %.0f, "
                            "\"union_rows_per_step\": %.1f, \"comm_seconds\": %.3f, \"comm_wait_seconds\": %.3f, "
                            "\"comm_sum_seconds\": %.3f, \"compute_seconds\": %.3f",
                        P, (double)ex.bytes_dense / (double)ex.steps, (double)ex.bytes_sparse / (double)ex.steps,
                        (double)ex.union_rows / (double)ex.steps, ex.seconds, ex.wait_seconds, ex.sum_seconds,
                        secs - ex.seconds);
            fprintf(mf, "}\n");
            fflush(mf);
        }
        if (P > 1) {  // each rank's own speed, for the report's per-rank series
            double *rank_eps = xcalloc((size_t)P, sizeof *rank_eps);
            rank_eps[rank] = (double)my_pairs / secs;
            comm_allreduce_sum_f64(cm, rank_eps, (size_t)P);
            for (int r = 0; root && r < P; r++)
                fprintf(mf, "{\"type\": \"progress\", \"epoch\": %d, \"step\": %lld, \"percent\": 100.00, \"rank\": %d, "
                            "\"events_per_s\": %.1f}\n", epoch, (long long)step, r, rank_eps[r]);
            if (root) fflush(mf);
            free(rank_eps);
        }
        if (!stopped) {  // the end of every epoch is a checkpoint
            ckpt_position next = {epoch + 1, 0, step};
            save_or_stop(cm, &a, &c, &s, &p, b, &ln, &next, m.fingerprint, data_dir, P > 1 ? &ex : NULL);
        }
        if (c.eval_every > 0 && epoch % c.eval_every == 0 && epoch < c.epochs && !stopped) {
            run_eval(&c, &s, &p, &m, eval_split, cutoffs, nc, ties, epoch, mf, cm, b);
            if (root) report_write(a.out);  // the report follows every evaluation
        }
    }
    backend_sync_to_host(b);
    if (root) {
        char path[4096];
        xsnprintf(path, sizeof path, "%s/model.h5", a.out);
        model_save(path, &s, &p, &c, m.fingerprint, data_dir);
        fprintf(stderr, "grurec: wrote %s (%.1f s of training)\n", path, train_seconds);
    }
    if (c.eval_every != 0) run_eval(&c, &s, &p, &m, SPLIT_TEST, cutoffs, nc, ties, c.epochs, mf, cm, b);
    if (mf) fclose(mf);
    if (root) report_write(a.out);  // RUN/report.html; a failure is only a warning
    free(cfg_json);
    free(x);
    free(y);
    free(neg);
    free(row_src);
    lanes_free(&ln);
    if (P > 1) exchange_free(&ex);
    backend_free(b);
    if (K) alias_free(&sampler);
    table_optim_release(&topt, &tables_arena);
    model_tables_release(&p, &tables_arena);
    tensors_free_dense(&p);
    stream_free(&st);
    dataset_close(&m);
    return 0;
}
