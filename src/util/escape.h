// Text from an input file, made safe to quote inside a one-line error message: control
// characters (a stray '\r' of a CRLF log, a tab, a NUL) are written as \r, \t, \xNN, and
// long text is cut with "...".
#ifndef GRUREC_ESCAPE_H
#define GRUREC_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

enum { ESCAPED_MAX = 4 * 60 + 4 };  // room for 60 input bytes, each escaped, and "..."

// The first bytes of S[0, N) as printable text in OUT (ESCAPED_MAX bytes); returns OUT.
const char *escape_text(char out[ESCAPED_MAX], const char *s, size_t n);
// S as a JSON string, quotes included.
void json_write_str(FILE *f, const char *s);

#endif
