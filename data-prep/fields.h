// Splits one line into fields at a one-byte delimiter, in place (no copies).
#ifndef GRUREC_FIELDS_H
#define GRUREC_FIELDS_H

#include <stddef.h>

enum { MAX_FIELDS = 64 };

typedef struct {
    const char *p[MAX_FIELDS];
    size_t n[MAX_FIELDS];
    int count;  // number of fields found; MAX_FIELDS + 1 when the line has more
} fields;

// A field wrapped in double quotes has them removed (no embedded delimiters or
// escaped quotes: none of the supported click-log formats uses them).
void split_fields(const char *line, size_t len, char delim, fields *f);

// Index of the field equal to NAME (case-sensitive, then case-insensitive), or -1.
int find_field(const fields *f, const char *name);

#endif
