// The dataset format of DESIGN §2 (written by grurec-prep, read by every grurec
// command): DIR/meta.h5 plus DIR/SPLIT/shard-SSSSS-of-NNNNN.h5 per split. Version 2
// (docs/formats.md): every file sealed (io/h5seal.h), every dataset checksummed, ids in
// string tables (io/string_table.h), and each shard names its dataset and place.
#ifndef GRUREC_DATASET_H
#define GRUREC_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define DATASET_FORMAT_VERSION 2
#define DATASET_CHUNK ((int64_t)1 << 20)  // elements per HDF5 chunk

enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, N_SPLITS };
extern const char *const split_names[N_SPLITS];

typedef struct {
    int present;
    int n_shards;
    int64_t n_sessions, n_events, t_min, t_max, n_dropped_unknown_items;
} split_info;

typedef struct {
    char *dir;
    int64_t format_version, n_items;
    int64_t *item_support;  // [n_items]
    char *time_unit;        // "s", "ms" or "order"
    char *fingerprint;      // 16 hex digits over every split's sessions and items
    char *filters;          // the prep options (JSON)
    char *summary;          // counts by step and reason (JSON)
    split_info split[N_SPLITS];
} dataset_meta;

// One shard in memory, as CSR: session k's events are [offsets[k], offsets[k+1]).
typedef struct {
    int64_t n_sessions, n_events, t_min, t_max;
    int shard, n_shards;
    int64_t *offsets;
    int32_t *items;
    int64_t *times;
} shard_data;

// "DIR/SPLIT/shard-00003-of-00008.h5"
void dataset_shard_path(char *buf, size_t size, const char *dir, int split, int shard, int n_shards);
// Reads and checks meta.h5. Anything missing or inconsistent is an input error that
// names the file.
void dataset_open(const char *dir, dataset_meta *m);
void dataset_close(dataset_meta *m);
// Original item ids (index = dense id), read on demand (verified: damage is an input
// error naming meta.h5); free with dataset_free_item_ids.
char **dataset_item_ids(const dataset_meta *m);
void dataset_free_item_ids(const dataset_meta *m, char **ids);
// Reads one shard and checks it: its seal and checksums, that it is this dataset's
// (fingerprint), of this split and this shard of this many (as its name says), and its
// contents (offsets monotone, items in range, sizes agreeing with the attributes).
// Anything else is an input error naming the shard.
void shard_read(const dataset_meta *m, int split, int shard, shard_data *s);
void shard_free(shard_data *s);
// Checks, without reading their values, the shards of SPLIT that rank RANK of WORLD reads
// (s mod WORLD == RANK): seal and identity as shard_read does. Training checks its
// evaluation splits so at its start, not after hours of training.
void dataset_check_shards(const dataset_meta *m, int split, int rank, int world);

#endif
