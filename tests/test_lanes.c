// Session-parallel lanes (src/data/lanes.c), on CSR streams built by hand.
//
//  - B = 2, sessions of lengths [2, 3, 1, 4]: x / y of every step, which state rows are
//    zeroed (a lane that takes a new session) or kept, lanes removed at the end of the
//    stream, M shrinking to 0; the length-1 session is skipped; a length-2 session gives
//    exactly one pair; the total number of pairs = sum(len - 1) over sessions of >= 2
//    events, also vs lanes_pairs_total at the start;
//  - B = 3, a lane removed above two live ones: the rows below move up, in order, in
//    every state buffer (two buffers of different widths);
//  - lanes_restart: back to the first batch (also in the middle of a run);
//  - random streams: every pair (e, e+1) of every session is fed exactly once, each lane
//    continues its own session (its next input is its last target) unless its state row
//    was zeroed, in which case it starts a session;
//  - edge cases: more lanes than sessions, only length-1 sessions, an empty stream.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/lanes.h"
#include "data/rng.h"

// Two state buffers of B rows: widths 3 and 2.
enum { MAXB = 8 };
typedef struct {
    float s0[MAXB * 3], s1[MAXB * 2];
    float *ptr[2];
    int widths[2];
} states;

static void states_init(states *s) {
    memset(s, 0, sizeof *s);
    s->ptr[0] = s->s0;
    s->ptr[1] = s->s1;
    s->widths[0] = 3;
    s->widths[1] = 2;
}

// Row R gets the distinctive values TAG*10 + k (+1000 in the second buffer).
static void set_row(states *s, int r, int tag) {
    for (int k = 0; k < 3; k++) s->s0[r * 3 + k] = (float)(tag * 10 + k);
    for (int k = 0; k < 2; k++) s->s1[r * 2 + k] = (float)(1000 + tag * 10 + k);
}

static int row_is(const states *s, int r, int tag) {
    for (int k = 0; k < 3; k++)
        if (s->s0[r * 3 + k] != (float)(tag * 10 + k)) return 0;
    for (int k = 0; k < 2; k++)
        if (s->s1[r * 2 + k] != (float)(1000 + tag * 10 + k)) return 0;
    return 1;
}

static int row_is_zero(const states *s, int r) {
    for (int k = 0; k < 3; k++)
        if (s->s0[r * 3 + k] != 0.0f) return 0;
    for (int k = 0; k < 2; k++)
        if (s->s1[r * 2 + k] != 0.0f) return 0;
    return 1;
}

static void expect_batch(const lanes *l, int step, int M, const int32_t *x_want, const int32_t *y_want) {
    cr_assert_eq(l->M, M, "step %d: M = %d, expected %d", step, l->M, M);
    int32_t x[MAXB], y[MAXB];
    lanes_batch(l, x, y);
    for (int k = 0; k < M; k++) {
        cr_expect_eq(x[k], x_want[k], "step %d row %d: x = %d, expected %d", step, k, x[k], x_want[k]);
        cr_expect_eq(y[k], y_want[k], "step %d row %d: y = %d, expected %d", step, k, y[k], y_want[k]);
    }
}

// Sessions: s0 = [10 11], s1 = [20 21 22], s2 = [30] (skipped), s3 = [40 41 42 43].
static const int64_t OFF_A[5] = {0, 2, 5, 6, 10};
static const int32_t ITEMS_A[10] = {10, 11, 20, 21, 22, 30, 40, 41, 42, 43};

Test(lanes, two_lanes_step_by_step) {
    lanes l;
    lanes_init(&l, OFF_A, ITEMS_A, 4, 2);
    lanes_restart(&l);
    cr_expect_eq(lanes_pairs_total(&l), 1 + 2 + 3, "pairs of the stream: (2-1) + (3-1) + (4-1)");
    states s;
    states_init(&s);
    set_row(&s, 0, 1);
    set_row(&s, 1, 2);
    int pairs = 0;

    // step 1: lane 0 = s0 (10 -> 11), lane 1 = s1 (20 -> 21)
    expect_batch(&l, 1, 2, (int32_t[]){10, 20}, (int32_t[]){11, 21});
    pairs += l.M;
    lanes_advance(&l, s.ptr, s.widths, 2);
    // s0 had one pair: lane 0 takes the next session with a pair (s3; s2 has one event)
    // and its rows are zeroed; lane 1 goes on, its rows kept.
    cr_expect(row_is_zero(&s, 0), "lane 0 started s3: its state rows must be zero");
    cr_expect(row_is(&s, 1, 2), "lane 1 continues s1: its state rows must be kept");

    // step 2: lane 0 = s3 (40 -> 41), lane 1 = s1 (21 -> 22)
    expect_batch(&l, 2, 2, (int32_t[]){40, 21}, (int32_t[]){41, 22});
    pairs += l.M;
    set_row(&s, 0, 3);  // the backend carries the new state of lane 0
    lanes_advance(&l, s.ptr, s.widths, 2);
    // s1 ends and the stream is exhausted: lane 1 is removed; lane 0 keeps its row.
    cr_expect(row_is(&s, 0, 3), "lane 0 continues s3: its state rows must be kept");

    // steps 3, 4: lane 0 = s3 (41 -> 42), (42 -> 43)
    expect_batch(&l, 3, 1, (int32_t[]){41}, (int32_t[]){42});
    pairs += l.M;
    set_row(&s, 0, 4);
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect(row_is(&s, 0, 4));
    expect_batch(&l, 4, 1, (int32_t[]){42}, (int32_t[]){43});
    pairs += l.M;
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 0, "every session done: M = %d", l.M);
    cr_expect_eq(pairs, 6, "pairs fed = %d, expected sum(len - 1) = 6", pairs);

    // Restart: the first batch again.
    lanes_restart(&l);
    expect_batch(&l, 1, 2, (int32_t[]){10, 20}, (int32_t[]){11, 21});
    cr_expect_eq(lanes_pairs_total(&l), 6);
    lanes_free(&l);
}

// A length-2 session alone: exactly one pair, then the lane goes.
Test(lanes, length_two_session_one_pair) {
    const int64_t off[2] = {0, 2};
    const int32_t items[2] = {5, 6};
    lanes l;
    lanes_init(&l, off, items, 1, 4);
    lanes_restart(&l);
    cr_expect_eq(lanes_pairs_total(&l), 1);
    expect_batch(&l, 1, 1, (int32_t[]){5}, (int32_t[]){6});
    states s;
    states_init(&s);
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 0);
    lanes_free(&l);
}

// Sessions s0 = [1 2], s1 = [3 4 5 6], s2 = [7 8 9] on three lanes: lane 0 is removed
// after the first step and the rows of lanes 1 and 2 move up.
Test(lanes, removed_lane_rows_move_up) {
    const int64_t off[4] = {0, 2, 6, 9};
    const int32_t items[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    lanes l;
    lanes_init(&l, off, items, 3, 3);
    lanes_restart(&l);
    states s;
    states_init(&s);
    set_row(&s, 0, 1);
    set_row(&s, 1, 2);
    set_row(&s, 2, 3);
    expect_batch(&l, 1, 3, (int32_t[]){1, 3, 7}, (int32_t[]){2, 4, 8});
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 2);
    cr_expect(row_is(&s, 0, 2), "row 0 must hold lane 1's old row 1 (both buffers)");
    cr_expect(row_is(&s, 1, 3), "row 1 must hold lane 2's old row 2 (both buffers)");
    expect_batch(&l, 2, 2, (int32_t[]){4, 8}, (int32_t[]){5, 9});
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 1);
    cr_expect(row_is(&s, 0, 2), "s1 goes on in row 0");
    expect_batch(&l, 3, 1, (int32_t[]){5}, (int32_t[]){6});
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 0);
    lanes_free(&l);
}

// Restart in the middle of a run puts every lane back at the stream's start.
Test(lanes, restart_mid_run) {
    lanes l;
    lanes_init(&l, OFF_A, ITEMS_A, 4, 2);
    lanes_restart(&l);
    states s;
    states_init(&s);
    lanes_advance(&l, s.ptr, s.widths, 2);
    lanes_advance(&l, s.ptr, s.widths, 2);
    cr_expect_eq(l.M, 1);
    lanes_restart(&l);
    expect_batch(&l, 1, 2, (int32_t[]){10, 20}, (int32_t[]){11, 21});
    cr_expect_eq(l.next, 2);
    cr_expect_eq(l.pos[0], 0);
    cr_expect_eq(l.pos[1], 0);
    lanes_free(&l);
}

Test(lanes, edge_cases) {
    states s;
    states_init(&s);
    lanes l;
    // More lanes than sessions with pairs: M = 3 of B = 5.
    lanes_init(&l, OFF_A, ITEMS_A, 4, 5);
    lanes_restart(&l);
    expect_batch(&l, 1, 3, (int32_t[]){10, 20, 40}, (int32_t[]){11, 21, 41});
    lanes_free(&l);
    // Only one-event sessions: no pair, no lane.
    const int64_t off1[4] = {0, 1, 2, 3};
    const int32_t items1[3] = {1, 2, 3};
    lanes_init(&l, off1, items1, 3, 2);
    lanes_restart(&l);
    cr_expect_eq(l.M, 0);
    cr_expect_eq(lanes_pairs_total(&l), 0);
    lanes_free(&l);
    // Empty stream.
    const int64_t off0[1] = {0};
    lanes_init(&l, off0, items1, 0, 2);
    lanes_restart(&l);
    cr_expect_eq(l.M, 0);
    cr_expect_eq(lanes_pairs_total(&l), 0);
    lanes_free(&l);
}

// Random streams: items are the event indices, so a pair (e, e + 1) names its events.
// The state row of a lane holds (its last target + 1): after an advance, a zero row must
// start a session, a kept row must continue with the event it predicted.
static void random_stream(uint64_t seed, int n_sessions, int B) {
    rng_state r;
    rng_state_seed(&r, seed);
    int64_t *off = malloc((size_t)(n_sessions + 1) * sizeof *off);
    off[0] = 0;
    for (int i = 0; i < n_sessions; i++) off[i + 1] = off[i] + 1 + (int64_t)(rng_next_u64(&r) % 6);  // 1..6
    const int64_t n_events = off[n_sessions];
    int32_t *items = malloc((size_t)n_events * sizeof *items);
    int *seen = calloc((size_t)n_events, sizeof *seen);
    char *starts = calloc((size_t)n_events, 1);
    for (int64_t e = 0; e < n_events; e++) items[e] = (int32_t)e;
    for (int i = 0; i < n_sessions; i++) starts[off[i]] = 1;
    int64_t expect_pairs = 0;
    for (int i = 0; i < n_sessions; i++)
        if (off[i + 1] - off[i] >= 2) expect_pairs += off[i + 1] - off[i] - 1;

    lanes l;
    lanes_init(&l, off, items, n_sessions, B);
    lanes_restart(&l);
    cr_expect_eq(lanes_pairs_total(&l), expect_pairs);
    states s;
    states_init(&s);
    int64_t pairs = 0;
    int steps = 0, prev_M = l.M;
    while (l.M > 0) {
        int32_t x[MAXB], y[MAXB];
        lanes_batch(&l, x, y);
        for (int k = 0; k < l.M; k++) {
            cr_assert_eq(y[k], x[k] + 1, "a pair is two consecutive events");
            cr_assert(!starts[y[k]], "the target %d belongs to the input's session", y[k]);
            seen[x[k]]++;
            float tag = s.s0[k * 3];
            if (tag == 0.0f)
                cr_assert(starts[x[k]], "seed %llu step %d row %d: zeroed row, but x = %d does not start a session",
                          (unsigned long long)seed, steps, k, x[k]);
            else
                cr_assert_eq((int32_t)tag - 1, x[k], "seed %llu step %d row %d: the lane jumped from %d to %d",
                             (unsigned long long)seed, steps, k, (int)tag - 1, x[k]);
            for (int j = 0; j < 3; j++) s.s0[k * 3 + j] = (float)(y[k] + 1);
            for (int j = 0; j < 2; j++) s.s1[k * 2 + j] = (float)(y[k] + 1);
        }
        pairs += l.M;
        steps++;
        lanes_advance(&l, s.ptr, s.widths, 2);
        cr_assert(l.M <= prev_M, "M never grows within a run");
        prev_M = l.M;
        cr_assert(steps <= n_events, "runaway");
    }
    cr_expect_eq(pairs, expect_pairs, "seed %llu: %lld pairs fed, expected %lld", (unsigned long long)seed,
                 (long long)pairs, (long long)expect_pairs);
    for (int i = 0; i < n_sessions; i++)
        for (int64_t e = off[i]; e < off[i + 1]; e++) {
            int want = e + 1 < off[i + 1] ? 1 : 0;  // every event but a session's last is an input once
            cr_expect_eq(seen[e], want, "seed %llu: event %lld of session %d fed %d times", (unsigned long long)seed,
                         (long long)e, i, seen[e]);
        }
    lanes_free(&l);
    free(off);
    free(items);
    free(seen);
    free(starts);
}

Test(lanes, random_streams) {
    for (int t = 0; t < 40; t++) random_stream(1000 + (uint64_t)t, 1 + t * 3, 1 + t % MAXB);
}

// lanes_pairs_total counts the pairs left from the current positions on (lanes.h).
Test(lanes, pairs_total_counts_from_current_positions) {
    lanes l;
    lanes_init(&l, OFF_A, ITEMS_A, 4, 2);
    lanes_restart(&l);
    states s;
    states_init(&s);
    cr_expect_eq(lanes_pairs_total(&l), 6);
    lanes_advance(&l, s.ptr, s.widths, 2);  // 2 pairs fed
    cr_expect_eq(lanes_pairs_total(&l), 4, "after one step of two lanes, 4 pairs are left, got %lld",
                 (long long)lanes_pairs_total(&l));
    lanes_free(&l);
}
