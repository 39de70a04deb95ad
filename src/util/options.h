// The one command-line parser of grurec, grurec-prep and grurec-synth (GNU style):
//   --name value  and  --name=value  (a value may start with '-', e.g. --eval-every -1,
//   but not with "--": write --name=--x for that), flags without a value, short names
//   such as -k 5, positional arguments, and "--" before positionals that start with '-'.
// Each command loops over its arguments and asks for what it expects:
//
//   opt_parser p;
//   for (opt_begin(&p, "eval", argc, argv); opt_next(&p);) {
//       if (opt_is(&p, "--data")) data = opt_str(&p);
//       else if (opt_is(&p, "--batch")) batch = (int)opt_int(&p, 1, INT_MAX);
//       else if (opt_is(&p, "--json")) json = 1;
//       else opt_unknown(&p);
//   }
//
// A value is taken only when the command asks for it, so an unknown option is reported
// as unknown (never as "needs a value"), and "--json=1" (a value nobody asked for) is
// refused. Every mistake is a usage error (exit 2) naming the option.
#ifndef GRUREC_OPTIONS_H
#define GRUREC_OPTIONS_H

#include <stdint.h>

#include "util/check.h"

typedef struct {
    int argc;
    char **argv;
    int next;                  // the index of the next argument
    const char *arg;           // the current argument as given
    char name[64];             // its option name ("--epochs", "-k"); "" for a positional
    const char *inline_value;  // the text after '=' in --name=value, else NULL
    int value_taken;           // the command asked for the current option's value
    int only_positionals;      // after "--"
} opt_parser;

// ARGV[0] is the program or command; CMD ("train", or NULL for a program of its own)
// makes errors point to "grurec CMD --help".
void opt_begin(opt_parser *p, const char *cmd, int argc, char **argv);
// Moves to the next argument; 0 when there are none left.
int opt_next(opt_parser *p);
// Whether the current argument is the option NAME ("--data", "-k").
int opt_is(const opt_parser *p, const char *name);
// The current argument when it is positional (not an option), else NULL.
const char *opt_positional(const opt_parser *p);
// The current option's value: non-empty text, or a number in [LO, HI].
const char *opt_str(opt_parser *p);
int64_t opt_int(opt_parser *p, int64_t lo, int64_t hi);
uint64_t opt_u64(opt_parser *p, uint64_t lo, uint64_t hi);
double opt_num(opt_parser *p, double lo, double hi);
double opt_num_above(opt_parser *p, double lo, double hi);  // LO itself excluded
float opt_float(opt_parser *p, double lo, double hi);
// The current option's value as it is (possibly empty), for checks of the command's own.
const char *opt_raw(opt_parser *p);
// Ends with "unknown option --x" (or "unexpected argument 'x'" for a positional).
GRUREC_NORETURN void opt_unknown(const opt_parser *p);

#endif
