// Training configuration: the model and optimiser settings of DESIGN §3, with the
// official GRU4Rec (PyTorch) defaults. Read from flags and from `--config FILE`
// (`key = value` lines; flags win), written into every model file as JSON.
#ifndef GRUREC_CONFIG_H
#define GRUREC_CONFIG_H

#include <stdint.h>

#include "model/loss.h"

enum { MAX_LAYERS = 8 };

typedef enum { EMB_ONEHOT, EMB_SHARED, EMB_SEPARATE } embedding_mode;

typedef struct {
    // model: these must match between a run and the model it resumes or evaluates
    int n_layers;
    int layers[MAX_LAYERS];
    embedding_mode embedding;
    int embedding_dim;  // EMB_SEPARATE only
    loss_config loss;
    int n_sample;
    float sample_alpha;
    // training
    int batch_size;
    float dropout_embed, dropout_hidden;
    float learning_rate, momentum;
    int epochs;
    uint64_t seed;
    int threads;
    int eval_every;      // epochs between evaluations during training; 0 = none
    int eval_at_end;     // evaluate on test after training
    int eval_batch;
    double log_every_s;  // seconds between progress lines
    int64_t max_steps;   // stop after this many steps (benchmarks); 0 = no limit
    // Whether a flag or the config file chose these (config_set sets them): the loss picks
    // the final activation otherwise, and evaluation runs at the end only.
    int act_given, eval_every_given;
} train_config;

void config_defaults(train_config *c);
// NAME ("loss", "batch-size", ... as the flags without dashes) in static storage if it
// is a setting, else NULL.
const char *config_setting_name(const char *name);
// Applies one setting by name. Returns 0 if NAME is unknown; bad values are usage errors
// naming ORIGIN (FILE:LINE, "model file"), or the flag --NAME when ORIGIN is NULL.
int config_set(train_config *c, const char *name, const char *value, const char *origin);
// Reads `key = value` lines ('#' comments) from PATH.
void config_read_file(train_config *c, const char *path);
// Checks the combination (e.g. bpr-max needs negatives or a batch > 1).
void config_validate(const train_config *c);
// The final activation a loss uses when none is given.
void config_default_act(train_config *c, int act_given);
// JSON of every setting, for model files, metrics and inspect; floats in their shortest
// exact form (float_str).
char *config_to_json(const train_config *c);
// Parses what config_to_json wrote (model files). Returns 0 on malformed text.
int config_from_json(train_config *c, const char *json);
// Hash of the settings that define the model and its data use (not epochs, logging).
uint64_t config_model_hash(const train_config *c);
// "100,100" for layers
void config_layers_str(const train_config *c, char *buf, int size);

#endif
