// Evaluation over sharded item tables (docs/distributed.md, "Evaluation"): each rank
// replays its own sessions as evaluate does, feeding inputs whose rows are fetched from
// their owners, and ranks every target among all items through the table module
// (tables_rank_targets: every rank scores its own rows for every rank's lanes). The
// predictions go into the metrics in the replicated path's order, so the figures are its own.
// On a GPU the feed runs there (the fetched rows uploaded, backend_put_table_rows) and the
// top layer's outputs come down: the ranks score their own rows on the host, as CPU ranks.
#include "eval/evaluate.h"

#include <stdlib.h>

#include "backend/backend.h"
#include "data/lanes.h"
#include "data/stream.h"
#include "dist/tables.h"
#include "util/check.h"

void evaluate_sharded(const train_config *c, const model_shape *s, const dataset_meta *m, int split, tie_mode ties,
                      metrics *met, comm *cm, backend *training, tables *tb) {
    session_stream st;
    stream_load(&st, m, split, comm_rank(cm), comm_size(cm));
    const int B = c->eval_batch;
    backend *b = backend_create_scorer(training, B);  // (it feeds; the table module scores)
    lanes ln;
    lanes_init(&ln, st.off, st.items, st.n_sessions, B);
    lanes_restart(&ln);
    backend_zero_states(b);
    int32_t *x = xmalloc((size_t)B * sizeof *x), *y = xmalloc((size_t)B * sizeof *y);
    int32_t *src = xmalloc((size_t)B * sizeof *src);
    double *rank = xmalloc((size_t)B * sizeof *rank);
    const int top = s->n_layers - 1;
    for (;;) {  // (collective: every rank steps until the last one's lanes are done)
        int64_t any = ln.M;
        comm_allreduce_max_i64(cm, &any, 1);
        if (any == 0) break;
        const int M = ln.M;
        if (M) lanes_batch(&ln, x, y);
        const int32_t *bx;
        tables_fetch_inputs(tb, M, x, &bx);
        if (M) {
            backend_feed(b, M, bx);  // the top layer's outputs are its new state,
            backend_sync_to_host(b); // read on the host (a GPU's brought down; the CPU's: a no-op)
        }
        tables_rank_targets(tb, M, backend_states(b)[top], y, ties, rank);
        for (int i = 0; i < M; i++) metrics_add_rank(met, rank[i]);
        if (M) backend_move_rows(b, src, lanes_step(&ln, src));
    }
    free(rank), free(src), free(x), free(y);
    lanes_free(&ln);
    backend_free(b);
    stream_free(&st);
    metrics_allreduce(met, cm);
}
