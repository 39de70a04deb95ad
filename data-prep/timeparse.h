// Strict number and time parsers over (pointer, length) fields. Each returns 1 on
// success and 0 when the text is not of its form: callers report the file and line.
#ifndef GRUREC_TIMEPARSE_H
#define GRUREC_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

// Optional sign, digits; nothing else (no spaces).
int parse_i64(const char *s, size_t n, int64_t *out);
// Decimal number with an optional fraction ("1396321232.5"); the fraction is
// scaled by 10^frac_digits and truncated: frac_digits 0 gives whole units,
// 3 turns seconds into milliseconds.
int parse_decimal(const char *s, size_t n, int frac_digits, int64_t *out);
// ISO-8601 UTC date-time in milliseconds since the epoch:
//   YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.fff…]], 'T' or ' ' between date and time,
//   optional 'Z' or +HH:MM / -HH:MM / +HHMM offset.
int parse_iso8601_ms(const char *s, size_t n, int64_t *out);
// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
