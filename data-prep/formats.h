// The click-log formats grurec-prep reads, and the parser that turns their lines
// into events. Every format is a delimited text layout plus a rule for the time.
#ifndef GRUREC_FORMATS_H
#define GRUREC_FORMATS_H

#include <stdint.h>

#include "clicklog.h"

typedef enum { TIME_UNIX, TIME_UNIX_MS, TIME_ISO8601, TIME_ORDER, TIME_DATE_PLUS_MS } time_format;

typedef struct {
    const char *name;
    char delim;
    int header;                 // first line names the columns
    // Columns: a header name, or a 0-based index written as digits. NULL = absent.
    const char *session_col, *user_col, *item_col, *time_col;
    const char *offset_col;     // TIME_DATE_PLUS_MS: milliseconds added to the date
    const char *event_col, *event_keep;  // keep only rows whose event column equals this
    time_format time;
    int64_t session_gap_s;      // with user_col: cut a user's events at larger gaps (seconds)
    int n_cols;                 // required column count; 0 = as the header / first line has
    // --since / --until: only events with since <= time < until are kept, before any
    // other rule (format_lookup sets the whole range).
    int64_t since, until;
} format_spec;

// Fills SPEC with the built-in layout NAME (gru4rec, yoochoose, diginetica,
// retailrocket, csv). Returns 0 for an unknown name.
int format_lookup(const char *name, format_spec *spec);
// Parses "unix", "unix-ms", "iso8601", "order"; returns 0 for anything else.
int time_format_parse(const char *s, time_format *out);
const char *time_format_name(time_format t);
// "s", "ms" or "order": the unit stored with the dataset.
const char *time_unit(time_format t);
// Time units per day, 0 when the unit has no clock (order).
int64_t units_per_day(time_format t);
int64_t units_per_second(time_format t);
// A --since / --until bound: a time written as the log writes it (T's own format), or an
// ISO-8601 date or date-time (UTC unless it gives an offset) for logs with clock times.
// Stores it in T's unit (a bound between two whole seconds rounds up, so that "since"
// and "until" keep exactly the events at or after it). Returns 0 when TEXT is neither.
int parse_time_bound(const char *text, time_format t, int64_t *out);

typedef struct {
    int64_t lines;          // data lines read (header excluded)
    int64_t events;         // events kept
    int64_t skipped_rows;   // rows of other event types (retailrocket non-views)
    int64_t bad_lines;      // malformed lines skipped under --max-errors
    int64_t outside_window; // events before --since or at/after --until, not kept
    int64_t max_errors;     // how many malformed lines may be skipped
} ingest_stats;

// Appends the events of every line of PATH to LOG. A malformed line is an input
// error naming PATH:LINE, unless fewer than stats->max_errors were skipped so far.
void ingest_file(const format_spec *spec, const char *path, clicklog *log, ingest_stats *stats);

#endif
