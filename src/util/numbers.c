#include "util/numbers.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// strto* skip leading blanks and accept an empty remainder check only through END:
// a setting must start with its number.
static int starts_like_number(const char *s) { return *s && !isspace((unsigned char)*s); }

int num_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!starts_like_number(s)) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

int num_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!isdigit((unsigned char)*s)) return 0;  // strtoull would wrap "-1" around
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

int num_parse_f64(const char *s, double lo, double hi, double *out) {
    if (!starts_like_number(s)) return 0;
    char *end;
    double x = strtod(s, &end);  // ERANGE on underflow is fine: the range decides
    if (end == s || *end || !isfinite(x) || !(x >= lo && x <= hi)) return 0;
    *out = x;
    return 1;
}

int num_parse_f32(const char *s, double lo, double hi, float *out) {
    if (!starts_like_number(s)) return 0;
    char *end;
    float x = strtof(s, &end);  // the bounds as floats too: "1e30" is in [0, 1e30]
    if (end == s || *end || !isfinite(x) || !(x >= (float)lo && x <= (float)hi)) return 0;
    *out = x;
    return 1;
}

const char *float_str(float x, char *buf) {
    if (!isfinite(x)) {
        snprintf(buf, FLOAT_STR_SIZE, "%s", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
        return buf;
    }
    for (int digits = 1; digits <= 9; digits++) {  // 9 significant digits always read back
        snprintf(buf, FLOAT_STR_SIZE, "%.*g", digits, (double)x);
        float back = strtof(buf, NULL);
        if (memcmp(&back, &x, sizeof x) == 0) break;
    }
    return buf;
}
