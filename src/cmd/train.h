#ifndef GRUREC_TRAIN_H
#define GRUREC_TRAIN_H
// `grurec train`: session-parallel GRU4Rec training (DESIGN §3, §4), evaluation at the
// end (or every --eval-every epochs), RUN/model.h5 and RUN/metrics.jsonl.
#include "comm/comm.h"
int cmd_train(int argc, char **argv, comm *cm);
#endif
