#!/usr/bin/env bash
# Build the native core's libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined) and run each for a
# bounded time. Any crash, sanitizer report, leak, timeout or failed check fails the run, and libFuzzer leaves the
# input in .cache/fuzz/artifacts/ (copy it into fuzz/regressions/<harness>/ once the bug is fixed: every file there
# is replayed before fuzzing starts).
#
#   fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]      harnesses: vocab text pool (default: all three)
#
# Installs Debian's clang and its libFuzzer runtime with apt-get when they are missing. Needs the venv with the dev
# extra (.venv, `make .venv/.installed-dev+milvus`) to write the seeds (fuzz/make_seeds.py). The corpora libFuzzer
# grows are kept in .cache/fuzz/corpus/ between local runs.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_HARNESS=${1:-60}
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(vocab text pool)
PYTHON=${PYTHON:-.venv/bin/python}
CACHE=.cache/fuzz
CLANG=${CLANG:-}

PROBE='int LLVMFuzzerTestOneInput(const char *data, long size) { return 0; }'

# A clang that links libFuzzer here (the compiler and its runtime are separate Debian packages).
find_clang() {
    for candidate in ${CLANG:-} clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$candidate" >/dev/null &&
            echo "$PROBE" | "$candidate" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! CLANG=$(find_clang); then
    echo "fuzz: installing clang and libFuzzer (Debian: clang, libclang-rt-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    version=$(apt-cache depends clang | sed -n 's/.*Depends: clang-\([0-9]*\)$/\1/p' | head -1)
    apt-get install -y -qq clang "libclang-rt-${version}-dev" >/dev/null
    CLANG=$(find_clang) || { echo "fuzz: clang cannot build libFuzzer harnesses" >&2; exit 1; }
fi

mkdir -p "$CACHE/bin" "$CACHE/artifacts"
CORE=$(ls m2v_edge/_native/*.c | grep -v '/module')
for harness in "${HARNESSES[@]}"; do
    "$CLANG" -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Wall -Wextra -Werror -Wno-unused-parameter -I m2v_edge/_native -I fuzz \
        -o "$CACHE/bin/fuzz_$harness" "fuzz/fuzz_$harness.c" $CORE -lm
done

"$PYTHON" fuzz/make_seeds.py "$CACHE/seeds" >/dev/null
export M2V_FUZZ_FILES=$CACHE/seeds/files
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for harness in "${HARNESSES[@]}"; do
    binary=$CACHE/bin/fuzz_$harness
    saved=(fuzz/regressions/"$harness"/*)
    if [ -e "${saved[0]}" ]; then
        echo "fuzz: $harness: replaying ${#saved[@]} saved input(s) from fuzz/regressions/$harness"
        "$binary" -runs=1 "${saved[@]}" >"$CACHE/$harness.replay.log" 2>&1 ||
            { cat "$CACHE/$harness.replay.log"; echo "fuzz: $harness: a saved input fails again" >&2; exit 1; }
    fi
    corpus=$CACHE/corpus/$harness
    mkdir -p "$corpus"
    max_len=4096 # texts and pooling arrays; tokenizer files: the largest seed file
    [ "$harness" != vocab ] || max_len=$(find "$CACHE/seeds/vocab" -type f -printf '%s\n' | sort -n | tail -1)
    log=$CACHE/$harness.log
    echo "fuzz: $harness: ${SECONDS_PER_HARNESS}s (log: $log)"
    if ! "$binary" -max_total_time="$SECONDS_PER_HARNESS" -timeout=20 -rss_limit_mb=2048 -max_len="$max_len" \
        -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$CACHE/artifacts/$harness-" \
        "$corpus" "$CACHE/seeds/$harness" >"$log" 2>&1; then
        tail -60 "$log"
        echo "fuzz: $harness FAILED: the input is in $CACHE/artifacts/" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    echo "fuzz: $harness: ok, $runs runs, $speed/s, $coverage, corpus $(ls "$corpus" | wc -l) inputs"
done
