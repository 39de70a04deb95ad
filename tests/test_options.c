// Unit tests of the shared option parser (src/util/options.h), the strict number parsing
// and the shortest float printing (src/util/numbers.h), and of the configuration's use of
// them (src/cmd/config.h): both spellings, strict numbers, unknown options, flags given a
// value, values starting with '-', and floats that print as given and read back exactly.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/config.h"
#include "util/numbers.h"
#include "util/options.h"

// ---- a small command, parsed as the real ones are ----

typedef struct {
    const char *data, *positional;
    int64_t epochs, eval_every;
    double timeout;
    float lr;
    uint64_t seed;
    int json, k;
} toy;

static void toy_parse(toy *t, int argc, char **argv) {
    *t = (toy){.epochs = 10, .eval_every = 0, .timeout = 300, .lr = 0.05f, .seed = 42, .k = 20};
    opt_parser op;
    for (opt_begin(&op, "toy", argc, argv); opt_next(&op);) {
        if (opt_is(&op, "--data")) t->data = opt_str(&op);
        else if (opt_is(&op, "--epochs")) t->epochs = opt_int(&op, 0, 1000000);
        else if (opt_is(&op, "--eval-every")) t->eval_every = opt_int(&op, -1, 1000000);
        else if (opt_is(&op, "--comm-timeout")) t->timeout = opt_num_above(&op, 0, 1e9);
        else if (opt_is(&op, "--learning-rate")) t->lr = opt_float(&op, 1e-12, 1e30);
        else if (opt_is(&op, "--seed")) t->seed = opt_u64(&op, 0, UINT64_MAX);
        else if (opt_is(&op, "-k") || opt_is(&op, "--k")) t->k = (int)opt_int(&op, 1, 1000);
        else if (opt_is(&op, "--json")) t->json = 1;
        else if (opt_positional(&op) && !t->positional) t->positional = op.arg;
        else opt_unknown(&op);
    }
}

// ARGS: NULL-terminated, without the program name.
static int make_argv(char **argv, va_list ap) {
    int n = 0;
    argv[n++] = "toy";
    for (const char *a; (a = va_arg(ap, const char *));) argv[n++] = (char *)a;
    argv[n] = NULL;
    return n;
}

static void parse(toy *t, ...) {
    static char *argv[64];
    va_list ap;
    va_start(ap, t);
    int argc = make_argv(argv, ap);
    va_end(ap);
    toy_parse(t, argc, argv);
}

// Parses in a child with stderr captured: it must exit 2 with one line holding WANT.
static void expect_usage_error(const char *want, ...) {
    static char *argv[64];
    va_list ap;
    va_start(ap, want);
    int argc = make_argv(argv, ap);
    va_end(ap);
    char path[] = "/tmp/grurec-options-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        toy t;
        toy_parse(&t, argc, argv);
        _exit(0);  // parsed: the test fails below
    }
    int status;
    waitpid(pid, &status, 0);
    char msg[512] = {0};
    ssize_t n = pread(fd, msg, sizeof msg - 1, 0);
    close(fd);
    unlink(path);
    cr_assert(n >= 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "expected exit 2 for '%s', got status %d: %s", want,
              status, msg);
    // One line from grurec (a leak checker may add its own lines after it, in a forked child).
    char *nl = strchr(msg, '\n');
    cr_assert(nl && !strstr(nl, "grurec"), "expected one line, got: %s", msg);
    *nl = '\0';
    cr_assert(strstr(msg, want), "expected '%s' in: %s", want, msg);
    cr_assert(strstr(msg, "(see grurec toy --help)"), "expected the command's --help in: %s", msg);
}

Test(options, both_spellings_give_the_same_values) {
    toy a, b;
    parse(&a, "--data", "ds", "--epochs", "3", "--learning-rate", "0.1", "--seed", "7", "--comm-timeout", "2.5", "-k",
          "5", "--json", NULL);
    parse(&b, "--data=ds", "--epochs=3", "--learning-rate=0.1", "--seed=7", "--comm-timeout=2.5", "--k=5", "--json",
          NULL);
    for (toy *t = &a; t; t = t == &a ? &b : NULL) {
        cr_assert_str_eq(t->data, "ds");
        cr_assert_eq(t->epochs, 3);
        cr_assert_eq(t->lr, 0.1f);
        cr_assert_eq(t->seed, 7);
        cr_assert_eq(t->timeout, 2.5);
        cr_assert_eq(t->k, 5);
        cr_assert_eq(t->json, 1);
        cr_assert_null(t->positional);
    }
}

Test(options, defaults_stay_when_not_given) {
    toy t;
    parse(&t, NULL);
    cr_assert_eq(t.epochs, 10);
    cr_assert_eq(t.lr, 0.05f);
    cr_assert_null(t.data);
}

Test(options, a_value_may_start_with_a_dash) {
    toy t;
    parse(&t, "--eval-every", "-1", "--data", "-", NULL);  // a negative number; "-" (stdin)
    cr_assert_eq(t.eval_every, -1);
    cr_assert_str_eq(t.data, "-");
    parse(&t, "--eval-every=-1", "--data=--odd-name", NULL);  // '=' takes any text
    cr_assert_eq(t.eval_every, -1);
    cr_assert_str_eq(t.data, "--odd-name");
}

Test(options, text_after_equals_keeps_further_equals) {
    toy t;
    parse(&t, "--data=a=b", NULL);
    cr_assert_str_eq(t.data, "a=b");
}

Test(options, positionals_and_double_dash) {
    toy t;
    parse(&t, "run", "--json", NULL);
    cr_assert_str_eq(t.positional, "run");
    cr_assert_eq(t.json, 1);
    parse(&t, "--", "--json", NULL);  // after "--" everything is positional
    cr_assert_str_eq(t.positional, "--json");
    cr_assert_eq(t.json, 0);
}

Test(options, strict_numbers_are_refused_with_the_option_named) {
    expect_usage_error("--epochs takes a whole number from 0 to 1000000, not '5x'", "--epochs", "5x", NULL);
    expect_usage_error("--epochs takes a whole number from 0 to 1000000, not '5x'", "--epochs=5x", NULL);
    expect_usage_error("--epochs takes a whole number from 0 to 1000000, not ''", "--epochs=", NULL);
    expect_usage_error("--epochs takes a whole number from 0 to 1000000, not ''", "--epochs", "", NULL);
    expect_usage_error("not ' 5'", "--epochs", " 5", NULL);
    expect_usage_error("not '5 '", "--epochs", "5 ", NULL);
    expect_usage_error("not '1.5'", "--epochs", "1.5", NULL);
    expect_usage_error("not '0x10'", "--epochs", "0x10", NULL);
    expect_usage_error("not '1000001'", "--epochs", "1000001", NULL);  // out of range
    expect_usage_error("not '99999999999999999999'", "--epochs", "99999999999999999999", NULL);  // overflow
    expect_usage_error("not '-2'", "--eval-every", "-2", NULL);
    expect_usage_error("--comm-timeout takes a number above 0", "--comm-timeout", "5s", NULL);
    expect_usage_error("--comm-timeout takes a number above 0", "--comm-timeout", "0", NULL);
    expect_usage_error("not 'nan'", "--comm-timeout", "nan", NULL);
    expect_usage_error("not 'inf'", "--comm-timeout", "inf", NULL);
    expect_usage_error("not '1e999'", "--comm-timeout", "1e999", NULL);  // overflows a double
    expect_usage_error("not '1e39'", "--learning-rate", "1e39", NULL);   // overflows a float
    expect_usage_error("--seed takes a whole number from 0 to 18446744073709551615, not '-1'", "--seed", "-1", NULL);
    expect_usage_error("not '18446744073709551616'", "--seed", "18446744073709551616", NULL);
    expect_usage_error("-k takes a whole number from 1 to 1000, not '0'", "-k", "0", NULL);
}

Test(options, unknown_options_are_unknown_with_or_without_a_value) {
    expect_usage_error("unknown option --fast", "--fast", NULL);  // last: not "needs a value"
    expect_usage_error("unknown option --fast", "--fast", "--json", NULL);
    expect_usage_error("unknown option --fast", "--fast=1", NULL);
    expect_usage_error("unknown option --fast", "--data", "ds", "--fast", "1", NULL);
    expect_usage_error("unknown option -x", "-x", NULL);
    expect_usage_error("unexpected argument 'two'", "one", "two", NULL);
}

Test(options, flags_take_no_value) {
    expect_usage_error("--json takes no value, not '--json=1'", "--json=1", NULL);
    expect_usage_error("--json takes no value, not '--json='", "--json=", NULL);
}

Test(options, a_missing_value_is_named) {
    expect_usage_error("--epochs needs a value", "--epochs", NULL);
    expect_usage_error("--data needs a value", "--data", "--json", NULL);  // not "--json" as the data
    expect_usage_error("--data needs a value, not an empty text", "--data=", NULL);
}

// ---- strict numbers ----

Test(numbers, whole_numbers) {
    int64_t x = -7;
    cr_assert(num_parse_i64("0", 0, 10, &x) && x == 0);
    cr_assert(num_parse_i64("-5", -10, 10, &x) && x == -5);
    cr_assert(num_parse_i64("+5", -10, 10, &x) && x == 5);
    cr_assert(num_parse_i64("9223372036854775807", 0, INT64_MAX, &x) && x == INT64_MAX);
    x = -7;
    const char *bad[] = {"", " 1", "1 ", "1x", "x", "0x1", "1e3", "9223372036854775808", "-", "11", "--1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        cr_assert(!num_parse_i64(bad[k], -10, 10, &x), "accepted '%s'", bad[k]);
    cr_assert_eq(x, -7, "wrote its output on failure");
    uint64_t u = 3;
    cr_assert(num_parse_u64("18446744073709551615", 0, UINT64_MAX, &u) && u == UINT64_MAX);
    cr_assert(!num_parse_u64("18446744073709551616", 0, UINT64_MAX, &u));
    cr_assert(!num_parse_u64("-1", 0, UINT64_MAX, &u));  // strtoull would give UINT64_MAX
    cr_assert(!num_parse_u64("+1", 0, UINT64_MAX, &u));
    cr_assert(!num_parse_u64(" 1", 0, UINT64_MAX, &u));
}

Test(numbers, floating_point) {
    double d;
    cr_assert(num_parse_f64("2.5", 0, 10, &d) && d == 2.5);
    cr_assert(num_parse_f64("1e-3", 0, 10, &d) && d == 1e-3);
    cr_assert(num_parse_f64("-0.5", -1, 1, &d) && d == -0.5);
    const char *bad[] = {"", " 1", "1 ", "1s", "nan", "inf", "-inf", "1e999", "11", "."};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        cr_assert(!num_parse_f64(bad[k], -10, 10, &d), "accepted '%s'", bad[k]);
    float f;
    cr_assert(num_parse_f32("0.1", 0, 1, &f) && f == 0.1f);
    cr_assert(!num_parse_f32("1e39", 0, 1e300, &f), "a float overflow is refused");
    cr_assert(num_parse_f32("1e30", 0, 1e30, &f) && f == 1e30f, "the bound itself, rounded to a float, is in range");
    cr_assert(num_parse_f32("0.99", 0, 0.99, &f) && f == 0.99f);
    cr_assert(!num_parse_f32("0.991", 0, 0.99, &f));
}

// ---- shortest float printing ----

static void expect_str(float x, const char *want) {
    char buf[FLOAT_STR_SIZE];
    cr_assert_str_eq(float_str(x, buf), want, "float_str(%.9g)", (double)x);
}

Test(float_str, prints_what_the_user_wrote) {
    expect_str(0.1f, "0.1");
    expect_str(0.05f, "0.05");
    expect_str(0.5f, "0.5");
    expect_str(1.0f, "1");
    expect_str(0.0f, "0");
    expect_str(-0.0f, "-0");
    expect_str(1e-7f, "1e-07");
    expect_str(3.4e38f, "3.4e+38");
    expect_str(FLT_MAX, "3.4028235e+38");  // 8 digits: 3.40282347e+38 is one longer
    expect_str(0.9999f, "0.9999");
    expect_str(1e-12f, "1e-12");
    expect_str(1.4e-45f, "1e-45");  // the smallest denormal
    expect_str(16777217.0f, "16777216");  // not a float: it is stored as 2^24
    expect_str(0.3f, "0.3");
    expect_str(-2.5f, "-2.5");
}

// Every float printed reads back to its bits, and no shorter %g text would.
static void check_round_trip(float x) {
    char buf[FLOAT_STR_SIZE], shorter[512];
    float_str(x, buf);
    float back = strtof(buf, NULL);
    cr_assert(memcmp(&back, &x, sizeof x) == 0, "'%s' reads back as %a, not %a", buf, (double)back, (double)x);
    int digits = 0;  // significant digits in BUF
    for (const char *p = buf; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits += digits || *p != '0';
    if (digits > 1) {
        snprintf(shorter, sizeof shorter, "%.*g", digits - 1, (double)x);
        float s = strtof(shorter, NULL);
        cr_assert(memcmp(&s, &x, sizeof x) != 0, "'%s' is shorter than '%s' and reads back too", shorter, buf);
    }
    cr_assert(digits <= 9, "'%s' has more than 9 digits", buf);
}

Test(float_str, round_trips_over_many_floats) {
    const float special[] = {0.1f, 1e-7f, 3.4e38f, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1.4e-45f, -1.4e-45f,
                             FLT_MIN / 3, 0.0f, -0.0f, 1.0f / 3, 2.0f / 3, 1e30f, 1e-30f, 123456789.0f};
    for (size_t k = 0; k < sizeof special / sizeof *special; k++) check_round_trip(special[k]);
    // Bit patterns across the whole range (denormals, normals, both signs): a prime stride.
    for (uint64_t bits = 0; bits < (UINT64_C(1) << 32); bits += 65521) {
        uint32_t b = (uint32_t)bits;
        float x;
        memcpy(&x, &b, sizeof x);
        if (isfinite(x)) check_round_trip(x);
    }
    for (uint32_t b = 1; b < 5000; b++) {  // the smallest denormals, one by one
        float x;
        memcpy(&x, &b, sizeof x);
        check_round_trip(x);
    }
}

// ---- the configuration prints its floats as given and reads them back exactly ----

Test(config, json_holds_the_shortest_floats_and_reads_back) {
    train_config c, back;
    config_defaults(&c);
    config_set(&c, "learning-rate", "0.1", NULL);
    config_set(&c, "momentum", "0.1", "test");
    config_set(&c, "dropout-hidden", "0.3", NULL);
    config_set(&c, "final-act", "elu-0.1", NULL);
    config_set(&c, "log-every", "0.7", NULL);
    char *json = config_to_json(&c);
    cr_assert(strstr(json, "\"learning-rate\": \"0.1\""), "%s", json);
    cr_assert(strstr(json, "\"momentum\": \"0.1\""), "%s", json);
    cr_assert(strstr(json, "\"dropout-hidden\": \"0.3\""), "%s", json);
    cr_assert(strstr(json, "\"final-act\": \"elu-0.1\""), "%s", json);
    cr_assert(strstr(json, "\"log-every\": \"0.7\""), "%s", json);
    cr_assert(strstr(json, "\"sample-alpha\": \"0.5\""), "%s", json);
    cr_assert(!strstr(json, "00000"), "float noise in %s", json);
    cr_assert(config_from_json(&back, json));
    cr_assert_eq(config_model_hash(&back), config_model_hash(&c));
    cr_assert(back.learning_rate == c.learning_rate && back.momentum == c.momentum &&
              back.dropout_hidden == c.dropout_hidden && back.loss.elu_alpha == c.loss.elu_alpha &&
              back.log_every_s == c.log_every_s);
    free(json);
}

Test(config, the_model_hash_keeps_its_text) {
    // The hash is stored in checkpoints: printing floats shorter must not change it.
    train_config c;
    config_defaults(&c);
    config_set(&c, "learning-rate", "0.1", NULL);
    config_set(&c, "final-act", "elu-0.5", NULL);
    char layers[256];
    config_layers_str(&c, layers, sizeof layers);
    char buf[1024];
    snprintf(buf, sizeof buf, "%d|%s|%d|%d|%s|%s|%d|%.9g|%.9g|%.9g|%d|%.9g|%.9g|%.9g|%.9g|%llu", (int)c.loss.loss,
             "elu-0.5", (int)c.embedding, c.embedding_dim, layers, "v1", c.n_sample, c.sample_alpha, c.loss.bpreg,
             c.loss.logq, c.batch_size, c.dropout_embed, c.dropout_hidden, c.learning_rate, c.momentum,
             (unsigned long long)c.seed);
    uint64_t h = 1469598103934665603ull;
    for (const char *s = buf; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    cr_assert_eq(config_model_hash(&c), h);
}

Test(config, settings_are_known_by_name) {
    cr_assert_str_eq(config_setting_name("batch-size"), "batch-size");
    cr_assert_null(config_setting_name("fast"));
    train_config c;
    config_defaults(&c);
    cr_assert_eq(config_set(&c, "fast", "1", NULL), 0);
    // the flags and the file's lines mark these as chosen (the defaults otherwise)
    cr_assert_eq(c.act_given, 0);
    config_set(&c, "final-act", "tanh", NULL);
    config_set(&c, "eval-every", "2", NULL);
    cr_assert(c.act_given && c.eval_every_given);
}

Test(config, a_bad_flag_value_names_the_flag, .exit_code = 2) {
    train_config c;
    config_defaults(&c);
    config_set(&c, "epochs", "5x", NULL);
}
