// A run directory (train --out RUN) belongs to one dataset and one model configuration
// (DESIGN §6): its checkpoints and model.h5 record the dataset's fingerprint and directory
// and the model settings' hash, and a rerun with another dataset or other model settings
// is refused before anything in RUN is written or deleted. What may change on resume:
// --epochs, --max-steps, evaluation, logging, checkpoint cadence and --keep, threads,
// the device and the ranks (with --reshard); everything in config_model_hash may not.
#ifndef GRUREC_RUN_DIR_H
#define GRUREC_RUN_DIR_H

#include <hdf5.h>
#include <stdint.h>

#include "cmd/config.h"
#include "comm/comm.h"

// Records on F (a checkpoint or model file) what it was trained on: the config (JSON and
// its model hash), the dataset's fingerprint, directory and item count, the program.
void run_dir_stamp(hid_t f, const train_config *c, const char *fingerprint, const char *data_dir, int64_t n_items);

// Collective. Every file of RUN that says what it was trained on (the checkpoints and
// model.h5 that open; a damaged one is left to the loader) must name FINGERPRINT and C's
// model settings; otherwise rank 0 says which and where, and every rank exits 2.
void run_dir_claim(comm *cm, const char *run, const char *data_dir, const char *fingerprint, const train_config *c);

#endif
