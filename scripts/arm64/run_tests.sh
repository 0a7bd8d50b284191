#!/usr/bin/env bash
# `make test-arm64`: the aarch64 m2v-edge wheel, with its native core, tested inside an emulated aarch64 Python.
#
#   scripts/arm64/run_tests.sh [PYTEST_ARGS...]      # e.g. -x, -k parity (passed to both pytest runs)
#
# 1. builds or reuses the Debian bookworm arm64 root and the aarch64 wheels of the dependencies (build_root.sh);
# 2. builds the m2v-edge sdist of the work tree and cross-compiles its aarch64 wheel (build_wheel.sh), or takes the
#    wheel named by $M2V_EDGE_ARM64_WHEEL (e.g. the one in dist/), and installs it with pip for the device's
#    platform tags into $INSTALLED: the emulated tests import m2v_edge from there, never from the work tree;
# 3. on the x86-64 host: exports the shipped potion-base-8M and writes its reference vectors for 500 Debian texts
#    (tests/arm64/arm64_reference.py prepare);
# 4. runs pytest in Debian's aarch64 python3.11 under qemu-aarch64-static (user mode, no binfmt: the emulated
#    Python cannot start child processes, so only tests that need none are listed below), twice: with the native
#    core (ARM64_TESTS), then with it turned off, M2V_EDGE_NATIVE=0 (NATIVE_OFF_TESTS: the parity files).
set -euo pipefail
# shellcheck source=scripts/arm64/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# What runs under emulation with the native core: the aarch64 checks (vectors against x86-64, the core's ids against
# tokenizers), the core's own id tests (every code point through each normalizer takes 2-4 s here) less those that
# need tokenlearn-static-model (x86-64 only), and the runtime test files that start no child process. A test added
# here must pass on aarch64; one that runs `python -m ...` or the CLI as a process cannot.
NATIVE_IDS=tests/runtime/test_runtime_native_ids.py
ARM64_TESTS=(
    tests/arm64
    "$NATIVE_IDS"
    tests/runtime/test_runtime_native_mixed.py
    tests/runtime/test_runtime_parity.py
    tests/runtime/test_runtime_batching.py
    tests/runtime/test_runtime_errors.py
    tests/runtime/test_runtime_plain_onnxruntime.py
)
ARM64_DESELECT=(
    --deselect "$NATIVE_IDS::test_every_code_point_normalizes_as_in_tokenizers[precompiled-tokenlearn]"
    --deselect "$NATIVE_IDS::test_random_sequences_normalize_as_in_tokenizers[precompiled-tokenlearn]"
    --deselect "$NATIVE_IDS::test_real_pipelines_give_tokenizers_ids[tokenlearn]"
    --deselect tests/runtime/test_runtime_native_mixed.py::test_a_precompiled_normalizer_keeps_the_general_path
)
# The parity files again with the core turned off (the tokenizers paths), less three kinds of test:
# - the core's id checks (test_aarch64_native_ids.py, test_runtime_native_ids.py): they need the core;
# - the export comparison: the x86-64 bundle was exported with the core, so an aarch64 export without it differs
#   by design (no tokenizer.m2v);
# - potion-base-8M's fp16, int8 and int4 parity on 16,022 texts (about 3 minutes under emulation): its variants
#   differ only in the graph, which the first run checked; the ids, which are what this run is about, are the same
#   for every variant, and fp32 (the tightest bound) checks them here. Every tiny model keeps every variant.
NATIVE_OFF_TESTS=(
    tests/arm64/test_aarch64_parity.py
    tests/runtime/test_runtime_parity.py
)
NATIVE_OFF_DESELECT=(--deselect tests/arm64/test_aarch64_parity.py::test_export_on_aarch64_is_byte_identical)
for variant in fp16 int8 int4; do
    NATIVE_OFF_DESELECT+=(
        --deselect "tests/runtime/test_runtime_parity.py::test_potion_parity_on_debian_texts_and_edge_cases[$variant]"
    )
done
# Upper bound on each emulated pytest run (seconds).
PYTEST_TIMEOUT="${M2V_EDGE_ARM64_PYTEST_TIMEOUT:-1200}"

started=$SECONDS
bash "$REPO/scripts/arm64/build_root.sh"
build_seconds=$((SECONDS - started))

for path in "${ARM64_TESTS[@]}" "${NATIVE_OFF_TESTS[@]}"; do
    [ -e "$REPO/${path%%::*}" ] || die "${path%%::*} is listed in ${BASH_SOURCE[0]} but does not exist"
done
rm -rf "$WORK"
mkdir -p "$WORK/dist" "$TEST_SUPPORT"
ln -s "$REPO/bench" "$TEST_SUPPORT/bench"

step=$SECONDS
if [ -n "${M2V_EDGE_ARM64_WHEEL:-}" ]; then
    wheel="$(realpath "$M2V_EDGE_ARM64_WHEEL")"
    log "testing the given wheel $wheel"
else
    log "building the m2v-edge sdist and its aarch64 wheel"
    "$HOST_PYTHON" -m build --sdist --outdir "$WORK/dist" "$REPO" >"$WORK/sdist.log" 2>&1 \
        || { tail -n 20 "$WORK/sdist.log" >&2; die "python -m build --sdist failed (log: $WORK/sdist.log)"; }
    bash "$REPO/scripts/arm64/build_wheel.sh" "$WORK"/dist/m2v_edge-*.tar.gz "$WORK/dist"
    wheel="$(find "$WORK/dist" -name 'm2v_edge-*.whl')"
fi
# The platform tags a bookworm device's pip accepts: a wheel tagged for anything else is refused here too.
"$HOST_PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --no-compile \
    "${PIP_TARGET_FLAGS[@]}" --target "$INSTALLED" "$wheel" 2> >(grep -v "$PIP_NOISE" >&2)
[ -f "$INSTALLED/m2v_edge/__init__.py" ] || die "pip installed no m2v_edge into $INSTALLED"
wheel_seconds=$((SECONDS - step))

log "computing the x86-64 reference ($HOST_PYTHON)"
step=$SECONDS
XDG_CACHE_HOME="$WORK/xdg-host" XDG_CONFIG_HOME="$WORK/xdg-config" "$HOST_PYTHON" "$REPO/tests/arm64/arm64_reference.py" prepare "$WORK"
prepare_seconds=$((SECONDS - step))

# emulated_pytest NAME NATIVE PYTEST_ARGS...: one pytest run under qemu, its output also in $WORK/pytest-NAME.log and
# its figures in $WORK/figures-NAME.txt; NATIVE=0 turns the core off.
emulated_pytest() {
    local name="$1" native="$2"
    shift 2
    log "running pytest under qemu-aarch64-static ($name, M2V_EDGE_NATIVE=$native): $*"
    (
        cd "$REPO"
        unset M2V_EDGE_PROFILE
        export M2V_EDGE_NATIVE="$native" M2V_EDGE_ARM64_INSTALLED="$INSTALLED"
        export M2V_EDGE_ARM64_REFERENCE="$WORK" M2V_EDGE_ARM64_FIGURES="$WORK/figures-$name.txt"
        # Private caches and no user profiles (a tuned profile in ~/.config must not change what detection picks).
        export M2V_EDGE_PARITY_FIGURES="$WORK/parity-figures-$name.txt"
        export XDG_CACHE_HOME="$WORK/xdg-$name" XDG_CONFIG_HOME="$WORK/xdg-config" HF_HUB_OFFLINE=1
        timeout --foreground --kill-after=30 "$PYTEST_TIMEOUT" "${EMULATED_PYTHON[@]}" -m pytest \
            -p no:cacheprovider --basetemp "$WORK/pytest-tmp-$name" "$@"
    ) 2>&1 | tee "$WORK/pytest-$name.log"
    return "${PIPESTATUS[0]}"
}

step=$SECONDS
native_status=0
emulated_pytest native 1 "${ARM64_DESELECT[@]}" "${ARM64_TESTS[@]}" "$@" || native_status=$?
native_seconds=$((SECONDS - step))
step=$SECONDS
off_status=0
emulated_pytest native-off 0 "${NATIVE_OFF_DESELECT[@]}" "${NATIVE_OFF_TESTS[@]}" "$@" || off_status=$?
off_seconds=$((SECONDS - step))

log "root+site ${build_seconds}s, aarch64 wheel ${wheel_seconds}s, x86-64 reference ${prepare_seconds}s," \
    "emulated pytest ${native_seconds}s with the native core + ${off_seconds}s without, total $((SECONDS - started))s"
for name in native native-off; do
    log "$name: $(grep -E '[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s' "$WORK/pytest-$name.log" | tail -n 1 | tr -d '=')"
    if [ -f "$WORK/figures-$name.txt" ]; then
        log "figures, $name (also in $WORK/figures-$name.txt):"
        sed 's/^/    /' "$WORK/figures-$name.txt" >&2
    fi
done
for status in "$native_status" "$off_status"; do
    [ "$status" -eq 124 ] && log "an emulated pytest run timed out after ${PYTEST_TIMEOUT}s"
    [ "$status" -eq 0 ] || exit "$status"
done
exit 0
