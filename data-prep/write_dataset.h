// Writes a prepared dataset (DESIGN §2) under a temporary name and renames it into
// place, so that a failure never leaves a half-written dataset behind.
#ifndef GRUREC_WRITE_DATASET_H
#define GRUREC_WRITE_DATASET_H

#include <stdint.h>

#include "data/dataset.h"
#include "pipeline.h"

typedef struct {
    int present;
    const sessions *store;  // the sessions these indices refer to
    session_list list;
    int n_shards;
    int64_t dropped_unknown_items;
    // Filled by write_dataset:
    int64_t n_sessions, n_events, t_min, t_max;
    int64_t *shard_events;  // [n_shards]
} split_out;

typedef struct {
    split_out split[N_SPLITS];
    const idmap *items;       // raw item strings
    const int32_t *dense;     // raw id -> dense id
    int32_t n_items;
    const int64_t *support;   // [n_items]
    const char *time_unit;
    const char *source;       // input paths
    const char *filters;      // JSON
    const char *summary;      // JSON
    int compression;          // deflate level, 0 = none
    char fingerprint[17];     // filled by write_dataset
} dataset_out;

// Fails unless OUT is absent, or (with FORCE) an earlier dataset or an empty directory.
void check_output_path(const char *out, int force);
void write_dataset(const char *out, int force, dataset_out *d);

#endif
