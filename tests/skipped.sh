#!/usr/bin/env bash
# One line saying which tests ctest skipped and why: the tests from ctest's own summary
# ("The following tests did not run: ... (Skipped)"), each one's reasons from its
# "SKIP: reason" lines in BUILD_DIR/Testing/Temporary/LastTest.log (tests/CMakeLists.txt:
# a skipping test prints them and exits 77). Called by tests/run_all.sh after ctest.
# usage: tests/skipped.sh BUILD_DIR CTEST_OUTPUT
set -uo pipefail
log=$1/Testing/Temporary/LastTest.log
total=$(grep -oE 'tests failed out of [0-9]+' "$2" | grep -oE '[0-9]+$')
mapfile -t names < <(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$2")
if [ ${#names[@]} -eq 0 ]; then
    echo "run_all: nothing skipped (${total:-?} tests)"
    exit 0
fi
items=()
for name in "${names[@]}"; do
    # This test's SKIP lines; Criterion's end in " [suite/test]" (tests/criterion_main.c):
    # where there are such lines, only they count, one reason with the number of tests.
    reasons=$(awk -v t="$name" '$0 ~ /^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); cur = $0; next }
                                 cur == t && /^SKIP: / { sub(/^SKIP: /, ""); print }' "$log")
    if grep -q ' \[[^]]*\]$' <<<"$reasons"; then
        n=$(grep -c ' \[[^]]*\]$' <<<"$reasons")
        reasons=$(grep ' \[[^]]*\]$' <<<"$reasons" | sed 's/ \[[^]]*\]$//' | awk '!seen[$0]++' | sed "1s/^/$n test$([ "$n" = 1 ] || echo s): /")
    fi
    reasons=$(awk '!seen[$0]++' <<<"$reasons" | paste -sd ';' | sed 's/;/; /g')
    items+=("$name (${reasons:-no reason printed})")
done
line=$(printf '%s, ' "${items[@]}")
echo "run_all: skipped ${#names[@]} of ${total:-?}: ${line%, }"
