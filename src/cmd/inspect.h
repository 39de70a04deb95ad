#ifndef GRUREC_INSPECT_H
#define GRUREC_INSPECT_H
#include "comm/comm.h"
// `grurec inspect PATH [--hash]`: what a dataset, a model or a checkpoint holds.
int cmd_inspect(int argc, char **argv, comm *cm);
#endif
