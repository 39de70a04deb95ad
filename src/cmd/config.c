#include "cmd/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "util/numbers.h"
#include "util/escape.h"

void config_defaults(train_config *c) {
    // The official GRU4Rec PyTorch defaults (REFERENCE §A.1).
    memset(c, 0, sizeof *c);
    c->n_layers = 1;
    c->layers[0] = 100;
    c->embedding = EMB_SHARED;
    c->loss = (loss_config){.loss = LOSS_CROSS_ENTROPY, .act = ACT_LINEAR, .elu_alpha = 0.5f, .bpreg = 1.0f, .logq = 0.0f};
    c->n_sample = 2048;
    c->sample_alpha = 0.5f;
    c->batch_size = 64;
    c->learning_rate = 0.05f;
    c->epochs = 10;
    c->seed = 42;
    c->threads = 1;
    c->eval_every = 0;
    c->eval_at_end = 1;
    c->eval_batch = 256;
    c->log_every_s = 5.0;
}

// V as quoted in a message: a value from a config file may hold a stray '\r'.
#define SHOWN(v) escape_text((char[ESCAPED_MAX]){0}, v, strlen(v))

// Bad values name where they came from: a FILE:LINE, "model file", or (ORIGIN NULL) the flag.
static noreturn void bad_value(const char *origin, const char *name, const char *what, const char *v) {
    if (origin) usage_fail("%s: %s takes %s, not '%s'", origin, name, what, SHOWN(v));
    usage_fail("--%s takes %s, not '%s'", name, what, SHOWN(v));
}

static noreturn void unknown_choice(const char *origin, const char *name, const char *what, const char *v,
                                    const char *choices) {
    if (origin) usage_fail("%s: unknown %s '%s' (%s)", origin, what, SHOWN(v), choices);
    usage_fail("--%s: unknown %s '%s' (%s)", name, what, SHOWN(v), choices);
}

static int64_t parse_int(const char *name, const char *v, int64_t lo, int64_t hi, const char *origin) {
    int64_t x;
    if (!num_parse_i64(v, lo, hi, &x)) {
        char what[96];
        snprintf(what, sizeof what, "a whole number from %lld to %lld", (long long)lo, (long long)hi);
        bad_value(origin, name, what, v);
    }
    return x;
}

static float parse_float(const char *name, const char *v, double lo, double hi, const char *origin) {
    float x;
    if (!num_parse_f32(v, lo, hi, &x)) {
        char what[96];
        snprintf(what, sizeof what, "a number from %g to %g", lo, hi);
        bad_value(origin, name, what, v);
    }
    return x;
}

static void parse_layers(train_config *c, const char *v, const char *origin) {
    c->n_layers = 0;
    const char *p = v;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > 65536 || (*end && *end != ',' && *end != '/'))
            bad_value(origin, "layers", "sizes like 100 or 100,100", v);
        if (c->n_layers == MAX_LAYERS) {
            char what[32];
            snprintf(what, sizeof what, "at most %d sizes", MAX_LAYERS);
            bad_value(origin, "layers", what, v);
        }
        c->layers[c->n_layers++] = (int)x;
        p = *end ? end + 1 : end;
    }
    if (c->n_layers == 0) bad_value(origin, "layers", "sizes like 100 or 100,100", v);
}

// The names config_set knows, as flags without the dashes.
static const char *const setting_names[] = {
    "loss", "final-act", "layers", "embedding", "n-sample", "sample-alpha", "bpreg", "logq", "batch-size",
    "dropout-embed", "dropout-hidden", "learning-rate", "momentum", "epochs", "seed", "threads", "eval-every",
    "eval-batch", "log-every", "max-steps"};

const char *config_setting_name(const char *name) {
    for (size_t k = 0; k < sizeof setting_names / sizeof *setting_names; k++)
        if (strcmp(name, setting_names[k]) == 0) return setting_names[k];
    return NULL;
}

int config_set(train_config *c, const char *name, const char *v, const char *origin) {
    if (!config_setting_name(name)) return 0;
#define IS(s) (strcmp(name, s) == 0)
    if (IS("loss")) {
        if (!loss_kind_parse(v, &c->loss.loss))
            unknown_choice(origin, name, "loss", v, "cross-entropy, bpr, top1, bpr-max, top1-max");
    } else if (IS("final-act")) {
        if (!final_act_parse(v, &c->loss.act, &c->loss.elu_alpha))
            unknown_choice(origin, name, "final activation", v, "linear, tanh, elu-A");
        c->act_given = 1;
    } else if (IS("layers")) {
        parse_layers(c, v, origin);
    } else if (IS("embedding")) {
        if (strcmp(v, "onehot") == 0) c->embedding = EMB_ONEHOT;
        else if (strcmp(v, "shared") == 0) c->embedding = EMB_SHARED;
        else {
            int64_t dim;
            if (!num_parse_i64(v, 1, 65536, &dim)) bad_value(origin, name, "onehot, shared or a size from 1 to 65536", v);
            c->embedding = EMB_SEPARATE;
            c->embedding_dim = (int)dim;
        }
    } else if (IS("n-sample")) c->n_sample = (int)parse_int(name, v, 0, 1 << 20, origin);
    else if (IS("sample-alpha")) c->sample_alpha = parse_float(name, v, 0, 10, origin);
    else if (IS("bpreg")) c->loss.bpreg = parse_float(name, v, 0, 1e6, origin);
    else if (IS("logq")) c->loss.logq = parse_float(name, v, 0, 100, origin);
    else if (IS("batch-size")) c->batch_size = (int)parse_int(name, v, 1, 1 << 20, origin);
    else if (IS("dropout-embed")) c->dropout_embed = parse_float(name, v, 0, 0.99, origin);
    else if (IS("dropout-hidden")) c->dropout_hidden = parse_float(name, v, 0, 0.99, origin);
    else if (IS("learning-rate")) c->learning_rate = parse_float(name, v, 1e-12, 1e30, origin);
    else if (IS("momentum")) c->momentum = parse_float(name, v, 0, 0.9999, origin);
    else if (IS("epochs")) c->epochs = (int)parse_int(name, v, 0, 1000000, origin);
    else if (IS("seed")) c->seed = (uint64_t)parse_int(name, v, 0, INT64_MAX, origin);
    else if (IS("threads")) c->threads = (int)parse_int(name, v, 1, 1024, origin);
    else if (IS("eval-every")) {
        c->eval_every = (int)parse_int(name, v, -1, 1000000, origin);  // -1: at the end only
        c->eval_every_given = 1;
    }
    else if (IS("eval-batch")) c->eval_batch = (int)parse_int(name, v, 1, 1 << 16, origin);
    else if (IS("log-every")) c->log_every_s = parse_float(name, v, 0, 1e9, origin);
    else if (IS("max-steps")) c->max_steps = parse_int(name, v, 0, INT64_MAX, origin);
    else CHECK(0, "setting '%s' is listed but not handled", name);
    return 1;
#undef IS
}

void config_default_act(train_config *c, int act_given) {
    if (act_given) return;
    switch (c->loss.loss) {
    case LOSS_BPR_MAX: c->loss.act = ACT_ELU; c->loss.elu_alpha = 0.5f; break;  // PT: elu_param 0.5
    case LOSS_TOP1: case LOSS_BPR: c->loss.act = ACT_TANH; break;               // the 2016 paper
    default: c->loss.act = ACT_LINEAR; break;
    }
}

void config_read_file(train_config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) input_fail(path, 0, "cannot open config file: %s", strerror(errno));
    char line[1024], origin[1200];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *eq = strchr(line, '=');
        char *k = line;
        while (isspace((unsigned char)*k)) k++;
        if (*k == '\0') continue;
        if (!eq) input_fail(path, n, "expected 'key = value'");
        *eq = '\0';
        char *v = eq + 1, *e;
        for (e = eq - 1; e >= k && isspace((unsigned char)*e); e--) *e = '\0';
        while (isspace((unsigned char)*v)) v++;
        for (e = v + strlen(v) - 1; e >= v && isspace((unsigned char)*e); e--) *e = '\0';
        for (char *p = k; *p; p++)
            if (*p == '_') *p = '-';  // batch_size and batch-size both work
        snprintf(origin, sizeof origin, "%s:%ld", path, n);
        if (!config_set(c, k, v, origin)) input_fail(path, n, "unknown setting '%s'", SHOWN(k));
    }
    fclose(f);
}

void config_validate(const train_config *c) {
    if (c->n_sample == 0 && c->batch_size < 2)
        usage_fail("with --n-sample 0 the only negatives are the other targets of the batch: use --batch-size >= 2");
    if (c->embedding == EMB_ONEHOT && c->dropout_embed > 0)
        usage_fail("--dropout-embed applies to an embedding; with --embedding onehot use --dropout-hidden");
    if (c->loss.logq > 0 && c->loss.loss != LOSS_CROSS_ENTROPY)
        usage_fail("--logq is a correction for --loss cross-entropy");
}

void config_layers_str(const train_config *c, char *buf, int size) {
    int n = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->n_layers && n < size; i++) n += snprintf(buf + n, (size_t)(size - n), "%s%d", i ? "," : "", c->layers[i]);
}

// SHORTEST: the printed form ("elu-0.5"); else the %.9g form that model hashes were made of.
static void act_str(const train_config *c, int shortest, char *buf, int size) {
    char a[FLOAT_STR_SIZE];
    if (c->loss.act == ACT_ELU && shortest) snprintf(buf, (size_t)size, "elu-%s", float_str(c->loss.elu_alpha, a));
    else if (c->loss.act == ACT_ELU) snprintf(buf, (size_t)size, "elu-%.9g", c->loss.elu_alpha);
    else snprintf(buf, (size_t)size, "%s", c->loss.act == ACT_TANH ? "tanh" : "linear");
}

char *config_to_json(const train_config *c) {
    char layers[256], act[64], emb[32];
    config_layers_str(c, layers, sizeof layers);
    act_str(c, 1, act, sizeof act);
    if (c->embedding == EMB_SEPARATE) snprintf(emb, sizeof emb, "%d", c->embedding_dim);
    else snprintf(emb, sizeof emb, "%s", c->embedding == EMB_ONEHOT ? "onehot" : "shared");
    // Floats in their shortest exact form: "0.1" as given, and read back to the same bits.
    char f[8][FLOAT_STR_SIZE];
    char *j = xmalloc(2048);
    xsnprintf(j, 2048,
              "{\"loss\": \"%s\", \"final-act\": \"%s\", \"layers\": \"%s\", \"embedding\": \"%s\", "
              "\"n-sample\": \"%d\", \"sample-alpha\": \"%s\", \"bpreg\": \"%s\", \"logq\": \"%s\", "
              "\"batch-size\": \"%d\", \"dropout-embed\": \"%s\", \"dropout-hidden\": \"%s\", "
              "\"learning-rate\": \"%s\", \"momentum\": \"%s\", \"epochs\": \"%d\", \"seed\": \"%llu\", "
              "\"threads\": \"%d\", \"eval-every\": \"%d\", \"eval-batch\": \"%d\", \"log-every\": \"%s\", "
              "\"max-steps\": \"%lld\"}",
              loss_kind_name(c->loss.loss), act, layers, emb, c->n_sample, float_str(c->sample_alpha, f[0]),
              float_str(c->loss.bpreg, f[1]), float_str(c->loss.logq, f[2]), c->batch_size,
              float_str(c->dropout_embed, f[3]), float_str(c->dropout_hidden, f[4]), float_str(c->learning_rate, f[5]),
              float_str(c->momentum, f[6]), c->epochs, (unsigned long long)c->seed, c->threads, c->eval_every,
              c->eval_batch, float_str((float)c->log_every_s, f[7]), (long long)c->max_steps);
    return j;
}

int config_from_json(train_config *c, const char *json) {
    // A flat object of "key": "value" strings, exactly as config_to_json writes it.
    config_defaults(c);
    const char *p = strchr(json, '{');
    if (!p) return 0;
    p++;
    for (;;) {
        char key[64], val[256];
        while (*p == ' ' || *p == ',') p++;
        if (*p == '}') return 1;
        if (sscanf(p, "\"%63[^\"]\": \"%255[^\"]\"", key, val) != 2) return 0;
        if (!config_set(c, key, val, "model file")) return 0;
        p = strchr(p, ':');
        p = strchr(p + 3, '"');
        if (!p) return 0;
        p++;
    }
}

uint64_t config_model_hash(const train_config *c) {
    char layers[256], act[64];
    config_layers_str(c, layers, sizeof layers);
    act_str(c, 0, act, sizeof act);
    char buf[1024];  // %.9g, not float_str: the hashes in existing checkpoints stay valid
    snprintf(buf, sizeof buf, "%d|%s|%d|%d|%s|%s|%d|%.9g|%.9g|%.9g|%d|%.9g|%.9g|%.9g|%.9g|%llu", (int)c->loss.loss, act,
             (int)c->embedding, c->embedding_dim, layers, "v1", c->n_sample, c->sample_alpha, c->loss.bpreg, c->loss.logq,
             c->batch_size, c->dropout_embed, c->dropout_hidden, c->learning_rate, c->momentum,
             (unsigned long long)c->seed);
    uint64_t h = 1469598103934665603ull;
    for (const char *s = buf; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
