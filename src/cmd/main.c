// grurec: train, evaluate and use GRU4Rec session-based recommenders.
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "eval/baselines.h"
#include "backend/blas_setup.h"
#include "util/check.h"
#include "comm/comm.h"
#include "eval/evaluate.h"
#include "cmd/inspect.h"
#include "cmd/recommend.h"
#include "cmd/report.h"
#include "cmd/train.h"

static const char *const usage =
    "usage: grurec COMMAND [options]   (grurec COMMAND --help for each)\n"
    "Options are written --name value or --name=value.\n"
    "\n"
    "  train      train GRU4Rec on a dataset made by grurec-prep (resumes a run directory\n"
    "             from its newest checkpoint), then evaluate it\n"
    "  eval       Recall@K, MRR@K and NDCG@K of a trained model over all items\n"
    "  baseline   POP, S-POP, item-KNN or BPR-MF, fitted and evaluated like eval\n"
    "  recommend  the top k next items for sessions of original item ids\n"
    "  report     write RUN/report.html (charts of loss, metrics and speed; the config)\n"
    "  inspect    what a dataset, model or checkpoint holds; --hash: a parameter checksum\n"
    "\n"
    "Exit status: 0 success, 1 internal error (or a non-finite loss), 2 bad input or usage,\n"
    "75 (train) checkpointed on a signal: run the same command to resume.\n";

int main(int argc, char **argv) {
    set_program_name("grurec");
    blas_select_core(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_INPUT : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {  // and what this build can run on (scripts read it)
        printf("grurec %s (ranks: %s; devices: %s)\n", GRUREC_VERSION,
               strcmp(comm_kind(), "mpi") == 0 ? "mpi" : "single process", backend_devices_built());
        return 0;
    }
    int (*cmd)(int, char **, comm *) = strcmp(argv[1], "train") == 0 ? cmd_train
                                        : strcmp(argv[1], "eval") == 0  ? cmd_eval
                                        : strcmp(argv[1], "baseline") == 0 ? cmd_baseline
                                        : strcmp(argv[1], "recommend") == 0 ? cmd_recommend
                                        : strcmp(argv[1], "report") == 0 ? cmd_report
                                        : strcmp(argv[1], "inspect") == 0 ? cmd_inspect
                                                                        : NULL;
    if (!cmd && argv[1][0] == '-') usage_fail("unknown option %s: the options follow the COMMAND", argv[1]);
    if (!cmd) usage_fail("unknown command '%s'", argv[1]);
    // Every command runs as one rank of an MPI job, or alone (a world of one).
    comm *cm = comm_init(&argc, &argv, 300.0);
    int rc = cmd(argc - 1, argv + 1, cm);
    comm_finalize(cm);
    return rc;
}
