# Shared by the end-to-end test scripts: `source "$(dirname "$0")/lib.sh" BUILD_DIR NAME`.
# Sets build, grurec, synth, prep, a work directory removed at exit, and the counters
# with ok / bad / check; finish prints "N passed, M failed" and sets the exit status
# (0, 1, or 77 when a part was skipped with skip_part).
set -uo pipefail
# The CPU backend unless a test asks for a device (--device wins over this), so that the
# tests mean the same on machines with GPUs.
export GRUREC_DEVICE=cpu
build=$1
grurec=$build/grurec synth=$build/data-prep/grurec-synth prep=$build/data-prep/grurec-prep
work=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0 passes=0 skips=0
ok() { passes=$((passes + 1)); }
# Skipping (tests/CMakeLists.txt: exit 77 is ctest's "skipped"; tests/run_all.sh lists the
# "SKIP: " lines): skip_all REASON ends the test here, skip_part REASON leaves out one part
# and lets the rest run (finish then exits 77 unless something failed).
skip_all() { echo "SKIP: $*"; exit 77; }
skip_part() { echo "SKIP: $*"; skips=$((skips + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
# The parameter hash of run RUN's model.h5 (grurec inspect --hash), or "none" without one.
hash_of() { "$grurec" inspect "$1/model.h5" --hash 2>/dev/null | tail -1 | grep . || echo "none"; }
# Whether this grurec runs ranks (built with MPI; see grurec --version).
with_mpi() { "$grurec" --version | grep -q 'ranks: mpi'; }
finish() {
    echo "$passes passed, $fails failed$([ "$skips" -eq 0 ] || echo ", $skips skipped")"
    [ "$fails" -eq 0 ] || return 1
    [ "$skips" -eq 0 ] || exit 77
}
