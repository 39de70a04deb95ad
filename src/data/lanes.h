// Session-parallel lanes (DESIGN §4): B lanes walk a stream of sessions; lane k feeds
// event t of its session and is trained to predict event t+1. A lane whose session
// ends takes the next session of the stream, and its hidden rows are zeroed; when the
// stream is exhausted the lane is removed and the rows below it move up, so the batch
// shrinks at the end of an epoch. Sessions of one event give no pair and are skipped.
#ifndef GRUREC_LANES_H
#define GRUREC_LANES_H

#include <stdint.h>

typedef struct {
    const int64_t *off;   // CSR offsets of the stream's sessions
    const int32_t *items;
    int64_t n_sessions;
    int B;                // lanes
    int M;                // active lanes: rows 0..M-1
    int64_t *sess, *pos;  // per active row: session index, position of the input event
    int64_t next;         // next session to hand out
    int64_t *valid_after; // [n_sessions + 1]: sessions with a pair from index s on
} lanes;

void lanes_init(lanes *l, const int64_t *off, const int32_t *items, int64_t n_sessions, int B);
void lanes_free(lanes *l);
// Back to the stream's start (an epoch); every state row of the active lanes is zero
// afterwards (the caller zeroes its state buffers).
void lanes_restart(lanes *l);
// Input and target item of every active row.
void lanes_batch(const lanes *l, int32_t *x, int32_t *y);
// Moves every lane one event on and says where each active row's state comes from:
// SRC[k] (at least B entries) = the row it had before, or -1 for a lane that starts a
// new session (its state is zero). Rows only move up (SRC[k] >= k, SRC increasing). Returns the new M.
// The backend applies the plan to its state buffers (host or device memory).
int lanes_step(lanes *l, int32_t *src);
// Applies a plan of lanes_step to host state buffers (see lanes_advance).
void lanes_move_rows(float **states, const int *widths, int n_states, const int32_t *src, int M);
// lanes_step + lanes_move_rows: moves every lane one event on. STATES are N_STATES buffers of B rows of WIDTHS[s]
// floats whose rows follow the lanes: rows of lanes that start a new session are
// zeroed, rows of removed lanes are dropped (order kept).
void lanes_advance(lanes *l, float **states, const int *widths, int n_states);
// How many lanes will be active after the next lanes_advance (without advancing):
// ranks tell each other in the step header whether they still have work.
int lanes_next_active(const lanes *l);
// Training pairs left in the stream from the current positions on (for ETA).
int64_t lanes_pairs_total(const lanes *l);

#endif
