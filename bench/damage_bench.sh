#!/usr/bin/env bash
# Random damage to every file kind grurec reads (issue 18, finding 2): for each kind
# (meta: DATASET/meta.h5, shard: a train or test shard, model: model.h5, checkpoint: the
# newest ckpt-*.h5), N times: copy the pristine file, set one random byte to another
# random value, run the reader and classify what it did:
#   same      exit 0 and results identical to the pristine run's
#   refused   exit 2 with a line naming the file
#   fallback  (checkpoints) exit 0, a line naming the file as damaged and skipped, and the
#             same final parameters as the uninterrupted run (resumed from the one before)
#   FAIL-...  anything else: a signal, a sanitizer report, exit 1, exit 2 without the file
#             named, or exit 0 with other results
# Readers: meta: grurec recommend; shard: grurec train (reads the train shards and, in its
# final evaluation, the test ones); model: grurec eval; checkpoint: grurec train resuming.
# Prints the counts per kind and outcome; exits 1 if any run failed. Build with
# -DGRUREC_SANITIZE=ON to have ASan + UBSan watch every read.
# usage: bench/damage_bench.sh [FLIPS_PER_KIND] [BUILD_DIR] [SEED]   (default 200, build, 1)
set -uo pipefail
n=${1:-200}
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${2:-$here/build}" && pwd)
RANDOM=${3:-1}
grurec=$build/grurec prep=$build/data-prep/grurec-prep synth=$build/data-prep/grurec-synth
[ -x "$grurec" ] && [ -x "$prep" ] || { echo "build first: cmake --build ${2:-build}" >&2; exit 1; }
export GRUREC_DEVICE=cpu
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/damage-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- the pristine dataset, run and results ----
"$synth" --events 12000 --items 150 --days 10 --seed 7 --out "$work/c.tsv" 2>/dev/null
"$prep" --input "$work/c.tsv" --test-days 1 --shards 2 --out "$work/ds" --quiet || { echo "prep failed" >&2; exit 1; }
F=(--layers 8 --batch-size 16 --n-sample 8 --epochs 2 --log-every 0 --threads 1)
"$grurec" train --data "$work/ds" --out "$work/run" "${F[@]}" --checkpoint-every 200 --keep 10 >"$work/train.out" 2>&1 ||
    { echo "training failed: $(tail -2 "$work/train.out")" >&2; exit 1; }
ckpt=$(ls "$work/run"/ckpt-*.h5 | sort | tail -1)
awk -F'\t' 'NR > 1 && NR <= 400 {if ($1 != s) {if (line) print line; line = $2; s = $1} else line = line "," $2} END {print line}' \
    "$work/c.tsv" >"$work/sessions.txt"

# Runs the reader of a file of KIND laid out in $work/try: its results (what it prints,
# timings left out, and the parameters it wrote) in $work/got, its stderr in $work/err,
# its exit status returned.
hash() { "$grurec" inspect "$1" --hash 2>/dev/null | tail -1; }
reader() {  # KIND
    local rc
    case $1 in
    meta) "$grurec" recommend --data "$work/try/ds" --model "$work/run/model.h5" --input "$work/sessions.txt" -k 5 \
              >"$work/got" 2>"$work/err" ;;
    shard) "$grurec" train --data "$work/try/ds" --out "$work/try/run" "${F[@]}" >"$work/got" 2>"$work/err"
           rc=$?
           [ $rc -eq 0 ] && hash "$work/try/run/model.h5" >>"$work/got"
           return $rc ;;
    model) "$grurec" eval --data "$work/ds" --model "$work/try/model.h5" --json >"$work/got" 2>"$work/err" ;;
    checkpoint) "$grurec" train --data "$work/ds" --out "$work/try/run" "${F[@]}" --checkpoint-every 200 --keep 10 \
                    >"$work/got" 2>"$work/err"
                rc=$?
                [ $rc -eq 0 ] && hash "$work/try/run/model.h5" >>"$work/got"
                return $rc ;;
    esac
}
results() { sed 's/ ([0-9.]* s)//' "$work/got"; }
# Lays out $work/try with a pristine copy of what KIND's reader reads; prints the file to
# damage (PICK chooses the shard).
setup() {  # KIND PICK
    rm -rf "$work/try"
    mkdir -p "$work/try"
    case $1 in
    meta) cp -r "$work/ds" "$work/try/ds"; echo "$work/try/ds/meta.h5" ;;
    shard) cp -r "$work/ds" "$work/try/ds"
           local shards=("$work"/try/ds/{train,test}/shard-*.h5)
           echo "${shards[$2 % ${#shards[@]}]}" ;;
    model) cp "$work/run/model.h5" "$work/try/model.h5"; echo "$work/try/model.h5" ;;
    checkpoint) cp -r "$work/run" "$work/try/run"; rm "$work/try/run/model.h5"
                echo "$work/try/run/$(basename "$ckpt")" ;;
    esac
}
declare -A want
for kind in meta shard model checkpoint; do
    setup $kind 0 >/dev/null
    reader $kind || { echo "$kind: the pristine run fails: $(tail -2 "$work/err")" >&2; exit 1; }
    want[$kind]=$(results)
done
[ "$(tail -1 <<<"${want[checkpoint]}")" = "$(hash "$work/run/model.h5")" ] ||
    { echo "resuming the pristine checkpoint changes the model" >&2; exit 1; }

# Sets byte OFF of FILE to a random other value.
flip() {  # FILE OFF
    local old new
    old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    new=$(( (old + 1 + RANDOM % 255) % 256 ))
    printf "\\x$(printf %02x $new)" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

declare -A count
failures=0
for kind in meta shard model checkpoint; do
    for ((i = 0; i < n; i++)); do
        file=$(setup $kind $RANDOM)
        size=$(stat -c %s "$file")
        off=$(( (RANDOM * 32768 + RANDOM) % size ))
        flip "$file" $off
        reader $kind
        rc=$?
        if grep -aq "Sanitizer\|runtime error:" "$work/err"; then out=FAIL-sanitizer
        elif [ $rc -gt 128 ] || grep -aq "Segmentation\|Aborted\|core dumped" "$work/err"; then out=FAIL-signal
        elif [ $rc -eq 2 ] && grep -aqF "$file" "$work/err"; then out=refused
        elif [ $rc -eq 2 ]; then out=FAIL-exit2-unnamed
        elif [ $rc -ne 0 ]; then out=FAIL-exit$rc
        elif [ "$(results)" != "${want[$kind]}" ]; then out=FAIL-changed
        elif grep -aq "$(basename "$file") is damaged.*skipped" "$work/err"; then out=fallback
        else out=same; fi
        count[$kind,$out]=$(( ${count[$kind,$out]:-0} + 1 ))
        if [[ $out == FAIL* ]]; then
            failures=$((failures + 1))
            echo "$kind: $out: byte $off of $(basename "$file") (${size} bytes): $(grep -av '^\s*$' "$work/err" | head -3 | tr '\n' ' ')"
        fi
    done
done
printf '%-11s %6s %8s %9s %7s\n' kind same refused fallback failed
for kind in meta shard model checkpoint; do
    f=0
    for k in "${!count[@]}"; do [[ $k == $kind,FAIL* ]] && f=$((f + count[$k])); done
    printf '%-11s %6d %8d %9d %7d\n' $kind "${count[$kind,same]:-0}" "${count[$kind,refused]:-0}" \
        "${count[$kind,fallback]:-0}" $f
done
echo "$n flips per kind, seed ${3:-1}, $("$grurec" --version | head -1)$(grep -q 'GRUREC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && echo ', ASan + UBSan')"
[ $failures -eq 0 ]
