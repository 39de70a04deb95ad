#!/usr/bin/env bash
# Tests grurec-synth: determinism, format, sizes, gzip, flag errors, learnable structure.
# usage: bash tests/synth_test.sh PATH_TO_grurec-synth
set -u
SYNTH=${1:?usage: synth_test.sh PATH_TO_grurec-synth}
[ -x "$SYNTH" ] || { echo "FAIL: $SYNTH is not an executable"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
run() { "$SYNTH" "$@" 2>>"$T/stderr.log"; }

# Checks a file: exact header, 3 integer fields per line, contiguous increasing session ids
# from 1, non-decreasing times within a session and across session starts, items in 1..N,
# session starts inside [start, start+window). Prints "OK events sessions" on success.
validate() {  # file items start window_seconds
    awk -F'\t' -v N="$2" -v S="$3" -v W="$4" '
        NR == 1 { if ($0 != "SessionId\tItemId\tTime") { print "bad header: " $0; bad = 1; exit 1 } next }
        {
            if (NF != 3 || $1 !~ /^[0-9]+$/ || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9]+$/) {
                print "line " NR ": not 3 integer fields: " $0; bad = 1; exit 1 }
            s = $1 + 0; i = $2 + 0; t = $3 + 0
            if (i < 1 || i > N) { print "line " NR ": item out of range: " i; bad = 1; exit 1 }
            if (s != sid) {
                if (s != sid + 1) { print "line " NR ": session id " s " after " sid; bad = 1; exit 1 }
                if (t < start) { print "line " NR ": session start goes back in time"; bad = 1; exit 1 }
                if (t < S || t >= S + W) { print "line " NR ": session start outside window"; bad = 1; exit 1 }
                sid = s; start = t
            } else if (t < last) { print "line " NR ": time goes back within a session"; bad = 1; exit 1 }
            last = t; events++
        }
        END { if (bad) exit 1; if (events > 0) print "OK", events, sid; else print "no events" }' "$1"
}

# 1. determinism
run --events 20000 --seed 7 --out "$T/a.tsv"
run --events 20000 --seed 7 --out "$T/b.tsv"
run --events 20000 --seed 8 --out "$T/c.tsv"
ha=$(sha256sum <"$T/a.tsv"); hb=$(sha256sum <"$T/b.tsv"); hc=$(sha256sum <"$T/c.tsv")
[ "$ha" = "$hb" ] && pass "same seed, same bytes" || fail "same seed gave different output"
[ "$ha" != "$hc" ] && pass "different seed, different bytes" || fail "seeds 7 and 8 gave identical output"
[ ! -e "$T/a.tsv.tmp" ] || fail "temporary file left behind"

# 2. format and the --events target (default max-length 200)
v=$(validate "$T/a.tsv" 5000 1600000000 $((30 * 86400)))
read -r okw ev ss <<<"$v"
if [ "$okw" != OK ]; then
    fail "format check of default output: $v"
else
    pass "format ok ($ev events, $ss sessions)"
    if [ "$ev" -ge 20000 ] && [ "$ev" -lt 20200 ]; then pass "--events 20000 gave $ev events"
    else fail "--events 20000 gave $ev events, want [20000, 20200)"; fi
fi

# 3. exact --sessions, other flags, --flag=value form, stdout
run --sessions 1000 --items 50 --days 1 --start 1000 --mean-length 3 --max-length 7 \
    --out "$T/s.tsv"
run --sessions=1000 --items=50 --days=1 --start=1000 --mean-length=3 --max-length=7 >"$T/s2.tsv"
cmp -s "$T/s.tsv" "$T/s2.tsv" && pass "--flag=value and stdout match" \
    || fail "--flag=value / stdout output differs from --flag value / --out"
v=$(validate "$T/s.tsv" 50 1000 86400)
read -r okw ev ss <<<"$v"
[ "$okw" = OK ] && [ "$ss" = 1000 ] && pass "--sessions 1000 gave 1000 sessions, format ok" \
    || fail "--sessions 1000: $v"
maxlen=$(awk -F'\t' 'NR > 1 { c[$1]++ } END { m = 0; for (s in c) if (c[s] > m) m = c[s]; print m }' "$T/s.tsv")
[ "$maxlen" -le 7 ] && pass "--max-length 7 respected" || fail "a session has $maxlen > 7 events"

# 4. gzip: flag, implied by .gz, and to stdout
run --events 20000 --seed 7 --gzip --out "$T/g.out"
run --events 20000 --seed 7 --out "$T/g.tsv.gz"
zcat "$T/g.out" | cmp -s - "$T/a.tsv" && pass "--gzip decompresses to the plain bytes" \
    || fail "--gzip output does not decompress to the plain output"
zcat "$T/g.tsv.gz" | cmp -s - "$T/a.tsv" && pass ".gz name implies gzip" \
    || fail "FILE.gz output does not decompress to the plain output"
run --events 20000 --seed 7 --gzip | zcat | cmp -s - "$T/a.tsv" && pass "--gzip to stdout" \
    || fail "--gzip to stdout does not decompress to the plain output"

# 5. bad flags: exit 2, one line on stderr, no output file
for args in "--items x" "--bogus" "--items 1" "--p-follow 1.5" "--days 0" "--events" \
            "--mean-length 0.5" "--seed -1" "--out" "--items 5x" "--items=5x" "--items=" "--gzip=1" \
            "--seed 18446744073709551616" "--days 1d"; do
    # shellcheck disable=SC2086
    "$SYNTH" --out "$T/bad.tsv" $args >/dev/null 2>"$T/err.txt"
    rc=$?
    lines=$(wc -l <"$T/err.txt")
    if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -e "$T/bad.tsv" ]; then pass "'$args' -> exit 2: $(cat "$T/err.txt")"
    else fail "'$args' gave exit $rc with $lines stderr lines: $(cat "$T/err.txt")"; fi
done
"$SYNTH" --out "$T/bad.tsv" --fast 2>&1 | grep -q 'unknown option --fast' && pass "unknown option named as such" \
    || fail "--fast is not called an unknown option"
"$SYNTH" --version | grep -q '^grurec-synth ' && pass "--version" || fail "--version output"
"$SYNTH" --help | grep -q -- '--p-follow' && pass "--help" || fail "--help output"
if [ -w /dev/full ]; then
    "$SYNTH" --events 100000 >/dev/full 2>"$T/err.txt"
    rc=$?
    [ "$rc" = 1 ] && pass "write error -> exit 1: $(cat "$T/err.txt")" \
        || fail "writing to /dev/full gave exit $rc"
fi
# A file-size limit makes write() fail mid-run: the temporary file must be removed.
(trap '' XFSZ; ulimit -f 1000; "$SYNTH" --events 1000000 --out "$T/big.tsv" 2>"$T/err.txt")
rc=$?
[ "$rc" = 1 ] && [ ! -e "$T/big.tsv" ] && [ ! -e "$T/big.tsv.tmp" ] \
    && pass "failed write -> exit 1, no file left: $(cat "$T/err.txt")" \
    || fail "failed write gave exit $rc or left a file: $(ls "$T" | grep big)"
# An output path that cannot be created is the user's to fix: exit 2, one line naming it.
: >"$T/afile"
for out in "$T/no/such/dir.tsv" "$T/afile/x.tsv"; do
    "$SYNTH" --events 1000 --out "$out" 2>"$T/err.txt"
    rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <"$T/err.txt")" = 1 ] && grep -q "^grurec-synth: $out: cannot create: " "$T/err.txt" \
        && pass "uncreatable output -> exit 2: $(cat "$T/err.txt")" || fail "uncreatable output $out gave exit $rc: $(cat "$T/err.txt")"
done

# 6. learnable structure: per frequent item, the share of its transitions that go to its
# top-1 and top-K (K = --successors = 4) next items. Chance is 1/N for top-1; even pure
# popularity (--p-follow 0) gives a top-4 share near 0.3 at N = 1000, Zipf 1.
structure() {  # file -> "mean_top1_share mean_top4_share items_measured"
    awk -F'\t' '
        NR > 1 { if ($1 == ps) { c[pi, $2]++; out[pi]++ } ps = $1; pi = $2 }
        END {
            for (k in c) {
                split(k, ab, SUBSEP); a = ab[1]; v = c[k]
                if (out[a] < 200) continue
                # keep the four largest counts per source item
                for (j = 1; j <= 4; j++) if (v > top[a, j]) {
                    for (m = 4; m > j; m--) top[a, m] = top[a, m - 1]
                    top[a, j] = v; break }
            }
            for (a in out) if (out[a] >= 200) {
                n++; s1 += top[a, 1] / out[a]
                s4 += (top[a, 1] + top[a, 2] + top[a, 3] + top[a, 4]) / out[a] }
            if (n) printf "%.3f %.3f %d\n", s1 / n, s4 / n, n; else print "0 0 0"
        }' "$1"
}
run --events 300000 --items 1000 --out "$T/p.tsv"
run --events 300000 --items 1000 --p-follow 0 --out "$T/p0.tsv"
read -r top1 top4 nitems < <(structure "$T/p.tsv")
read -r ctop1 ctop4 cn < <(structure "$T/p0.tsv")
if awk -v a="$top1" -v b="$top4" -v n="$nitems" 'BEGIN { exit !(n >= 20 && a > 100 / 1000 && b > 0.6) }'; then
    pass "structure: top-1 share $top1 (chance 0.001), top-4 share $top4 over $nitems items"
else
    fail "structure too weak: top-1 $top1, top-4 $top4 over $nitems items"
fi
if awk -v b="$top4" -v c="$ctop4" 'BEGIN { exit !(c < 0.5 && b > c + 0.2) }'; then
    pass "--p-follow 0 control: top-4 share $ctop4 < $top4"
else
    fail "--p-follow 0 control top-4 share $ctop4 vs $top4"
fi

# 7. drift: 4000 items, 100 released a day from day 1 (ids 2101..4000 are new: id I is
# released on day 1 + (I - 2101) / 100), popularity halving every 4 days. No item is
# clicked before its release, new items' share grows, and turning drift off (0, 0) gives
# the very log the flags' absence gives.
run --events 200000 --items 4000 --days 20 --new-items-per-day 100 --half-life 4 --seed 3 --out "$T/drift.tsv"
drift=$(awk -F'\t' 'NR > 1 { d = int(($3 - 1600000000) / 86400); n[d]++
        if ($2 > 2100) { nw[d]++; if (d < 1 + int(($2 - 2101) / 100)) early++ } }
        END { printf "%d %.3f %.3f %.3f", early, nw[0] / n[0], nw[5] / n[5], nw[19] / n[19] }' "$T/drift.tsv")
read -r early s0 s5 s19 <<<"$drift"
if [ "$early" = 0 ] && awk -v a="$s0" -v b="$s5" -v c="$s19" 'BEGIN { exit !(a == 0 && b > 0.1 && c > b + 0.2) }'; then
    pass "drift: no click before release; new items' share day 0/5/19: $s0 $s5 $s19"
else
    fail "drift: $early clicks before release; new items' share day 0/5/19: $s0 $s5 $s19"
fi
run --events 20000 --seed 7 --new-items-per-day 0 --half-life 0 --out "$T/d0.tsv"
[ "$(sha256sum <"$T/d0.tsv")" = "$ha" ] && pass "drift off: the same log as without the flags" \
    || fail "--new-items-per-day 0 --half-life 0 changed the log"
"$SYNTH" --items 100 --days 10 --new-items-per-day 20 --out "$T/x.tsv" 2>"$T/err.txt"
[ $? = 2 ] && grep -q "releases more than --items 100" "$T/err.txt" && pass "too many new items: exit 2" \
    || fail "too many new items: $(cat "$T/err.txt")"

# A device is written in place, never replaced by a renamed temporary file.
"$SYNTH" --events 2000 --out /dev/null 2>/dev/null || fail "--out /dev/null failed"
[ -c /dev/null ] || fail "--out /dev/null replaced the device with a regular file"

if [ "$FAILS" -gt 0 ]; then
    echo "synth_test: $FAILS check(s) failed"
    echo "--- grurec-synth stderr ---"; cat "$T/stderr.log"
    exit 1
fi
echo "synth_test: all checks passed"
