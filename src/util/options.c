#include "util/options.h"

#include <stdio.h>
#include <string.h>

#include "util/numbers.h"

void opt_begin(opt_parser *p, const char *cmd, int argc, char **argv) {
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->next = 1;
    if (cmd) {  // errors point to this command's --help
        static char help[96];
        snprintf(help, sizeof help, "%s %s", program_name(), cmd);
        set_usage_help(help);
    }
}

static int is_option(const char *a) { return a[0] == '-' && a[1] != '\0'; }  // "-" alone is stdin

int opt_next(opt_parser *p) {
    if (p->inline_value && !p->value_taken) usage_fail("%s takes no value, not '%s'", p->name, p->arg);
    if (p->next >= p->argc) return 0;
    p->arg = p->argv[p->next++];
    p->name[0] = '\0';
    p->inline_value = NULL;
    p->value_taken = 0;
    if (!p->only_positionals && strcmp(p->arg, "--") == 0) {
        p->only_positionals = 1;
        return opt_next(p);
    }
    if (p->only_positionals || !is_option(p->arg)) return 1;
    const char *eq = p->arg[1] == '-' ? strchr(p->arg, '=') : NULL;  // -k=5 is not GNU
    size_t n = eq ? (size_t)(eq - p->arg) : strlen(p->arg);
    if (n >= sizeof p->name) n = sizeof p->name - 1;  // no option is that long: unknown
    memcpy(p->name, p->arg, n);
    p->name[n] = '\0';
    if (eq) p->inline_value = eq + 1;
    return 1;
}

int opt_is(const opt_parser *p, const char *name) { return p->name[0] && strcmp(p->name, name) == 0; }

const char *opt_positional(const opt_parser *p) { return p->name[0] ? NULL : p->arg; }

const char *opt_raw(opt_parser *p) {
    if (p->value_taken) return p->inline_value ? p->inline_value : p->argv[p->next - 1];
    p->value_taken = 1;
    if (p->inline_value) return p->inline_value;
    // The next argument is the value unless it is another long option (--data --out RUN).
    const char *v = p->next < p->argc ? p->argv[p->next] : NULL;
    if (!v || (v[0] == '-' && v[1] == '-')) usage_fail("%s needs a value", p->name);
    p->next++;
    return v;
}

const char *opt_str(opt_parser *p) {
    const char *v = opt_raw(p);
    if (!*v) usage_fail("%s needs a value, not an empty text", p->name);
    return v;
}

int64_t opt_int(opt_parser *p, int64_t lo, int64_t hi) {
    const char *v = opt_raw(p);
    int64_t x;
    if (!num_parse_i64(v, lo, hi, &x))
        usage_fail("%s takes a whole number from %lld to %lld, not '%s'", p->name, (long long)lo, (long long)hi, v);
    return x;
}

uint64_t opt_u64(opt_parser *p, uint64_t lo, uint64_t hi) {
    const char *v = opt_raw(p);
    uint64_t x;
    if (!num_parse_u64(v, lo, hi, &x))
        usage_fail("%s takes a whole number from %llu to %llu, not '%s'", p->name, (unsigned long long)lo,
                   (unsigned long long)hi, v);
    return x;
}

// ABOVE: LO itself is out of range.
static double number(opt_parser *p, double lo, double hi, int above) {
    const char *v = opt_raw(p);
    double x;
    if (!num_parse_f64(v, lo, hi, &x) || (above && x == lo)) {
        if (above) usage_fail("%s takes a number above %g, up to %g, not '%s'", p->name, lo, hi, v);
        usage_fail("%s takes a number from %g to %g, not '%s'", p->name, lo, hi, v);
    }
    return x;
}

double opt_num(opt_parser *p, double lo, double hi) { return number(p, lo, hi, 0); }
double opt_num_above(opt_parser *p, double lo, double hi) { return number(p, lo, hi, 1); }

float opt_float(opt_parser *p, double lo, double hi) {
    const char *v = opt_raw(p);
    float x;
    if (!num_parse_f32(v, lo, hi, &x)) usage_fail("%s takes a number from %g to %g, not '%s'", p->name, lo, hi, v);
    return x;
}

void opt_unknown(const opt_parser *p) {
    if (!p->name[0]) usage_fail("unexpected argument '%s'", p->arg);
    usage_fail("unknown option %s", p->name);
}
