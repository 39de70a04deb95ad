// main() of every Criterion test binary (tests/CMakeLists.txt links it in): Criterion's
// own main, except that a run with skipped tests and no failures exits 77, which ctest
// reports as skipped (SKIP_RETURN_CODE), and each skip prints "SKIP: reason [suite/test]"
// on stderr, which tests/run_all.sh lists. (Criterion itself exits 0 and names skips
// only with --verbose: a binary whose every test skipped would read as passed.)
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>

enum { EXIT_SKIPPED = 77 };  // automake's and ctest's usual "skipped" status

static size_t skipped;

ReportHook(POST_TEST)(struct criterion_test_stats *stats) {
    if (stats->test_status != CR_STATUS_SKIPPED) return;
    skipped++;
    fprintf(stderr, "SKIP: %s [%s/%s]\n", stats->message ? stats->message : "(no reason given)",
            stats->test->category, stats->test->name);
}

int main(int argc, char *argv[]) {
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true)) result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    if (result == 0 && skipped > 0) return EXIT_SKIPPED;
    return result;
}
