// Unit tests of grurec-prep's parsing layer: numbers and times (timeparse.h), field
// splitting (fields.h), the line reader (linereader.h), the id map (idmap.h) and the
// format table (formats.h). Expected times are worked out by hand in the comments.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/check.h"
#include "fields.h"
#include "formats.h"
#include "idmap.h"
#include "linereader.h"
#include "prep_harness.h"
#include "timeparse.h"

#define S(lit) lit, sizeof(lit) - 1  // a string literal as (pointer, length)

// ---- parse_i64 ----

static int64_t i64_ok(const char *s) {
    int64_t v = -777;
    cr_assert_eq(parse_i64(s, strlen(s), &v), 1, "parse_i64('%s') failed", s);
    return v;
}

static void i64_bad(const char *s) {
    int64_t v = -777;
    cr_assert_eq(parse_i64(s, strlen(s), &v), 0, "parse_i64('%s') accepted it as %lld", s, (long long)v);
    cr_assert_eq(v, -777, "parse_i64('%s') wrote its output on failure", s);
}

Test(parse_i64, accepts_sign_and_digits) {
    cr_assert_eq(i64_ok("0"), 0);
    cr_assert_eq(i64_ok("42"), 42);
    cr_assert_eq(i64_ok("-42"), -42);
    cr_assert_eq(i64_ok("+7"), 7);
    cr_assert_eq(i64_ok("007"), 7);
    cr_assert_eq(i64_ok("1442004589000"), INT64_C(1442004589000));
    cr_assert_eq(i64_ok("123456789012345678"), INT64_C(123456789012345678));  // 18 digits
    cr_assert_eq(i64_ok("-123456789012345678"), INT64_C(-123456789012345678));
}

Test(parse_i64, rejects_garbage_spaces_and_overflow) {
    i64_bad("");
    i64_bad("-");
    i64_bad("+");
    i64_bad("12a");
    i64_bad("a12");
    i64_bad(" 1");
    i64_bad("1 ");
    i64_bad("1.5");
    i64_bad("1e5");
    i64_bad("--1");
    i64_bad("99999999999999999999");  // 20 digits: past int64
}

Test(parse_i64, reads_only_the_given_length) {
    int64_t v = 0;
    cr_assert_eq(parse_i64("12345", 3, &v), 1);
    cr_assert_eq(v, 123);
    cr_assert_eq(parse_i64("12x45", 2, &v), 1);
    cr_assert_eq(v, 12);
}

// ---- parse_decimal ----

static int64_t dec_ok(const char *s, int frac) {
    int64_t v = -777;
    cr_assert_eq(parse_decimal(s, strlen(s), frac, &v), 1, "parse_decimal('%s', %d) failed", s, frac);
    return v;
}

static void dec_bad(const char *s) {
    int64_t v = -777;
    cr_assert_eq(parse_decimal(s, strlen(s), 3, &v), 0, "parse_decimal('%s') accepted it as %lld", s, (long long)v);
    cr_assert_eq(parse_decimal(s, strlen(s), 0, &v), 0, "parse_decimal('%s', 0) accepted it", s);
}

Test(parse_decimal, whole_numbers_scale_by_frac_digits) {
    cr_assert_eq(dec_ok("1396321232", 0), INT64_C(1396321232));
    cr_assert_eq(dec_ok("1396321232", 3), INT64_C(1396321232000));
    cr_assert_eq(dec_ok("0", 3), 0);
    cr_assert_eq(dec_ok("-12", 3), -12000);
}

Test(parse_decimal, fractions_are_scaled_and_truncated) {
    cr_assert_eq(dec_ok("1396321232.5", 0), INT64_C(1396321232));      // fraction dropped
    cr_assert_eq(dec_ok("1396321232.999", 0), INT64_C(1396321232));    // truncated, not rounded
    cr_assert_eq(dec_ok("1396321232.5", 3), INT64_C(1396321232500));   // s -> ms
    cr_assert_eq(dec_ok("1.2345", 3), 1234);                           // 4th digit truncated
    cr_assert_eq(dec_ok("1.2", 3), 1200);
    cr_assert_eq(dec_ok("1.05", 3), 1050);
    cr_assert_eq(dec_ok("0.001", 3), 1);
    cr_assert_eq(dec_ok("0.0009", 3), 0);
}

Test(parse_decimal, negatives_keep_the_sign_on_the_fraction) {
    cr_assert_eq(dec_ok("-1.5", 3), -1500);   // -(1 + 0.5) s
    cr_assert_eq(dec_ok("-0.25", 3), -250);   // whole part -0 still negative
    cr_assert_eq(dec_ok("-1.5", 0), -1);      // toward zero
    cr_assert_eq(dec_ok("+2.5", 3), 2500);
}

Test(parse_decimal, rejects_garbage) {
    dec_bad("");
    dec_bad(".");
    dec_bad(".5");
    dec_bad("1.");
    dec_bad("1.5x");
    dec_bad("1..5");
    dec_bad("1.2.3");
    dec_bad("abc");
    dec_bad("1e5");
    dec_bad(" 1.5");
    dec_bad("1,5");
    dec_bad("-.5");
}

// ---- parse_iso8601_ms / days_from_civil ----

static int64_t iso_ok(const char *s) {
    int64_t v = -777;
    cr_assert_eq(parse_iso8601_ms(s, strlen(s), &v), 1, "parse_iso8601_ms('%s') failed", s);
    return v;
}

static void iso_bad(const char *s) {
    int64_t v = -777;
    cr_assert_eq(parse_iso8601_ms(s, strlen(s), &v), 0, "parse_iso8601_ms('%s') accepted it as %lld", s, (long long)v);
}

// 2014-04-07: 2014-01-01 is day 16071 (44 years * 365 + 11 leap days 1972..2012),
// + 31 (Jan) + 28 (Feb) + 31 (Mar) + 6 = day 16167 -> 16167 * 86400 = 1396828800 s.
// 10:51:09.277 = 39069.277 s later: 1396867869277 ms.
Test(parse_iso8601, yoochoose_form_with_z_and_milliseconds) {
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.277Z"), INT64_C(1396867869277));
    cr_assert_eq(iso_ok("2014-04-07T10:54:46.998Z"), INT64_C(1396868086998));  // + 217.721 s
}

Test(parse_iso8601, no_fraction_no_seconds_and_date_only) {
    cr_assert_eq(iso_ok("2014-04-07T10:51:09Z"), INT64_C(1396867869000));
    cr_assert_eq(iso_ok("2014-04-07T10:51:09"), INT64_C(1396867869000));  // no zone = UTC
    cr_assert_eq(iso_ok("2014-04-07T10:51"), INT64_C(1396867860000));
    cr_assert_eq(iso_ok("2014-04-07"), INT64_C(1396828800000));            // midnight UTC
    cr_assert_eq(iso_ok("1970-01-01T00:00:00.000Z"), 0);
}

Test(parse_iso8601, fraction_digits_past_milliseconds_are_dropped) {
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.5Z"), INT64_C(1396867869500));
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.27Z"), INT64_C(1396867869270));
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.277999Z"), INT64_C(1396867869277));
    cr_assert_eq(iso_ok("2014-04-07T10:51:09,277Z"), INT64_C(1396867869277));  // ISO decimal comma
}

Test(parse_iso8601, space_separator_equals_t) {
    cr_assert_eq(iso_ok("2014-04-07 10:51:09.277"), INT64_C(1396867869277));
    cr_assert_eq(iso_ok("2014-04-07 10:51:09.277Z"), INT64_C(1396867869277));
}

Test(parse_iso8601, offsets_shift_to_utc) {
    // 10:51:09.277 at +02:00 is 08:51:09.277 UTC: 2 h = 7200000 ms earlier.
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.277+02:00"), INT64_C(1396867869277) - 7200000);
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.277+0200"), INT64_C(1396867869277) - 7200000);
    cr_assert_eq(iso_ok("2014-04-07T10:51:09.277+02"), INT64_C(1396867869277) - 7200000);
    // 10:51:09 at -05:30 is 16:21:09 UTC: 5.5 h = 19800000 ms later.
    cr_assert_eq(iso_ok("2014-04-07T10:51:09-0530"), INT64_C(1396867869000) + 19800000);
    cr_assert_eq(iso_ok("2014-04-07T10:51:09-05:30"), INT64_C(1396867869000) + 19800000);
    cr_assert_eq(iso_ok("2014-04-07T00:30+01:00"), INT64_C(1396828800000) - 1800000);  // previous day
}

Test(parse_iso8601, leap_days) {
    // 2016-02-29: 2016-01-01 is day 16801 (46 * 365 + 11), + 31 + 28 = day 16860.
    cr_assert_eq(iso_ok("2016-02-29"), INT64_C(16860) * 86400000);
    cr_assert_eq(iso_ok("2016-02-29T23:59:59.999Z"), INT64_C(16861) * 86400000 - 1);
    cr_assert_eq(iso_ok("2000-02-29"), INT64_C(11016) * 86400000);  // divisible by 400: leap
    iso_bad("2015-02-29");
    iso_bad("1900-02-29");  // divisible by 100, not 400: not leap
    iso_bad("2016-02-30");
}

Test(parse_iso8601, before_1970_is_negative) {
    cr_assert_eq(iso_ok("1969-12-31"), -86400000);
    cr_assert_eq(iso_ok("1969-12-31T23:59:59.500Z"), -500);
}

Test(parse_iso8601, rejects_bad_fields_and_trailing_garbage) {
    iso_bad("");
    iso_bad("2014-13-01");
    iso_bad("2014-00-10");
    iso_bad("2014-04-00");
    iso_bad("2014-04-31");  // April has 30 days
    iso_bad("2014-4-07");
    iso_bad("14-04-07");
    iso_bad("2014/04/07");
    iso_bad("2014-04-07T");
    iso_bad("2014-04-07T24:00");
    iso_bad("2014-04-07T10:60");
    iso_bad("2014-04-07T10:51:61");
    iso_bad("2014-04-07T10:51:09.");
    iso_bad("2014-04-07T10:51:09.277Zjunk");
    iso_bad("2014-04-07T10:51:09.277Z ");
    iso_bad("2014-04-07T10:51:09 ");
    iso_bad("2014-04-07x");
    iso_bad("2014-04-07T10:51:09+24:00");
    iso_bad("2014-04-07T10:51:09+05:60");
    iso_bad("2014-04-07T10:51:09+5");
}

Test(parse_iso8601, reads_only_the_given_length) {
    int64_t v = 0;
    // A field inside a line: the ',' after it is not part of it.
    const char *line = "2014-04-07T10:51:09.277Z,214536502";
    cr_assert_eq(parse_iso8601_ms(line, 24, &v), 1);
    cr_assert_eq(v, INT64_C(1396867869277));
    cr_assert_eq(parse_iso8601_ms(line, 25, &v), 0);
}

Test(days_from_civil, known_dates) {
    cr_assert_eq(days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(days_from_civil(1970, 1, 2), 1);
    cr_assert_eq(days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(days_from_civil(1971, 1, 1), 365);
    cr_assert_eq(days_from_civil(1973, 1, 1), 365 * 3 + 1);  // 1972 was leap
    cr_assert_eq(days_from_civil(2000, 3, 1), 11017);        // 10957 (2000-01-01) + 31 + 29
    cr_assert_eq(days_from_civil(2014, 4, 7), 16167);
    cr_assert_eq(days_from_civil(2016, 2, 29), 16860);
    cr_assert_eq(days_from_civil(2016, 3, 1), 16861);
    cr_assert_eq(days_from_civil(1600, 3, 1), -135080);
    cr_assert_eq(days_from_civil(1, 1, 1), -719162);
}

Test(days_from_civil, consecutive_days_over_400_years) {
    // Walk every day of a full Gregorian cycle: each date is one more than the last.
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t expect = days_from_civil(1900, 1, 1);
    for (int y = 1900; y < 2300; y++)
        for (unsigned m = 1; m <= 12; m++) {
            int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            int n = mdays[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= (unsigned)n; d++, expect++)
                cr_assert_eq(days_from_civil(y, m, d), expect, "%d-%02u-%02u", y, m, d);
        }
    cr_assert_eq(expect - days_from_civil(1900, 1, 1), 146097);  // days per 400 years
}

// ---- split_fields / find_field ----

static void field_is(const fields *f, int i, const char *want) {
    cr_assert_lt(i, f->count);
    cr_assert_eq(f->n[i], strlen(want), "field %d has length %zu, want '%s'", i, f->n[i], want);
    cr_assert(memcmp(f->p[i], want, f->n[i]) == 0, "field %d is '%.*s', want '%s'", i, (int)f->n[i], f->p[i], want);
}

Test(split_fields, tab_comma_and_semicolon) {
    fields f;
    split_fields(S("1\t214536502\t1396867869"), '\t', &f);
    cr_assert_eq(f.count, 3);
    field_is(&f, 0, "1");
    field_is(&f, 1, "214536502");
    field_is(&f, 2, "1396867869");
    split_fields(S("a,b;c"), ',', &f);
    cr_assert_eq(f.count, 2);
    field_is(&f, 1, "b;c");
    split_fields(S("a,b;c"), ';', &f);
    cr_assert_eq(f.count, 2);
    field_is(&f, 0, "a,b");
}

Test(split_fields, empty_fields_are_kept) {
    fields f;
    split_fields(S("a,,c,"), ',', &f);
    cr_assert_eq(f.count, 4);
    field_is(&f, 0, "a");
    field_is(&f, 1, "");
    field_is(&f, 2, "c");
    field_is(&f, 3, "");
    split_fields(S(""), ',', &f);
    cr_assert_eq(f.count, 1);
    field_is(&f, 0, "");
    split_fields(S(",,"), ',', &f);
    cr_assert_eq(f.count, 3);
}

Test(split_fields, quotes_are_removed) {
    fields f;
    split_fields(S("\"SessionId\",\"\",x,\"y\"z,\""), ',', &f);
    cr_assert_eq(f.count, 5);
    field_is(&f, 0, "SessionId");
    field_is(&f, 1, "");       // "" -> empty
    field_is(&f, 2, "x");
    field_is(&f, 3, "\"y\"z");  // not wrapped in quotes: kept
    field_is(&f, 4, "\"");      // a lone quote is not a quoted field
}

Test(split_fields, only_the_given_length) {
    fields f;
    split_fields("a,b,c", 3, ',', &f);
    cr_assert_eq(f.count, 2);
    field_is(&f, 1, "b");
}

Test(split_fields, more_than_max_fields) {
    char line[1024];
    size_t n = 0;
    for (int k = 0; k < MAX_FIELDS; k++) n += (size_t)sprintf(line + n, "%s%d", k ? "," : "", k);
    fields f;
    split_fields(line, n, ',', &f);
    cr_assert_eq(f.count, MAX_FIELDS, "exactly MAX_FIELDS fields");
    field_is(&f, MAX_FIELDS - 1, "63");
    n += (size_t)sprintf(line + n, ",64");
    split_fields(line, n, ',', &f);
    cr_assert_eq(f.count, MAX_FIELDS + 1, "one more than MAX_FIELDS is reported as MAX_FIELDS + 1");
    for (int k = 65; k < 100; k++) n += (size_t)sprintf(line + n, ",%d", k);
    split_fields(line, n, ',', &f);
    cr_assert_eq(f.count, MAX_FIELDS + 1);
    field_is(&f, 0, "0");
}

Test(find_field, exact_then_case_insensitive) {
    fields f;
    split_fields(S("SessionId\tItemId\tTime\titemid"), '\t', &f);
    cr_assert_eq(find_field(&f, "SessionId"), 0);
    cr_assert_eq(find_field(&f, "Time"), 2);
    cr_assert_eq(find_field(&f, "itemid"), 3, "the exact match wins over an earlier case-insensitive one");
    cr_assert_eq(find_field(&f, "ItemId"), 1);
    cr_assert_eq(find_field(&f, "sessionid"), 0, "case-insensitive when no exact match");
    cr_assert_eq(find_field(&f, "TIME"), 2);
    cr_assert_eq(find_field(&f, "Item"), -1, "a prefix is not a match");
    cr_assert_eq(find_field(&f, "ItemIds"), -1);
    cr_assert_eq(find_field(&f, "nope"), -1);
    cr_assert_eq(find_field(&f, ""), -1);
}

Test(find_field, quoted_header_names) {
    fields f;
    split_fields(S("\"session_id\",\"item_id\""), ',', &f);
    cr_assert_eq(find_field(&f, "item_id"), 1);
}

// ---- the line reader ----

TestSuite(linereader, .init = th_setup, .fini = th_teardown);

typedef struct {
    char **s;
    size_t *n;
    long *line;
    int count;
} lines;

static lines read_lines(const char *path) {
    lines L = {0};
    int cap = 0;
    linereader r;
    lr_open(&r, path);
    char *p;
    size_t n;
    while (lr_next(&r, &p, &n)) {
        if (L.count == cap) {
            cap = cap ? 2 * cap : 16;
            L.s = realloc(L.s, (size_t)cap * sizeof *L.s);
            L.n = realloc(L.n, (size_t)cap * sizeof *L.n);
            L.line = realloc(L.line, (size_t)cap * sizeof *L.line);
        }
        cr_assert_eq(p[n], '\0', "line %ld is not NUL-terminated", r.line);
        cr_assert_eq(strlen(p), n, "line %ld: length %zu but strlen %zu", r.line, n, strlen(p));
        L.s[L.count] = strndup(p, n);
        L.n[L.count] = n;
        L.line[L.count] = r.line;
        L.count++;
    }
    cr_assert_eq(lr_next(&r, &p, &n), 0, "lr_next after the end returns 0 again");
    lr_close(&r);
    return L;
}

static void lines_free(lines *L) {
    for (int i = 0; i < L->count; i++) free(L->s[i]);
    free(L->s);
    free(L->n);
    free(L->line);
}

static void expect_lines(const char *path, const char *const *want, int n_want) {
    lines L = read_lines(path);
    cr_assert_eq(L.count, n_want, "%s: %d lines, want %d", path, L.count, n_want);
    for (int i = 0; i < n_want; i++) {
        cr_assert_str_eq(L.s[i], want[i], "%s line %d", path, i + 1);
        cr_assert_eq(L.line[i], i + 1, "line number of line %d", i + 1);
    }
    lines_free(&L);
}

Test(linereader, lf_lines) {
    th_write(th_path("a.txt"), "a\nbb\nccc\n");
    const char *want[] = {"a", "bb", "ccc"};
    expect_lines(th_path("a.txt"), want, 3);
}

Test(linereader, crlf_lines_lose_the_cr) {
    th_write(th_path("a.txt"), "a\r\nbb\r\n\r\nc\r");
    const char *want[] = {"a", "bb", "", "c"};
    expect_lines(th_path("a.txt"), want, 4);
}

Test(linereader, cr_inside_a_line_is_kept) {
    th_write(th_path("a.txt"), "a\rb\n");
    const char *want[] = {"a\rb"};
    expect_lines(th_path("a.txt"), want, 1);
}

Test(linereader, last_line_without_newline) {
    th_write(th_path("a.txt"), "first\nlast");
    const char *want[] = {"first", "last"};
    expect_lines(th_path("a.txt"), want, 2);
}

Test(linereader, blank_lines_are_returned_and_numbered) {
    th_write(th_path("a.txt"), "a\n\n\nb\n\n");
    const char *want[] = {"a", "", "", "b", ""};
    expect_lines(th_path("a.txt"), want, 5);
}

Test(linereader, empty_file_has_no_lines) {
    th_write(th_path("a.txt"), "");
    expect_lines(th_path("a.txt"), NULL, 0);
    th_write(th_path("b.txt"), "\n");
    const char *want[] = {""};
    expect_lines(th_path("b.txt"), want, 1);
}

// A 9 MiB line is longer than the reader's 8 MiB buffer: it must grow, not split it.
static char *long_line_text(size_t long_len, size_t *total) {
    char *t = xmalloc(long_len + 64);
    size_t n = (size_t)sprintf(t, "head\n");
    memset(t + n, 'x', long_len);
    n += long_len;
    n += (size_t)sprintf(t + n, "\nend\r\n");
    *total = n;
    return t;
}

static void check_long_lines(const char *path, size_t long_len) {
    lines L = read_lines(path);
    cr_assert_eq(L.count, 3);
    cr_assert_str_eq(L.s[0], "head");
    cr_assert_eq(L.n[1], long_len, "the long line has %zu bytes, want %zu", L.n[1], long_len);
    size_t bad = 0;
    for (size_t i = 0; i < long_len; i++) bad += L.s[1][i] != 'x';
    cr_assert_eq(bad, 0);
    cr_assert_str_eq(L.s[2], "end");
    cr_assert_eq(L.line[2], 3);
    lines_free(&L);
}

Test(linereader, line_longer_than_the_buffer) {
    size_t total, long_len = (9u << 20) + 123;
    char *t = long_line_text(long_len, &total);
    th_write_n(th_path("long.txt"), t, total);
    check_long_lines(th_path("long.txt"), long_len);
    free(t);
}

Test(linereader, gzip_line_longer_than_the_buffer) {
    size_t total, long_len = (9u << 20) + 123;
    char *t = long_line_text(long_len, &total);
    th_write_gz_n(th_path("long.txt.gz"), t, total);
    check_long_lines(th_path("long.txt.gz"), long_len);
    free(t);
}

// ~13 MB of varied lines (more than one buffer fill), some CRLF, some blank, no final newline.
static char *many_lines(size_t *total) {
    size_t cap = 16u << 20, n = 0;
    char *t = malloc(cap);
    for (int i = 0; n < (13u << 20); i++) {
        if (i % 1000 == 999) t[n++] = '\n';  // a blank line now and then
        n += (size_t)snprintf(t + n, cap - n, "%d\titem-%d\t%lld%s", i, (int)(((long long)i * 7919) % 100003),
                              1396867869LL + i, i % 3 == 0 ? "\r\n" : "\n");
    }
    n += (size_t)snprintf(t + n, cap - n, "last\tline");
    *total = n;
    return t;
}

Test(linereader, gzip_input_reads_the_same_lines_as_plain) {
    size_t total;
    char *t = many_lines(&total);
    th_write_n(th_path("log.tsv"), t, total);
    th_write_gz_n(th_path("log.tsv.gz"), t, total);
    free(t);
    cr_assert_lt(th_file_size(th_path("log.tsv.gz")), th_file_size(th_path("log.tsv")), "the .gz file is compressed");
    linereader a, b;
    lr_open(&a, th_path("log.tsv"));
    lr_open(&b, th_path("log.tsv.gz"));
    cr_assert(!a.gzip);
    cr_assert(b.gzip, "gzip detected from the magic bytes");
    char *pa, *pb;
    size_t na, nb;
    long n = 0;
    char last[64] = "";
    for (;;) {
        int ra = lr_next(&a, &pa, &na), rb = lr_next(&b, &pb, &nb);
        cr_assert_eq(ra, rb, "plain and gzip end at different lines (%ld)", n);
        if (!ra) break;
        n++;
        cr_assert_eq(na, nb, "line %ld length", n);
        cr_assert(memcmp(pa, pb, na) == 0, "line %ld differs", n);
        cr_assert_eq(a.line, b.line);
        snprintf(last, sizeof last, "%.*s", (int)(na < 63 ? na : 63), pa);
    }
    cr_assert_gt(n, 300000);
    cr_assert_str_eq(last, "last\tline", "the last line, without a newline, is read");
    lr_close(&a);
    lr_close(&b);
}

Test(linereader, gzip_magic_decides_not_the_name) {
    th_write_gz(th_path("clicks.tsv"), "x\ny\n");   // gzip without .gz
    th_write(th_path("plain.gz"), "p\nq\n");         // plain with .gz
    const char *w1[] = {"x", "y"}, *w2[] = {"p", "q"};
    expect_lines(th_path("clicks.tsv"), w1, 2);
    expect_lines(th_path("plain.gz"), w2, 2);
}

// An input error ends the process with status 2 after printing one line. The check.h
// cleanup hook runs just before exit: it verifies the message (written to a file in
// place of stderr) and exits with 3 instead when the message is wrong, so that the
// .exit_code = 2 test fails.
static char g_errfile[4096], g_expect[4096], g_expect2[256], g_dir[4096];

static void check_message_then_exit(void *unused) {
    (void)unused;
    fflush(stderr);
    char *msg = th_read_file(g_errfile, NULL);
    int ok = msg && strncmp(msg, g_expect, strlen(g_expect)) == 0 && strstr(msg, g_expect2) &&
             th_count_lines(msg) == 1;
    if (!ok) fprintf(stdout, "unexpected error message: %s (want '%s...%s')\n", msg ? msg : "(none)", g_expect, g_expect2);
    free(msg);
    th_rmtree(g_dir);
    if (!ok) _exit(3);
}

static void expect_input_error(const char *dir, const char *prefix, const char *contains) {
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    snprintf(g_errfile, sizeof g_errfile, "%s/stderr.txt", dir);
    snprintf(g_expect, sizeof g_expect, "%s", prefix);
    snprintf(g_expect2, sizeof g_expect2, "%s", contains);
    set_program_name("grurec");
    cr_assert_not_null(freopen(g_errfile, "w", stderr));
    set_fail_cleanup(check_message_then_exit, NULL);
}

Test(linereader_errors, truncated_gzip_exits_2_naming_the_file, .exit_code = 2) {
    char *dir = th_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/clicks.tsv.gz", dir);
    size_t total;
    char *t = many_lines(&total);
    th_write_gz_n(path, t, total / 8);  // ~1.6 MB of text
    free(t);
    th_truncate(path, th_file_size(path) / 2);
    char prefix[4300];
    snprintf(prefix, sizeof prefix, "grurec: %s:", path);  // "PROG: PATH:LINE: ..."
    expect_input_error(dir, prefix, "gzip");
    free(dir);  // (kept in g_dir; the leak checker runs at the exit this test expects)
    linereader r;
    lr_open(&r, path);
    char *p;
    size_t n;
    while (lr_next(&r, &p, &n)) {
    }
    cr_assert_fail("read a truncated gzip file to its end without an error (%ld lines)", r.line);
}

Test(linereader_errors, missing_file_exits_2_naming_it, .exit_code = 2) {
    char *dir = th_mkdtemp();
    char path[4200], prefix[4300];
    snprintf(path, sizeof path, "%s/no-such-file.tsv", dir);
    snprintf(prefix, sizeof prefix, "grurec: %s: ", path);
    expect_input_error(dir, prefix, "cannot open");
    free(dir);
    linereader r;
    lr_open(&r, path);
    cr_assert_fail("opened a missing file");
}

// ---- idmap ----

static int32_t intern(idmap *m, const char *s) { return idmap_intern(m, s, strlen(s)); }
static int32_t find(const idmap *m, const char *s) { return idmap_find(m, s, strlen(s)); }

Test(idmap, ids_in_order_of_first_appearance) {
    idmap m;
    idmap_init(&m);
    cr_assert_eq(find(&m, "b"), -1, "empty map");
    cr_assert_eq(intern(&m, "b"), 0);
    cr_assert_eq(intern(&m, "a"), 1);
    cr_assert_eq(intern(&m, "b"), 0);
    cr_assert_eq(intern(&m, "c"), 2);
    cr_assert_eq(intern(&m, "a"), 1);
    cr_assert_eq(m.count, 3);
    cr_assert_str_eq(idmap_str(&m, 0), "b");
    cr_assert_str_eq(idmap_str(&m, 1), "a");
    cr_assert_str_eq(idmap_str(&m, 2), "c");
    cr_assert_eq(find(&m, "c"), 2);
    cr_assert_eq(find(&m, "d"), -1);
    cr_assert_eq(find(&m, "bb"), -1);
    cr_assert_eq(m.count, 3, "find does not add");
    idmap_free(&m);
}

Test(idmap, short_long_and_shared_prefix_keys) {
    idmap m;
    idmap_init(&m);
    // Keys of 7, 8, 9 and 10+ bytes that agree on their first 7 or 8 bytes.
    const char *keys[] = {"abcdefg", "abcdefgh", "abcdefgh1", "abcdefgh2", "abcdefgh12",
                          "abcdefghX", "session-00000000001", "session-00000000002",
                          "session-0000000000", "abcdefgi", "A", "", "a-very-long-session-id-of-64-bytes-0123456789abcdefghijklmnopqrst"};
    int n = (int)(sizeof keys / sizeof *keys);
    for (int i = 0; i < n; i++) cr_assert_eq(intern(&m, keys[i]), i, "new key '%s'", keys[i]);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(intern(&m, keys[i]), i, "again '%s'", keys[i]);
        cr_assert_eq(find(&m, keys[i]), i, "find '%s'", keys[i]);
        cr_assert_str_eq(idmap_str(&m, i), keys[i]);
    }
    cr_assert_eq(find(&m, "abcdefgh3"), -1);
    cr_assert_eq(find(&m, "abcdefgh123"), -1);
    cr_assert_eq(find(&m, "session-00000000003"), -1);
    cr_assert_eq(find(&m, "abcdef"), -1);
    cr_assert_eq(m.count, n);
    idmap_free(&m);
}

Test(idmap, key_is_the_given_length_not_the_c_string) {
    idmap m;
    idmap_init(&m);
    cr_assert_eq(idmap_intern(&m, "abcdef", 3), 0);
    cr_assert_eq(intern(&m, "abc"), 0);
    cr_assert_str_eq(idmap_str(&m, 0), "abc");
    cr_assert_eq(idmap_intern(&m, "session-123456789,rest", 17), 1);
    cr_assert_eq(find(&m, "session-123456789"), 1);
    cr_assert_eq(idmap_find(&m, "session-1234567890", 18), -1);
    idmap_free(&m);
}

Test(idmap, hundred_thousand_keys_through_growth) {
    idmap m;
    idmap_init(&m);
    enum { N = 100000 };
    char buf[64];
    for (int i = 0; i < N; i++) {
        // Alternate short keys and long keys that share a 16-byte prefix.
        int len = i % 2 ? snprintf(buf, sizeof buf, "%d", i) : snprintf(buf, sizeof buf, "user-session-id-%d", i);
        cr_assert_eq(idmap_intern(&m, buf, (size_t)len), i, "key %d", i);
    }
    cr_assert_eq(m.count, N);
    cr_assert_gt(m.mask + 1, 2 * (uint64_t)N - 1, "the table grew to keep the load at most 1/2");
    for (int i = 0; i < N; i++) {
        int len = i % 2 ? snprintf(buf, sizeof buf, "%d", i) : snprintf(buf, sizeof buf, "user-session-id-%d", i);
        cr_assert_eq(idmap_find(&m, buf, (size_t)len), i, "find key %d", i);
        cr_assert_str_eq(idmap_str(&m, i), buf);
    }
    cr_assert_eq(find(&m, "100001"), -1);
    cr_assert_eq(find(&m, "user-session-id-1"), -1, "odd i were stored short");
    cr_assert_eq(find(&m, "2"), -1, "even i were stored long");
    cr_assert_eq(find(&m, "user-session-id-100000"), -1);
    cr_assert_gt(idmap_bytes(&m), 0);
    idmap_free(&m);
}

Test(idmap, strings_survive_drop_index) {
    idmap m;
    idmap_init(&m);
    intern(&m, "x");
    intern(&m, "a-long-key-string");
    idmap_drop_index(&m);
    cr_assert_str_eq(idmap_str(&m, 0), "x");
    cr_assert_str_eq(idmap_str(&m, 1), "a-long-key-string");
    cr_assert_eq(m.count, 2);
    idmap_free(&m);
}

// idmap_append gives every call a new id (the parser's fast path for runs of one session
// id); idmap_dedupe then merges repeats into the first id and renumbers densely.
Test(idmap, append_then_dedupe_merges_repeats_into_the_first_id) {
    idmap m;
    idmap_init(&m);
    const char *runs[] = {"s2", "a-long-session-id-1", "s2", "s1", "a-long-session-id-2", "a-long-session-id-1", "s1"};
    for (int i = 0; i < 7; i++) cr_assert_eq(idmap_append(&m, runs[i], strlen(runs[i])), i, "append %d", i);
    cr_assert_eq(m.count, 7);
    int32_t *new_id = idmap_dedupe(&m);
    cr_assert_not_null(new_id, "repeats were found");
    const int32_t want[] = {0, 1, 0, 2, 3, 1, 2};
    for (int i = 0; i < 7; i++) cr_assert_eq(new_id[i], want[i], "old id %d -> %d, want %d", i, new_id[i], want[i]);
    free(new_id);
    cr_assert_eq(m.count, 4);
    const char *names[] = {"s2", "a-long-session-id-1", "s1", "a-long-session-id-2"};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(idmap_str(&m, i), names[i]);
        cr_assert_eq(find(&m, names[i]), i, "lookups work after dedupe");
    }
    cr_assert_eq(intern(&m, "s3"), 4, "and new ids continue densely");
    cr_assert_eq(intern(&m, "s1"), 2);
    idmap_free(&m);
}

Test(idmap, dedupe_without_repeats_returns_null) {
    idmap m;
    idmap_init(&m);
    cr_assert_null(idmap_dedupe(&m), "empty map");
    idmap_append(&m, "x", 1);
    idmap_append(&m, "abcdefgh1", 9);
    idmap_append(&m, "abcdefgh2", 9);  // shares 8 bytes with the one before
    cr_assert_null(idmap_dedupe(&m));
    cr_assert_eq(m.count, 3);
    cr_assert_eq(find(&m, "abcdefgh2"), 2);
    cr_assert_eq(find(&m, "abcdefgh"), -1);
    idmap_free(&m);
}

Test(idmap, dedupe_of_many_runs) {
    // 60000 runs over 20000 distinct ids (each id comes back three times, in a shuffled
    // order); half the ids are longer than 8 bytes.
    enum { D = 20000, R = 3 * D };
    idmap m;
    idmap_init(&m);
    int32_t *of_run = malloc(R * sizeof *of_run);
    uint64_t x = 99;
    char buf[64];
    for (int r = 0; r < R; r++) {
        int d = r < D ? r : (int)((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33) % D;
        of_run[r] = d;
        int len = d % 2 ? snprintf(buf, sizeof buf, "%d", d) : snprintf(buf, sizeof buf, "session-identifier-%d", d);
        cr_assert_eq(idmap_append(&m, buf, (size_t)len), r);
    }
    int32_t *new_id = idmap_dedupe(&m);
    cr_assert_not_null(new_id);
    cr_assert_eq(m.count, D);
    for (int r = 0; r < R; r++) cr_assert_eq(new_id[r], of_run[r], "run %d", r);  // first appearance = d
    for (int d = 0; d < D; d += 97) {
        int len = d % 2 ? snprintf(buf, sizeof buf, "%d", d) : snprintf(buf, sizeof buf, "session-identifier-%d", d);
        cr_assert_str_eq(idmap_str(&m, d), buf);
        cr_assert_eq(idmap_find(&m, buf, (size_t)len), d);
    }
    free(new_id);
    free(of_run);
    idmap_free(&m);
}

// ---- formats ----

Test(formats, gru4rec_layout) {
    format_spec s;
    cr_assert_eq(format_lookup("gru4rec", &s), 1);
    cr_assert_eq(s.delim, '\t');
    cr_assert_eq(s.header, 1);
    cr_assert_eq(s.time, TIME_UNIX);
    cr_assert_str_eq(s.session_col, "SessionId");
    cr_assert_str_eq(s.item_col, "ItemId");
    cr_assert_str_eq(s.time_col, "Time");
    cr_assert_null(s.user_col);
    cr_assert_eq(s.n_cols, 0, "extra columns allowed");
}

Test(formats, yoochoose_layout) {
    format_spec s;
    cr_assert_eq(format_lookup("yoochoose", &s), 1);
    cr_assert_eq(s.delim, ',');
    cr_assert_eq(s.header, 0);
    cr_assert_eq(s.time, TIME_ISO8601);
    cr_assert_eq(s.n_cols, 4);
    cr_assert_str_eq(s.session_col, "0");
    cr_assert_str_eq(s.time_col, "1");
    cr_assert_str_eq(s.item_col, "2");
}

Test(formats, diginetica_layout) {
    format_spec s;
    cr_assert_eq(format_lookup("diginetica", &s), 1);
    cr_assert_eq(s.delim, ';');
    cr_assert_eq(s.header, 1);
    cr_assert_eq(s.time, TIME_DATE_PLUS_MS);
    cr_assert_eq(s.n_cols, 5);
    cr_assert_str_eq(s.session_col, "0");
    cr_assert_str_eq(s.item_col, "2");
    cr_assert_str_eq(s.offset_col, "3");
    cr_assert_str_eq(s.time_col, "4");
}

Test(formats, retailrocket_layout) {
    format_spec s;
    cr_assert_eq(format_lookup("retailrocket", &s), 1);
    cr_assert_eq(s.delim, ',');
    cr_assert_eq(s.time, TIME_UNIX_MS);
    cr_assert_eq(s.n_cols, 5);
    cr_assert_null(s.session_col);
    cr_assert_str_eq(s.user_col, "1");
    cr_assert_str_eq(s.time_col, "0");
    cr_assert_str_eq(s.item_col, "3");
    cr_assert_str_eq(s.event_col, "2");
    cr_assert_str_eq(s.event_keep, "view");
    cr_assert_eq(s.session_gap_s, 3600);
}

Test(formats, csv_defaults_and_unknown_names) {
    format_spec s;
    cr_assert_eq(format_lookup("csv", &s), 1);
    cr_assert_eq(s.delim, ',');
    cr_assert_eq(s.header, 1);
    cr_assert_eq(s.time, TIME_UNIX);
    cr_assert_null(s.session_col);
    cr_assert_null(s.item_col);
    cr_assert_eq(format_lookup("tsv", &s), 0);
    cr_assert_eq(format_lookup("", &s), 0);
    cr_assert_eq(format_lookup("GRU4Rec", &s), 0, "names are case-sensitive");
}

Test(formats, time_format_parse_names) {
    time_format t = TIME_DATE_PLUS_MS;
    cr_assert_eq(time_format_parse("unix", &t), 1);
    cr_assert_eq(t, TIME_UNIX);
    cr_assert_eq(time_format_parse("unix-ms", &t), 1);
    cr_assert_eq(t, TIME_UNIX_MS);
    cr_assert_eq(time_format_parse("iso8601", &t), 1);
    cr_assert_eq(t, TIME_ISO8601);
    cr_assert_eq(time_format_parse("order", &t), 1);
    cr_assert_eq(t, TIME_ORDER);
    t = TIME_UNIX;
    cr_assert_eq(time_format_parse("date+ms", &t), 0, "diginetica's internal format is not a --time-format");
    cr_assert_eq(time_format_parse("UNIX", &t), 0);
    cr_assert_eq(time_format_parse("", &t), 0);
    cr_assert_eq(time_format_parse("unix-s", &t), 0);
    cr_assert_eq(t, TIME_UNIX, "unchanged on failure");
}

Test(formats, time_units) {
    cr_assert_str_eq(time_unit(TIME_UNIX), "s");
    cr_assert_str_eq(time_unit(TIME_UNIX_MS), "ms");
    cr_assert_str_eq(time_unit(TIME_ISO8601), "ms");
    cr_assert_str_eq(time_unit(TIME_DATE_PLUS_MS), "ms");
    cr_assert_str_eq(time_unit(TIME_ORDER), "order");
    cr_assert_eq(units_per_day(TIME_UNIX), 86400);
    cr_assert_eq(units_per_day(TIME_UNIX_MS), 86400000);
    cr_assert_eq(units_per_day(TIME_ISO8601), 86400000);
    cr_assert_eq(units_per_day(TIME_DATE_PLUS_MS), 86400000);
    cr_assert_eq(units_per_day(TIME_ORDER), 0);
    cr_assert_eq(units_per_second(TIME_UNIX_MS), 1000);
    cr_assert_str_eq(time_format_name(TIME_UNIX_MS), "unix-ms");
    cr_assert_str_eq(time_format_name(TIME_DATE_PLUS_MS), "date+ms");
}
