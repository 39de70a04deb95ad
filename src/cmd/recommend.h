// grurec recommend: the top k next items for sessions given by their original item ids
// (DESIGN §1). A session is fed item by item from a zero state; the scores of all items
// after its last item (h · Wyᵀ + by, as the evaluator scores them) are reduced to the k
// best by partial selection. Many sessions are processed in batches (docs/recommend.md).
#ifndef GRUREC_RECOMMEND_H
#define GRUREC_RECOMMEND_H

#include <stdint.h>

#include "backend/backend.h"
#include "comm/comm.h"
#include "cmd/config.h"
#include "data/dataset.h"
#include "model/model.h"

// Item id string -> dense id: open addressing over the dataset's item ids.
typedef struct {
    uint64_t mask;
    uint32_t *slot_id1;  // dense id + 1; 0 = empty
    uint32_t *slot_tag;  // high hash bits, compared before the string
} rec_idmap;

typedef struct {
    train_config c;
    model_shape s;
    model_tensors p;
    char **ids;  // [n_items] original item ids (index = dense id), the model's own
    rec_idmap map;
    backend *b;
    int max_rows;      // sessions per batch
    int full_scoring;  // score all items at every step (the evaluator's path; for checks)
    // Scratch of the selection.
    void *cand;        // rec_topk's scratch
    int32_t *seen;     // [n_items] stamp of the session that saw the item (--exclude-seen)
    int32_t stamp;
    int32_t *x;        // [max_rows] this step's inputs
    int64_t *order;    // [max_rows] sort keys: rows by session length, longest first
} recommender;

// Loads MODEL (a model file or a run directory) with the item ids it holds. DATA_DIR
// (NULL: none) must be the model's dataset (fingerprint and item count, else an input
// error, exit 2); a model written before models held their ids needs it for the ids.
// MAX_ROWS: sessions scored at once; 0 or less: as many as keep their scores within 512 MiB.
void rec_open(recommender *r, const char *model, const char *data_dir, int max_rows);
void rec_close(recommender *r);
// Dense id of the item id S[0..n), or -1.
int32_t rec_item_index(const recommender *r, const char *s, size_t n);

// Top k of N scores, best first (ties: lower id first; NaN counts as -inf), skipping
// the items with skip[i] == stamp when SKIP is non-NULL. Expected O(N) selection plus
// O(k log k) for sorting the k. SCRATCH holds rec_topk_scratch_bytes(N). Writes at
// most k ids and scores; returns how many.
size_t rec_topk_scratch_bytes(int64_t N);
int rec_topk(const float *scores, int64_t N, int k, const int32_t *skip, int32_t stamp, void *scratch,
             int32_t *out_ids, float *out_scores);

// Recommends for n <= max_rows sessions at once: session j has lens[j] >= 1 known dense
// ids items[j][0..lens[j]). Writes up to k ids and scores per session into
// out_ids/out_scores + j*k and the count into out_n[j].
void rec_batch(recommender *r, int n, const int32_t *const *items, const int *lens, int k, int exclude_seen,
               int32_t *out_ids, float *out_scores, int *out_n);

int cmd_recommend(int argc, char **argv, comm *cm);

#endif
