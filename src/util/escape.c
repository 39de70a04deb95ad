#include "util/escape.h"

#include <stdio.h>

const char *escape_text(char out[ESCAPED_MAX], const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 60) {
            o += (size_t)snprintf(out + o, ESCAPED_MAX - o, "...");
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') o += (size_t)snprintf(out + o, ESCAPED_MAX - o, "\\r");
        else if (c == '\t') o += (size_t)snprintf(out + o, ESCAPED_MAX - o, "\\t");
        else if (c == '\n') o += (size_t)snprintf(out + o, ESCAPED_MAX - o, "\\n");
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, ESCAPED_MAX - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}
