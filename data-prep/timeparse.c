#include "timeparse.h"

int parse_i64(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == n || n - i > 18) return 0;  // 18 digits cannot overflow
    int64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return 0;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 1;
}

int parse_decimal(const char *s, size_t n, int frac_digits, int64_t *out) {
    size_t dot = 0;
    while (dot < n && s[dot] != '.') dot++;
    int64_t whole;
    if (!parse_i64(s, dot, &whole)) return 0;
    int64_t scale = 1;
    for (int k = 0; k < frac_digits; k++) scale *= 10;
    int64_t frac = 0, fscale = scale;
    if (dot < n) {
        if (dot + 1 == n) return 0;
        for (size_t i = dot + 1; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9) return 0;
            if (fscale > 1) { fscale /= 10; frac += d * fscale; }
        }
    }
    int neg = n > 0 && s[0] == '-';
    *out = whole * scale + (neg ? -frac : frac);
    return 1;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    // Howard Hinnant's algorithm: exact for every proleptic Gregorian date.
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

// Reads exactly K digits at s[*i].
static int digits(const char *s, size_t n, size_t *i, int k, int *out) {
    if (*i + (size_t)k > n) return 0;
    int v = 0;
    for (int j = 0; j < k; j++) {
        unsigned d = (unsigned)(s[*i + j] - '0');
        if (d > 9) return 0;
        v = v * 10 + (int)d;
    }
    *i += (size_t)k;
    *out = v;
    return 1;
}

static int expect(const char *s, size_t n, size_t *i, char c) {
    if (*i < n && s[*i] == c) { (*i)++; return 1; }
    return 0;
}

static const unsigned char month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int parse_iso8601_ms(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(s, n, &i, 4, &y) || !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &mo) ||
        !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &d))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1]) return 0;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return 0;
    int64_t offset_min = 0;
    if (i < n) {
        if (s[i] != 'T' && s[i] != ' ') return 0;
        i++;
        if (!digits(s, n, &i, 2, &h) || !expect(s, n, &i, ':') || !digits(s, n, &i, 2, &mi)) return 0;
        if (expect(s, n, &i, ':')) {
            if (!digits(s, n, &i, 2, &sec)) return 0;
            if (expect(s, n, &i, '.') || expect(s, n, &i, ',')) {
                size_t start = i;
                int scale = 100;
                for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
                    ms += (s[i] - '0') * scale;  // digits past milliseconds are dropped
                if (i == start) return 0;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) return 0;  // 60: a leap second
        if (i < n && s[i] == 'Z') i++;
        else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i++] == '-' ? -1 : 1, oh, om = 0;
            if (!digits(s, n, &i, 2, &oh)) return 0;
            expect(s, n, &i, ':');
            if (i < n && !digits(s, n, &i, 2, &om)) return 0;
            if (oh > 23 || om > 59) return 0;
            offset_min = sign * (oh * 60 + om);
        }
        if (i != n) return 0;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out = secs * 1000 + ms;
    return 1;
}
