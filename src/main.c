// grurec: train, evaluate and use GRU4Rec session-based recommenders.
#include <stdio.h>
#include <string.h>

#include "blas_setup.h"
#include "check.h"
#include "evaluate.h"
#include "train.h"

static const char *const usage =
    "usage: grurec COMMAND [options]   (grurec COMMAND --help for each)\n"
    "\n"
    "  train   train GRU4Rec on a dataset made by grurec-prep, then evaluate it\n"
    "  eval    Recall@K and MRR@K of a trained model over all items\n"
    "\n"
    "Exit status: 0 success, 1 internal error (or a non-finite loss), 2 bad input or usage.\n";

int main(int argc, char **argv) {
    set_program_name("grurec");
    blas_select_core(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_INPUT : 0;
    }
    if (strcmp(argv[1], "--version") == 0) { printf("grurec %s\n", GRUREC_VERSION); return 0; }
    if (strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    usage_fail("unknown command '%s'", argv[1]);
}
