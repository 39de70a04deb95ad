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

void json_write_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
