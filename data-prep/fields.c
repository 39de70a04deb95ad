#include "fields.h"

#include <string.h>
#include <strings.h>

void split_fields(const char *line, size_t len, char delim, fields *f) {
    const char *s = line, *end = line + len;
    int k = 0;
    for (;;) {
        const char *d = memchr(s, delim, (size_t)(end - s));
        const char *e = d ? d : end;
        if (k == MAX_FIELDS) { f->count = MAX_FIELDS + 1; return; }
        if (e - s >= 2 && s[0] == '"' && e[-1] == '"') { f->p[k] = s + 1; f->n[k] = (size_t)(e - s - 2); }
        else { f->p[k] = s; f->n[k] = (size_t)(e - s); }
        k++;
        if (!d) break;
        s = d + 1;
    }
    f->count = k;
}

int find_field(const fields *f, const char *name) {
    size_t n = strlen(name);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < f->count && i < MAX_FIELDS; i++)
            if (f->n[i] == n && (pass == 0 ? memcmp(f->p[i], name, n) == 0
                                           : strncasecmp(f->p[i], name, n) == 0))
                return i;
    return -1;
}
