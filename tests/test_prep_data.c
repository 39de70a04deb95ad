// grurec-prep on the real data in ../shared/data (GRUREC_SHARED_DATA), checked against
// tests/expected/counts.json: counts computed independently by
// tests/expected/compute_counts.py (pure Python, no shared code). The data is not in
// the repository: without it every test here is skipped, visibly.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "prep_harness.h"

TestSuite(shared_data, .init = th_setup, .fini = th_teardown, .timeout = 60);

static const char *data(const char *rel) { return th_fmt("%s/%s", GRUREC_SHARED_DATA, rel); }

static void need_data(const char *rel) {
    if (access(data(rel), R_OK) != 0)
        TH_SKIP("real data not available: %s is missing (GRUREC_SHARED_DATA=%s)", data(rel), GRUREC_SHARED_DATA);
}

// The expected counts of CASE from counts.json (read at run time).
static int expected_counts(const char *case_name, char ***keys, int64_t **values) {
    const char *path = GRUREC_TESTS_DIR "/expected/counts.json";
    char *json = th_read_file(path, NULL);
    cr_assert_not_null(json, "cannot read %s", path);
    char *obj = th_json_object(json, case_name);
    cr_assert_not_null(obj, "%s has no case '%s'", path, case_name);
    int n = th_json_pairs(obj, keys, values);
    cr_assert_gt(n, 10, "%s: case '%s' has only %d counts", path, case_name, n);
    free(obj);
    free(json);
    return n;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

// Σ (length - 1) over the sessions of every train shard, read from the files.
static int64_t train_pairs(const dataset_meta *m) {
    int64_t pairs = 0;
    for (int k = 0; k < m->split[SPLIT_TRAIN].n_shards; k++) {
        shard_data s;
        shard_read(m, SPLIT_TRAIN, k, &s);
        for (int64_t i = 0; i < s.n_sessions; i++) pairs += s.offsets[i + 1] - s.offsets[i] - 1;
        shard_free(&s);
    }
    return pairs;
}

// Runs grurec-prep with ARGS (NULL-terminated, --out added) and compares every count of
// CASE: summary keys against the `summary` attribute, <split>_t_min / _t_max against
// the meta.h5 attributes, train_pairs against the shards.
static void check_case(const char *case_name, const char *const *args) {
    const char *argv[64];
    int n = 0;
    for (; args[n]; n++) argv[n] = args[n];
    argv[n++] = "--out";
    argv[n++] = th_path("out");
    argv[n++] = "--quiet";
    argv[n] = NULL;
    th_result r;
    th_run(GRUREC_PREP_BIN, argv, &r);
    cr_assert_eq(r.status, 0, "%s: grurec-prep exited %d: %s", case_name, r.status, r.err);
    th_result_free(&r);

    dataset_meta m;
    dataset_open(th_path("out"), &m);
    const char *meta = th_path("out/meta.h5");
    char **keys;
    int64_t *want;
    int nk = expected_counts(case_name, &keys, &want);
    int compared = 0;
    for (int i = 0; i < nk; i++) {
        const char *k = keys[i];
        int64_t got;
        if (strcmp(k, "split_t_max") == 0 || strcmp(k, "split_cut") == 0) {
            // The time split's own t_max and boundary are not stored by grurec-prep.
            cr_log_info("%s: %s = %lld (not stored by grurec-prep)", case_name, k, (long long)want[i]);
            continue;
        } else if (th_json_i64(m.summary, k, &got)) {
            cr_assert_eq(got, want[i], "%s: summary %s = %lld, counts.json says %lld", case_name, k, (long long)got,
                         (long long)want[i]);
        } else if (strcmp(k, "train_pairs") == 0) {
            got = train_pairs(&m);
            cr_assert_eq(got, want[i], "%s: train pairs %lld, counts.json says %lld", case_name, (long long)got,
                         (long long)want[i]);
        } else {
            cr_assert(ends_with(k, "_t_min") || ends_with(k, "_t_max"), "%s: counts.json key '%s' is not checked", case_name, k);
            cr_assert(th_has_attr(meta, k), "%s: meta.h5 has no attribute %s", case_name, k);
            got = th_attr_i64(meta, k);
            cr_assert_eq(got, want[i], "%s: meta.h5 %s = %lld, counts.json says %lld", case_name, k, (long long)got,
                         (long long)want[i]);
        }
        compared++;
    }
    cr_log_info("%s: %d of %d counts compared", case_name, compared, nk);
    cr_assert_geq(compared, 18);

    // The meta attributes agree with the summary.
    const int sps[2] = {SPLIT_TRAIN, SPLIT_TEST};
    for (int q = 0; q < 2; q++) {
        const char *sp = split_names[sps[q]];
        cr_assert_eq(th_attr_i64(meta, th_fmt("%s_n_sessions", sp)), th_summary(&m, th_fmt("%s_sessions", sp)), "%s", sp);
        cr_assert_eq(th_attr_i64(meta, th_fmt("%s_n_events", sp)), th_summary(&m, th_fmt("%s_events", sp)), "%s", sp);
    }
    cr_assert_eq(th_attr_i64(meta, "test_n_dropped_unknown_items"), th_summary(&m, "test_unknown_item_events"));
    cr_assert_eq(m.n_items, th_summary(&m, "train_items"));
    th_pairs_free(keys, want, nk);
    dataset_close(&m);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(shared_data, digi_published) {
    need_data("diginetica/train.tsv.gz");
    check_case("digi_published",
               ARGS("--format", "gru4rec", "--input", data("diginetica/train.tsv.gz"), "--test-input",
                    data("diginetica/test.tsv.gz"), "--keep-repeats", "--min-item-support", "1", "--shards", "4"));
}

Test(shared_data, digi_defaults) {
    need_data("diginetica/train.tsv.gz");
    check_case("digi_defaults", ARGS("--format", "gru4rec", "--input", data("diginetica/train.tsv.gz"), "--test-input",
                                     data("diginetica/test.tsv.gz"), "--shards", "4"));
}

Test(shared_data, raw_diginetica_7d) {
    need_data("raw/diginetica-sample.csv");
    check_case("raw_diginetica_7d",
               ARGS("--format", "diginetica", "--input", data("raw/diginetica-sample.csv"), "--test-days", "7"));
}

Test(shared_data, raw_retailrocket_7d) {
    need_data("raw/retailrocket-sample.tsv");
    check_case("raw_retailrocket_7d",
               ARGS("--format", "csv", "--delimiter", "tab", "--session-col", "session_id", "--item-col", "item_id",
                    "--time-col", "timestamp", "--time-format", "unix", "--input", data("raw/retailrocket-sample.tsv"),
                    "--test-days", "7"));
}

Test(shared_data, raw_retailrocket_7d_keep1) {
    need_data("raw/retailrocket-sample.tsv");
    check_case("raw_retailrocket_7d_keep1",
               ARGS("--format", "csv", "--delimiter", "tab", "--session-col", "session_id", "--item-col", "item_id",
                    "--time-col", "timestamp", "--time-format", "unix", "--input", data("raw/retailrocket-sample.tsv"),
                    "--test-days", "7", "--keep-repeats", "--min-item-support", "1"));
}

// --since / --until as ISO dates on a log in ms (diginetica: date + offset).
Test(shared_data, raw_diginetica_window) {
    need_data("raw/diginetica-sample.csv");
    check_case("raw_diginetica_window", ARGS("--format", "diginetica", "--input", data("raw/diginetica-sample.csv"),
                                             "--since", "2016-03-01", "--until", "2016-05-15", "--test-days", "7"));
}

// ... and as unix seconds, the log's own form.
Test(shared_data, raw_retailrocket_window) {
    need_data("raw/retailrocket-sample.tsv");
    check_case("raw_retailrocket_window",
               ARGS("--format", "csv", "--delimiter", "tab", "--session-col", "session_id", "--item-col", "item_id",
                    "--time-col", "timestamp", "--time-format", "unix", "--input", data("raw/retailrocket-sample.tsv"),
                    "--since", "1438000000", "--until", "1442000000", "--test-days", "3", "--min-item-support", "2"));
}

// The published split: 43,097 items, and the four shards of each split add up to it.
Test(shared_data, digi_published_shards_sum_to_the_totals) {
    need_data("diginetica/train.tsv.gz");
    th_result r;
    th_prep(&r, "--format", "gru4rec", "--input", data("diginetica/train.tsv.gz"), "--test-input",
            data("diginetica/test.tsv.gz"), "--keep-repeats", "--min-item-support", "1", "--shards", "4", "--out",
            th_path("out"), "--quiet", NULL);
    cr_assert_eq(r.status, 0, "grurec-prep exited %d: %s", r.status, r.err);
    th_result_free(&r);
    dataset_meta m;
    dataset_open(th_path("out"), &m);
    cr_assert_eq(m.n_items, 43097);
    // The published split from DESIGN / data README: 186,670 / 906,140 train, 15,963 / 76,821 test.
    const int64_t want_sessions[N_SPLITS] = {186670, 0, 15963}, want_events[N_SPLITS] = {906140, 0, 76821};
    const int sps[2] = {SPLIT_TRAIN, SPLIT_TEST};
    for (int q = 0; q < 2; q++) {
        int sp = sps[q];
        cr_assert_eq(m.split[sp].n_shards, 4);
        int64_t sessions = 0, events = 0, lo = INT64_MAX, hi = 0, longest = 0;
        int64_t t_min = INT64_MAX, t_max = INT64_MIN;
        for (int k = 0; k < 4; k++) {
            shard_data s;
            shard_read(&m, sp, k, &s);
            const char *file = th_shard_path(th_path("out"), sp, k, 4);
            cr_assert_eq(th_attr_i64(file, "n_sessions"), s.n_sessions);
            cr_assert_eq(th_attr_i64(file, "n_events"), s.n_events);
            sessions += s.n_sessions;
            events += s.n_events;
            if (s.n_events < lo) lo = s.n_events;
            if (s.n_events > hi) hi = s.n_events;
            if (s.t_min < t_min) t_min = s.t_min;
            if (s.t_max > t_max) t_max = s.t_max;
            for (int64_t i = 0; i < s.n_sessions; i++)
                if (s.offsets[i + 1] - s.offsets[i] > longest) longest = s.offsets[i + 1] - s.offsets[i];
            shard_free(&s);
        }
        cr_assert_eq(sessions, m.split[sp].n_sessions, "%s", split_names[sp]);
        cr_assert_eq(events, m.split[sp].n_events, "%s", split_names[sp]);
        cr_assert_eq(sessions, want_sessions[sp], "%s sessions", split_names[sp]);
        cr_assert_eq(events, want_events[sp], "%s events", split_names[sp]);
        cr_assert_eq(t_min, m.split[sp].t_min);
        cr_assert_eq(t_max, m.split[sp].t_max);
        cr_assert_leq(hi - lo, longest, "%s shards %lld..%lld events, longest session %lld", split_names[sp],
                      (long long)lo, (long long)hi, (long long)longest);
    }
    // Every train item has support >= 1 and the supports add up to the train events.
    int64_t support = 0;
    for (int64_t i = 0; i < m.n_items; i++) {
        cr_assert_geq(m.item_support[i], 1, "item %lld", (long long)i);
        support += m.item_support[i];
    }
    cr_assert_eq(support, 906140);
    dataset_close(&m);
}
