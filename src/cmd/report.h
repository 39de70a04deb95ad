// grurec report: RUN/report.html, a self-contained page (inline SVG charts, no script,
// no network) made from RUN/metrics.jsonl: loss per epoch, Recall@20, MRR@20, NDCG@20 per
// evaluation, events/s over time, the run's configuration and its dataset.
#ifndef GRUREC_REPORT_H
#define GRUREC_REPORT_H

#include "comm/comm.h"

// Writes RUN_DIR/report.html (through a temporary name and a rename) from
// RUN_DIR/metrics.jsonl. Lines that are not JSON objects (a truncated last line) and
// unknown keys are ignored. Returns 0 on success; on failure prints a warning on stderr
// and returns non-zero. Never exits: training calls it at the end.
int report_write(const char *run_dir);

int cmd_report(int argc, char **argv, comm *cm);

#endif
