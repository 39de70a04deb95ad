#include "model/memory_estimate.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "model/loss.h"
#include "util/check.h"
#include "model/optim.h"

// xcalloc_huge's size for BYTES: rounded up to whole 2 MiB pages from 2 MiB on.
static size_t huge(size_t bytes) {
    const size_t page = (size_t)2 << 20;
    if (bytes == 0) bytes = 1;
    return bytes < page ? bytes : (bytes + page - 1) / page * page;
}

static size_t f32(size_t n) { return huge((n ? n : 1) * sizeof(float)); }

// A table on the heap arena (util/arena.h): 64-byte blocks, then xcalloc_huge.
static size_t state(size_t n) { return huge(((n ? n : 1) * sizeof(float) + 63) / 64 * 64); }

// One backend's per-lane buffers (cpu_create): R rows, training or scoring.
static size_t backend_bytes(const model_shape *s, const train_config *c, size_t R, int training) {
    size_t b = 4096;  // the backend's own structs (pointers per layer, a copy of the config)
    int max_in = 0, max_h = 0;
    for (int l = 0; l < s->n_layers; l++) {
        const size_t H = (size_t)s->hid[l];
        if (s->in_dim[l] > max_in) max_in = s->in_dim[l];
        if (s->hid[l] > max_h) max_h = s->hid[l];
        b += 5 * f32(R * H) + 2 * f32(R * 3 * H);  // state, rh, h_new, out, mask; xw, gates
    }
    b += 2 * f32(R * (size_t)s->in_dim[0]);  // emb, emb_mask
    if (!training) return b + f32(R * (size_t)s->n_items);  // scores
    const size_t C = R + (size_t)c->n_sample, H = (size_t)s->hid[s->n_layers - 1], N = (size_t)s->n_items;
    const size_t mh = (size_t)max_h, mx = (size_t)(max_in > max_h ? max_in : max_h);
    b += 2 * C * sizeof(int32_t) + f32(C) + f32(C * H) + f32(C);  // cols, col_slot, log_q_col, Wyu, byu
    b += 4 * f32(R * C);                                           // Ru, R, dR, dRu: the score blocks
    b += f32(R * mh) + f32(R * 3 * mh) + f32(R * mh) + f32(R * mx);  // dh, dxw, drh, dx
    b += f32(loss_scratch_floats((int)R, (int)C));
    b += f32(N);  // log_support
    // row_grads: slot[n_items], rows[cap], grad[cap × width]
    const size_t caps[3] = {C + R, C, R}, widths[3] = {H, 1, (size_t)s->emb_width};
    for (int t = 0; t < (s->emb_width ? 3 : 2); t++)
        b += N * sizeof(int32_t) + caps[t] * sizeof(int32_t) + caps[t] * widths[t] * sizeof(float);
    return b;
}

void memory_estimate_cpu(const model_shape *s, const train_config *c, memory_estimate *e) {
    memset(e, 0, sizeof *e);
    const size_t N = (size_t)s->n_items, H = (size_t)s->hid[s->n_layers - 1], W = (size_t)s->emb_width;
    const int copies = c->momentum > 0 ? 3 : 2;  // value, accumulator (, momentum)
    e->tables = copies * (state(N * H) + state(N) + (W ? state(N * W) : 0));
    e->dense = huge(s->n_dense * sizeof(float)) + (copies - 1) * f32(s->n_dense) + f32(s->n_dense);  // + gradient
    e->activations = backend_bytes(s, c, (size_t)c->batch_size, 1);
    // alias_build: q and p (double), prob (float), alias and work (int32)
    e->sampler = c->n_sample > 0 ? N * (2 * sizeof(double) + sizeof(float) + 2 * sizeof(int32_t)) : 0;
    e->eval = backend_bytes(s, c, (size_t)c->eval_batch, 0);
    // lanes (sess, pos) and x, y, row_src, neg of the training loop, for training and evaluation
    const size_t B = (size_t)c->batch_size, EB = (size_t)c->eval_batch;
    e->steps = (B + EB) * (2 * sizeof(int64_t) + 3 * sizeof(int32_t)) + (size_t)c->n_sample * sizeof(int32_t);
    e->total = e->tables + e->dense + e->activations + e->sampler + e->eval + e->steps;
}

size_t memory_available(const char **source) {
    size_t avail = 0;
    *source = "MemAvailable";
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (size_t)kb * 1024;
        fclose(f);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t mapped = 0;
        unsigned long long pages;
        FILE *s = fopen("/proc/self/statm", "r");
        if (s) {
            if (fscanf(s, "%llu", &pages) == 1) mapped = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
            fclose(s);
        }
        size_t left = rl.rlim_cur > mapped ? (size_t)rl.rlim_cur - mapped : 0;
        if (!avail || left < avail) {
            avail = left;
            *source = "RLIMIT_AS";
        }
    }
    return avail;
}

static double gib(size_t bytes) { return (double)bytes / (double)(1u << 30); }

void memory_check_fits(const model_shape *s, const train_config *c) {
    memory_estimate e;
    memory_estimate_cpu(s, c, &e);
    const char *source;
    const size_t avail = memory_available(&source);
    if (!avail || e.total <= avail) return;
    input_fail_all("train", 0,
                   "this run needs %.1f GiB of memory per rank, %.1f GiB is available (%s): activations %.1f GiB "
                   "(--batch-size %d, --n-sample %d), item tables and optimizer state %.1f GiB (%lld items), evaluation %.1f GiB "
                   "(--eval-batch %d); use a smaller --batch-size, --n-sample, --eval-batch or --layers",
                   gib(e.total), gib(avail), source, gib(e.activations), c->batch_size, c->n_sample, gib(e.tables + e.dense),
                   (long long)s->n_items, gib(e.eval), c->eval_batch);
}
