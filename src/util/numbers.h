// Settings as text: strict parsing (the whole text is the number, in range, no overflow)
// and the shortest exact printing of a float. Used by every option parser and by every
// place that prints a setting, so that "0.1" goes in and "0.1" comes out.
#ifndef GRUREC_NUMBERS_H
#define GRUREC_NUMBERS_H

#include <stdint.h>

// Each returns 1 and stores the value when S is exactly one number in [LO, HI]; else 0,
// leaving *OUT alone. Blanks, trailing characters, an empty text, overflow, NaN and
// infinities are refused; whole numbers are decimal, floats take strtod's forms.
int num_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int num_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int num_parse_f64(const char *s, double lo, double hi, double *out);
// Rounded once, straight to float (strtof), so that float_str's text reads back exactly;
// LO and HI are compared as floats.
int num_parse_f32(const char *s, double lo, double hi, float *out);

enum { FLOAT_STR_SIZE = 32 };
// The shortest %g text that strtof reads back to X's bits: 0.1f prints "0.1", not
// "0.100000001". Writes BUF (FLOAT_STR_SIZE bytes) and returns it.
const char *float_str(float x, char *buf);

#endif
