// Unit tests of the steps of DESIGN §2 after parsing, in memory: grouping events into
// sessions (clicklog.h), repeat removal, the iterated filters, the time split, dropping
// items unknown to training, the item map and dealing sessions into shards (pipeline.h).
//
// Sessions are compared as text: "KEY: item@time item@time ..." ("KEY#PART: ..." when
// sessions were cut from users by a time gap), or "KEY: -" for a removed session.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clicklog.h"
#include "pipeline.h"

typedef struct {
    idmap items;
    clicklog log;
    sessions s;
    int grouped;
} world;

static void w_init(world *w) {
    memset(w, 0, sizeof *w);
    idmap_init(&w->items);
    clicklog_init(&w->log, &w->items);
}

// One parsed event: session (or user) KEY clicked ITEM at time T.
static void ev(world *w, const char *key, const char *item, int64_t t) {
    int32_t k = idmap_intern(&w->log.keys, key, strlen(key));
    int32_t i = idmap_intern(&w->items, item, strlen(item));
    clicklog_push(&w->log, k, i, t);
}

static void w_group(world *w, int64_t gap) {
    group_sessions(&w->log, gap, &w->s);
    w->grouped = 1;
}

static void w_free(world *w) {
    if (w->grouped) sessions_free(&w->s);
    else {
        free(w->log.key);
        free(w->log.item);
        free(w->log.time);
        idmap_free(&w->log.keys);
    }
    idmap_free(&w->items);
}

static int32_t item_id(world *w, const char *item) { return idmap_find(&w->items, item, strlen(item)); }

// Session I as text (a static buffer: use it before the next call).
static const char *sess(const world *w, int64_t i) {
    static char buf[4][4096];
    static int which;
    char *b = buf[which++ % 4];
    const sessions *s = &w->s;
    cr_assert_lt(i, s->n_sessions, "session %lld of %lld", (long long)i, (long long)s->n_sessions);
    int n = snprintf(b, 4096, "%s", idmap_str(&s->keys, s->key[i]));
    if (s->part) n += snprintf(b + n, 4096 - (size_t)n, "#%d", s->part[i]);
    n += snprintf(b + n, 4096 - (size_t)n, ":");
    if (s->len[i] == 0) snprintf(b + n, 4096 - (size_t)n, " -");
    for (int32_t j = 0; j < s->len[i] && n < 4000; j++) {
        int64_t e = s->start[i] + j;
        n += snprintf(b + n, 4096 - (size_t)n, " %s@%lld", idmap_str(&w->items, s->item[e]), (long long)s->time[e]);
    }
    return b;
}

#define ASSERT_SESS(w, i, want) cr_assert_str_eq(sess(w, i), want, "session %d", (int)(i))

static int64_t live(const sessions *s) {
    int64_t n = 0;
    for (int64_t i = 0; i < s->n_sessions; i++) n += s->len[i] > 0;
    return n;
}

// ---- grouping (rule 1) ----

Test(group_sessions, non_contiguous_sessions_keep_input_order_and_sort_by_first_time) {
    world w;
    w_init(&w);
    ev(&w, "s2", "a", 10);
    ev(&w, "s1", "b", 5);
    ev(&w, "s2", "c", 20);
    ev(&w, "s1", "d", 30);
    ev(&w, "s3", "e", 5);
    ev(&w, "s2", "f", 15);  // out of time order within s2
    w_group(&w, 0);
    cr_assert_eq(w.s.n_sessions, 3);
    cr_assert_eq(sessions_events(&w.s), 6);
    cr_assert_null(w.s.part, "no parts without a gap");
    // s1 and s3 both start at 5: s1 appeared first in the input. s2 starts at 10.
    ASSERT_SESS(&w, 0, "s1: b@5 d@30");
    ASSERT_SESS(&w, 1, "s3: e@5");
    ASSERT_SESS(&w, 2, "s2: a@10 f@15 c@20");
    w_free(&w);
}

// The parser gives each run of a session id its own id (idmap_append); grouping merges
// the runs of one session, which keeps the id of its first run.
static void ev_run(world *w, const char *key, const char *item, int64_t t) {
    int32_t k = w->log.n > 0 && strcmp(idmap_str(&w->log.keys, w->log.key[w->log.n - 1]), key) == 0
                    ? w->log.key[w->log.n - 1]
                    : idmap_append(&w->log.keys, key, strlen(key));
    int32_t i = idmap_intern(&w->items, item, strlen(item));
    clicklog_push(&w->log, k, i, t);
}

Test(group_sessions, runs_of_one_session_id_are_merged) {
    world w;
    w_init(&w);
    ev_run(&w, "s2", "a", 10);
    ev_run(&w, "s2", "c", 20);
    ev_run(&w, "s1", "b", 5);
    ev_run(&w, "s2", "f", 15);  // s2 again: a second run
    ev_run(&w, "s3", "e", 5);
    ev_run(&w, "s1", "d", 30);  // s1 again
    ev_run(&w, "s2", "g", 25);  // s2, a third run
    cr_assert_eq(w.log.keys.count, 6, "one id per run before grouping: s2 s1 s2 s3 s1 s2");
    w_group(&w, 0);
    cr_assert_eq(w.s.n_sessions, 3);
    cr_assert_eq(w.s.keys.count, 3);
    ASSERT_SESS(&w, 0, "s1: b@5 d@30");
    ASSERT_SESS(&w, 1, "s3: e@5");
    ASSERT_SESS(&w, 2, "s2: a@10 f@15 c@20 g@25");
    w_free(&w);
}

Test(group_sessions, runs_of_one_user_are_merged_before_cutting) {
    world w;
    w_init(&w);
    ev_run(&w, "u", "a", 0);
    ev_run(&w, "v", "x", 10);
    ev_run(&w, "u", "b", 50);    // u's second run: same session as a@0
    ev_run(&w, "v", "y", 500);   // v: gap 490 > 100, cut
    ev_run(&w, "u", "c", 1000);  // u: gap 950, cut
    w_group(&w, 100);
    cr_assert_eq(w.s.n_sessions, 4);
    ASSERT_SESS(&w, 0, "u#1: a@0 b@50");
    ASSERT_SESS(&w, 1, "v#1: x@10");
    ASSERT_SESS(&w, 2, "v#2: y@500");
    ASSERT_SESS(&w, 3, "u#2: c@1000");
    w_free(&w);
}

Test(group_sessions, contiguous_input_is_reordered_by_start) {
    world w;
    w_init(&w);
    ev(&w, "x", "a", 100);
    ev(&w, "x", "b", 101);
    ev(&w, "y", "c", 50);
    ev(&w, "y", "d", 60);
    ev(&w, "z", "e", 70);
    w_group(&w, 0);
    cr_assert_eq(w.s.n_sessions, 3);
    ASSERT_SESS(&w, 0, "y: c@50 d@60");
    ASSERT_SESS(&w, 1, "z: e@70");
    ASSERT_SESS(&w, 2, "x: a@100 b@101");
    // The events of each session are contiguous in the store, in session order.
    cr_assert_eq(w.s.start[0], 0);
    cr_assert_eq(w.s.start[1], 2);
    cr_assert_eq(w.s.start[2], 3);
    w_free(&w);
}

Test(group_sessions, equal_start_times_keep_first_appearance_order) {
    world w;
    w_init(&w);
    ev(&w, "k3", "a", 8);
    ev(&w, "k1", "b", 9);
    ev(&w, "k2", "c", 7);
    ev(&w, "k1", "d", 7);  // k1 now starts at 7 too
    ev(&w, "k3", "e", 7);  // and k3
    w_group(&w, 0);
    ASSERT_SESS(&w, 0, "k3: e@7 a@8");
    ASSERT_SESS(&w, 1, "k1: d@7 b@9");
    ASSERT_SESS(&w, 2, "k2: c@7");
    w_free(&w);
}

Test(group_sessions, equal_times_keep_input_order) {
    world w;
    w_init(&w);
    ev(&w, "s", "x", 5);
    ev(&w, "s", "y", 3);
    ev(&w, "s", "z", 5);
    ev(&w, "s", "w", 3);
    ev(&w, "s", "v", 4);
    w_group(&w, 0);
    ASSERT_SESS(&w, 0, "s: y@3 w@3 v@4 x@5 z@5");
    w_free(&w);
}

Test(group_sessions, long_session_sort_is_stable) {
    // 300 events (past the insertion-sort cut-off) with only 11 distinct times.
    enum { N = 300 };
    world w;
    w_init(&w);
    int64_t t[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        t[i] = (int64_t)((i * 37) % 11);
        snprintf(name, sizeof name, "e%d", i);
        ev(&w, "one", name, t[i]);
    }
    w_group(&w, 0);
    cr_assert_eq(w.s.n_sessions, 1);
    cr_assert_eq(w.s.len[0], N);
    // Reference: times ascending, input index ascending among equal times.
    int k = 0;
    for (int64_t tv = 0; tv < 11; tv++)
        for (int i = 0; i < N; i++) {
            if (t[i] != tv) continue;
            snprintf(name, sizeof name, "e%d", i);
            cr_assert_eq(w.s.time[w.s.start[0] + k], tv, "event %d", k);
            cr_assert_str_eq(idmap_str(&w.items, w.s.item[w.s.start[0] + k]), name, "event %d", k);
            k++;
        }
    cr_assert_eq(k, N);
    w_free(&w);
}

Test(group_sessions, users_are_cut_where_the_gap_is_larger_than_gap) {
    world w;
    w_init(&w);
    // gap = 100: u's steps are 100 (equal: no cut), 101 (cut), 49; v's step is 250 (cut).
    ev(&w, "u", "a", 0);
    ev(&w, "u", "c", 201);
    ev(&w, "v", "x", 150);
    ev(&w, "u", "b", 100);
    ev(&w, "u", "d", 250);
    ev(&w, "v", "y", 400);
    w_group(&w, 100);
    cr_assert_not_null(w.s.part);
    cr_assert_eq(w.s.n_sessions, 4);
    ASSERT_SESS(&w, 0, "u#1: a@0 b@100");
    ASSERT_SESS(&w, 1, "v#1: x@150");
    ASSERT_SESS(&w, 2, "u#2: c@201 d@250");
    ASSERT_SESS(&w, 3, "v#2: y@400");
    cr_assert_eq(sessions_events(&w.s), 6);
    w_free(&w);
}

Test(group_sessions, gap_exactly_equal_never_cuts) {
    world w;
    w_init(&w);
    for (int i = 0; i < 5; i++) ev(&w, "u", "a", 60 * i);
    ev(&w, "u", "b", 60 * 4 + 61);
    w_group(&w, 60);
    cr_assert_eq(w.s.n_sessions, 2);
    ASSERT_SESS(&w, 0, "u#1: a@0 a@60 a@120 a@180 a@240");
    ASSERT_SESS(&w, 1, "u#2: b@301");
    w_free(&w);
}

// ---- repeats (rule 2) ----

Test(drop_repeats, consecutive_repeats_only) {
    world w;
    w_init(&w);
    ev(&w, "s1", "A", 1);
    ev(&w, "s1", "A", 2);
    ev(&w, "s1", "B", 3);
    ev(&w, "s1", "A", 4);
    ev(&w, "s2", "C", 5);
    ev(&w, "s2", "C", 6);
    ev(&w, "s2", "C", 7);
    ev(&w, "s3", "A", 8);
    ev(&w, "s3", "B", 9);
    // Repeats that only become adjacent once the session is sorted by time.
    ev(&w, "s4", "A", 10);
    ev(&w, "s4", "B", 12);
    ev(&w, "s4", "A", 11);
    w_group(&w, 0);
    cr_assert_eq(drop_repeats(&w.s), 4);
    ASSERT_SESS(&w, 0, "s1: A@1 B@3 A@4");  // A A B A -> A B A, the first of a run kept
    ASSERT_SESS(&w, 1, "s2: C@5");
    ASSERT_SESS(&w, 2, "s3: A@8 B@9");
    ASSERT_SESS(&w, 3, "s4: A@10 B@12");
    cr_assert_eq(sessions_events(&w.s), 8);
    cr_assert_eq(drop_repeats(&w.s), 0, "idempotent");
    w_free(&w);
}

// ---- the iterated filter (rule 3) ----

// A cascade: each pass of the length filter frees an item whose events the support
// filter then removes, which shortens the next session. One pass would stop after
// removing S0 and p; the fixpoint needs four.
//   S0 [p]      S1 [p q]    S2 [q r]    S3 [r x y]    S4 [x y]
// pass 1: S0 short (1 event); p has support 1 -> S1 = [q]
// pass 2: S1 short (1 event); q has support 1 -> S2 = [r]
// pass 3: S2 short (1 event); r has support 1 -> S3 = [x y]
// pass 4: nothing changes.
Test(filter_log, cascade_reaches_the_fixpoint) {
    world w;
    w_init(&w);
    ev(&w, "S0", "p", 0);
    ev(&w, "S1", "p", 10);
    ev(&w, "S1", "q", 11);
    ev(&w, "S2", "q", 20);
    ev(&w, "S2", "r", 21);
    ev(&w, "S3", "r", 30);
    ev(&w, "S3", "x", 31);
    ev(&w, "S3", "y", 32);
    ev(&w, "S4", "x", 40);
    ev(&w, "S4", "y", 41);
    w_group(&w, 0);
    filter_opts o = {.min_session_length = 2, .max_session_length = 0, .min_item_support = 2};
    filter_stats st;
    filter_log(&w.s, w.items.count, &o, &st);
    cr_assert_eq(st.iterations, 4);
    cr_assert_eq(st.short_sessions, 3);
    cr_assert_eq(st.short_session_events, 3);
    cr_assert_eq(st.rare_item_events, 3);
    cr_assert_eq(st.long_sessions, 0);
    cr_assert_eq(st.long_session_events, 0);
    ASSERT_SESS(&w, 0, "S0: -");
    ASSERT_SESS(&w, 1, "S1: -");
    ASSERT_SESS(&w, 2, "S2: -");
    ASSERT_SESS(&w, 3, "S3: x@31 y@32");
    ASSERT_SESS(&w, 4, "S4: x@40 y@41");
    for (int i = 0; i < 3; i++) cr_assert_eq(w.s.start[i], -1, "removed session %d is marked", i);
    cr_assert_eq(sessions_events(&w.s), 4);
    cr_assert_eq(live(&w.s), 2);
    // Every event is accounted for: 10 = 4 kept + 3 in short sessions + 3 rare.
    cr_assert_eq(sessions_events(&w.s) + st.short_session_events + st.rare_item_events, 10);
    session_list l = all_sessions(&w.s);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.idx[0], 3);
    cr_assert_eq(l.idx[1], 4);
    session_list_free(&l);
    w_free(&w);
}

Test(filter_log, nothing_to_remove_takes_one_pass) {
    world w;
    w_init(&w);
    ev(&w, "a", "x", 1);
    ev(&w, "a", "y", 2);
    ev(&w, "b", "x", 3);
    ev(&w, "b", "y", 4);
    w_group(&w, 0);
    filter_opts o = {.min_session_length = 2, .min_item_support = 2};
    filter_stats st;
    filter_log(&w.s, w.items.count, &o, &st);
    cr_assert_eq(st.iterations, 1);
    cr_assert_eq(st.short_sessions + st.short_session_events + st.rare_item_events, 0);
    cr_assert_eq(sessions_events(&w.s), 4);
    w_free(&w);
}

Test(filter_log, session_emptied_by_the_item_filter_counts_as_short_with_no_events) {
    world w;
    w_init(&w);
    ev(&w, "S0", "z", 1);  // z has support 1
    ev(&w, "S1", "a", 2);
    ev(&w, "S1", "a", 3);  // a repeat, kept: drop_repeats is not run here
    w_group(&w, 0);
    // Length 1 is allowed, so S0 survives the first length pass; the support pass
    // then empties it, and the second length pass removes it with 0 events.
    filter_opts o = {.min_session_length = 1, .min_item_support = 2};
    filter_stats st;
    filter_log(&w.s, w.items.count, &o, &st);
    cr_assert_eq(st.rare_item_events, 1);
    cr_assert_eq(st.short_sessions, 1);
    cr_assert_eq(st.short_session_events, 0);
    cr_assert_eq(st.iterations, 3);
    ASSERT_SESS(&w, 0, "S0: -");
    cr_assert_eq(w.s.start[0], -1);
    ASSERT_SESS(&w, 1, "S1: a@2 a@3");
    session_list l = all_sessions(&w.s);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.idx[0], 1);
    session_list_free(&l);
    w_free(&w);
}

Test(filter_log, max_session_length_removes_whole_sessions) {
    world w;
    w_init(&w);
    const char *keys[] = {"L1", "L2", "L3", "L4"};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j <= k; j++) ev(&w, keys[k], "a", 10 * k + j);
    w_group(&w, 0);
    filter_opts o = {.min_session_length = 2, .max_session_length = 3, .min_item_support = 1};
    filter_stats st;
    filter_log(&w.s, w.items.count, &o, &st);
    cr_assert_eq(st.short_sessions, 1);
    cr_assert_eq(st.short_session_events, 1);
    cr_assert_eq(st.long_sessions, 1);
    cr_assert_eq(st.long_session_events, 4);
    cr_assert_eq(st.rare_item_events, 0);
    cr_assert_eq(st.iterations, 2);
    cr_assert_eq(live(&w.s), 2);
    ASSERT_SESS(&w, 0, "L1: -");
    ASSERT_SESS(&w, 1, "L2: a@10 a@11");
    ASSERT_SESS(&w, 2, "L3: a@20 a@21 a@22");
    ASSERT_SESS(&w, 3, "L4: -");
    w_free(&w);
}

Test(filter_log, removal_by_length_can_make_an_item_rare) {
    // b has support 2, but one of its events is in a session that is too long.
    world w;
    w_init(&w);
    ev(&w, "long", "a", 0);
    ev(&w, "long", "b", 1);
    ev(&w, "long", "a", 2);
    ev(&w, "long", "a", 3);
    ev(&w, "ok", "b", 4);
    ev(&w, "ok", "c", 5);
    ev(&w, "ok", "c", 6);
    w_group(&w, 0);
    filter_opts o = {.min_session_length = 2, .max_session_length = 3, .min_item_support = 2};
    filter_stats st;
    filter_log(&w.s, w.items.count, &o, &st);
    // pass 1: "long" (4 > 3) removed; b now has support 1 -> ok = [c c]. pass 2: nothing.
    cr_assert_eq(st.long_sessions, 1);
    cr_assert_eq(st.long_session_events, 4);
    cr_assert_eq(st.rare_item_events, 1);
    cr_assert_eq(st.short_sessions, 0);
    cr_assert_eq(st.iterations, 2);
    ASSERT_SESS(&w, 0, "long: -");
    ASSERT_SESS(&w, 1, "ok: c@5 c@6");
    w_free(&w);
}

// ---- the time split (rule 4) ----

Test(split_at, last_event_at_the_boundary_goes_late_and_sessions_are_never_cut) {
    world w;
    w_init(&w);
    ev(&w, "E", "a", 5);
    ev(&w, "E", "b", 35);  // straddles the boundary: all of it goes late
    ev(&w, "A", "a", 10);
    ev(&w, "A", "b", 20);
    ev(&w, "B", "a", 15);
    ev(&w, "B", "b", 30);  // last event == boundary: late
    ev(&w, "C", "a", 25);
    ev(&w, "C", "b", 29);  // one before: early
    ev(&w, "D", "a", 31);
    ev(&w, "D", "b", 40);
    w_group(&w, 0);
    session_list all = all_sessions(&w.s), early, late;
    cr_assert_eq(all.n, 5);
    cr_assert_eq(last_time(&w.s, &all), 40);
    split_at(&w.s, &all, 30, &early, &late);
    cr_assert_eq(early.n, 2);
    cr_assert_eq(late.n, 3);
    const char *want_early[] = {"A: a@10 b@20", "C: a@25 b@29"};
    const char *want_late[] = {"E: a@5 b@35", "B: a@15 b@30", "D: a@31 b@40"};
    for (int k = 0; k < 2; k++) cr_assert_str_eq(sess(&w, early.idx[k]), want_early[k]);
    for (int k = 0; k < 3; k++) cr_assert_str_eq(sess(&w, late.idx[k]), want_late[k]);
    cr_assert_eq(last_time(&w.s, &early), 29);
    session_list_free(&all);
    session_list_free(&early);
    session_list_free(&late);
    w_free(&w);
}

Test(split_at, boundary_past_everything_or_before_everything) {
    world w;
    w_init(&w);
    ev(&w, "A", "a", 1);
    ev(&w, "A", "b", 2);
    ev(&w, "B", "a", 3);
    ev(&w, "B", "b", 4);
    w_group(&w, 0);
    session_list all = all_sessions(&w.s), early, late;
    split_at(&w.s, &all, 5, &early, &late);
    cr_assert_eq(early.n, 2);
    cr_assert_eq(late.n, 0);
    session_list_free(&early);
    session_list_free(&late);
    split_at(&w.s, &all, 2, &early, &late);  // A ends at 2 == boundary
    cr_assert_eq(early.n, 0);
    cr_assert_eq(late.n, 2);
    session_list_free(&early);
    session_list_free(&late);
    session_list_free(&all);
    w_free(&w);
}

// ---- unknown items (rule 5) ----

Test(drop_unknown_items, counts_events_and_short_sessions) {
    world w;
    w_init(&w);
    ev(&w, "T1", "k1", 1);
    ev(&w, "T1", "u1", 2);
    ev(&w, "T1", "k2", 3);  // -> k1 k2
    ev(&w, "T2", "u1", 4);
    ev(&w, "T2", "k1", 5);  // -> k1: too short, 1 event
    ev(&w, "T3", "u1", 6);
    ev(&w, "T3", "u2", 7);  // -> nothing: too short, 0 events
    ev(&w, "T4", "k1", 8);
    ev(&w, "T4", "k2", 9);
    ev(&w, "T4", "k1", 10);  // untouched
    w_group(&w, 0);
    uint8_t known[8] = {0};
    known[item_id(&w, "k1")] = known[item_id(&w, "k2")] = 1;
    session_list l = all_sessions(&w.s);
    unknown_stats st;
    drop_unknown_items(&w.s, &l, known, &st);
    cr_assert_eq(st.unknown_item_events, 4);
    cr_assert_eq(st.short_sessions, 2);
    cr_assert_eq(st.short_session_events, 1);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(sess(&w, l.idx[0]), "T1: k1@1 k2@3");
    cr_assert_str_eq(sess(&w, l.idx[1]), "T4: k1@8 k2@9 k1@10");
    cr_assert_eq(w.s.len[1], 0, "T2 emptied");
    cr_assert_eq(w.s.len[2], 0, "T3 emptied");
    session_list_free(&l);
    w_free(&w);
}

// ---- the item map ----

Test(build_item_map, dense_ids_by_first_appearance_in_train_order) {
    world w;
    w_init(&w);
    // Raw ids come in another order: u, d, c, b, a.
    ev(&w, "late", "u", 100);
    ev(&w, "late", "d", 101);
    ev(&w, "s2", "c", 20);
    ev(&w, "s2", "b", 21);
    ev(&w, "s1", "b", 10);
    ev(&w, "s1", "a", 11);
    ev(&w, "s3", "a", 30);
    ev(&w, "s3", "b", 31);
    w_group(&w, 0);
    session_list all = all_sessions(&w.s), train, test;
    split_at(&w.s, &all, 50, &train, &test);  // "late" is not train
    cr_assert_eq(train.n, 3);
    int32_t dense[8];
    int64_t *support;
    int32_t n = build_item_map(&w.s, &train, w.items.count, dense, &support);
    cr_assert_eq(n, 3);
    // Train in time order: s1 [b a], s2 [c b], s3 [a b].
    cr_assert_eq(dense[item_id(&w, "b")], 0);
    cr_assert_eq(dense[item_id(&w, "a")], 1);
    cr_assert_eq(dense[item_id(&w, "c")], 2);
    cr_assert_eq(dense[item_id(&w, "u")], -1);
    cr_assert_eq(dense[item_id(&w, "d")], -1);
    cr_assert_eq(support[0], 3, "b: 3 train events");
    cr_assert_eq(support[1], 2, "a");
    cr_assert_eq(support[2], 1, "c");
    free(support);
    session_list_free(&all);
    session_list_free(&train);
    session_list_free(&test);
    w_free(&w);
}

// ---- shards (rule 6) ----

// Sessions with the given lengths, in list order (only len and the list matter here).
static void fake_sessions(sessions *s, session_list *l, const int32_t *lens, int64_t n) {
    memset(s, 0, sizeof *s);
    s->n_sessions = n;
    s->len = malloc((size_t)n * sizeof *s->len);
    s->start = calloc((size_t)n, sizeof *s->start);
    memcpy(s->len, lens, (size_t)n * sizeof *lens);
    l->n = n;
    l->idx = malloc((size_t)n * sizeof *l->idx);
    for (int64_t k = 0; k < n; k++) l->idx[k] = k;
}

Test(deal_shards, fewest_events_first_lowest_index_on_ties) {
    sessions s;
    session_list l;
    const int32_t lens[] = {5, 1, 1, 1, 1, 1, 3};
    fake_sessions(&s, &l, lens, 7);
    int32_t shard_of[7];
    int64_t ev[2];
    deal_shards(&s, &l, 2, shard_of, ev);
    // 5 -> 0 (tie 0/0); four 1s -> 1; the fifth 1 -> 1 (1 had 4 < 5); 3 -> 0 (tie 5/5).
    const int32_t want[] = {0, 1, 1, 1, 1, 1, 0};
    for (int k = 0; k < 7; k++) cr_assert_eq(shard_of[k], want[k], "session %d", k);
    cr_assert_eq(ev[0], 8);
    cr_assert_eq(ev[1], 5);
    free(s.len);
    free(s.start);
    session_list_free(&l);
}

Test(deal_shards, equal_lengths_go_round_robin) {
    sessions s;
    session_list l;
    const int32_t lens[] = {2, 2, 2, 2, 2, 2, 2};
    fake_sessions(&s, &l, lens, 7);
    int32_t shard_of[7];
    int64_t ev[3];
    deal_shards(&s, &l, 3, shard_of, ev);
    for (int k = 0; k < 7; k++) cr_assert_eq(shard_of[k], k % 3, "session %d", k);
    cr_assert_eq(ev[0], 6);
    cr_assert_eq(ev[1], 4);
    cr_assert_eq(ev[2], 4);
    free(s.len);
    free(s.start);
    session_list_free(&l);
}

Test(deal_shards, more_shards_than_sessions_leaves_empty_shards) {
    sessions s;
    session_list l;
    const int32_t lens[] = {3, 4};
    fake_sessions(&s, &l, lens, 2);
    int32_t shard_of[2];
    int64_t ev[4];
    deal_shards(&s, &l, 4, shard_of, ev);
    cr_assert_eq(shard_of[0], 0);
    cr_assert_eq(shard_of[1], 1);
    cr_assert_eq(ev[0], 3);
    cr_assert_eq(ev[1], 4);
    cr_assert_eq(ev[2], 0);
    cr_assert_eq(ev[3], 0);
    free(s.len);
    free(s.start);
    session_list_free(&l);
}

static uint64_t rng_next(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

Test(deal_shards, balanced_within_one_session_and_time_ordered_per_shard) {
    // 2000 sessions of 1..60 events with random start times, grouped for real.
    enum { N = 2000, P = 7 };
    world w;
    w_init(&w);
    uint64_t x = 12345;
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "s%d", i);
        int len = 1 + (int)(rng_next(&x) % 60);
        int64_t t0 = (int64_t)(rng_next(&x) % 100000);
        for (int j = 0; j < len; j++) ev(&w, key, j % 2 ? "a" : "b", t0 + j);
    }
    w_group(&w, 0);
    session_list l = all_sessions(&w.s);
    cr_assert_eq(l.n, N);
    int32_t *shard_of = malloc(N * sizeof *shard_of);
    int64_t ev_count[P];
    deal_shards(&w.s, &l, P, shard_of, ev_count);
    // Reference greedy: fewest events so far, lowest index on ties.
    int64_t ref[P] = {0}, total = 0;
    int32_t max_len = 0;
    for (int64_t k = 0; k < l.n; k++) {
        int best = 0;
        for (int p = 1; p < P; p++)
            if (ref[p] < ref[best]) best = p;
        cr_assert_eq(shard_of[k], best, "session %lld", (long long)k);
        int32_t len = w.s.len[l.idx[k]];
        ref[best] += len;
        total += len;
        if (len > max_len) max_len = len;
    }
    int64_t lo = INT64_MAX, hi = 0, sum = 0;
    for (int p = 0; p < P; p++) {
        cr_assert_eq(ev_count[p], ref[p], "shard %d", p);
        sum += ev_count[p];
        if (ev_count[p] < lo) lo = ev_count[p];
        if (ev_count[p] > hi) hi = ev_count[p];
    }
    cr_assert_eq(sum, total);
    cr_assert_leq(hi - lo, max_len, "shards differ by %lld events, longest session %d", (long long)(hi - lo), max_len);
    // Each shard, read in list order, is in order of first event time.
    for (int p = 0; p < P; p++) {
        int64_t prev = INT64_MIN;
        for (int64_t k = 0; k < l.n; k++) {
            if (shard_of[k] != p) continue;
            int64_t t = w.s.time[w.s.start[l.idx[k]]];
            cr_assert_geq(t, prev, "shard %d goes back in time at session %lld", p, (long long)k);
            prev = t;
        }
    }
    free(shard_of);
    session_list_free(&l);
    w_free(&w);
}
