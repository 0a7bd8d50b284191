#!/usr/bin/env bash
# `make test-arm64`: the runtime tests and the aarch64-vs-x86-64 parity check, inside an emulated aarch64 Python.
#
#   scripts/arm64/run_tests.sh [PYTEST_ARGS...]      # e.g. -x, -k parity
#
# 1. builds or reuses the Debian bookworm arm64 root and the aarch64 wheels (build_root.sh);
# 2. on the x86-64 host: exports the shipped potion-base-8M and writes its reference vectors for 500 Debian texts
#    (tests/arm64/arm64_reference.py prepare);
# 3. runs pytest in Debian's aarch64 python3.11 under qemu-aarch64-static (user mode, no binfmt: the emulated
#    Python cannot start child processes, so only tests that need none are listed below).
set -euo pipefail
# shellcheck source=scripts/arm64/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# What runs under emulation: the parity check and the runtime test files that start no child process.
# A test file added here must pass on aarch64; one that runs `python -m ...` or the CLI as a process cannot.
ARM64_TESTS=(
    tests/arm64
    tests/runtime/test_runtime_parity.py
    tests/runtime/test_runtime_batching.py
    tests/runtime/test_runtime_errors.py
    tests/runtime/test_runtime_plain_onnxruntime.py
)
# Upper bound on the emulated pytest run (seconds).
PYTEST_TIMEOUT="${M2V_EDGE_ARM64_PYTEST_TIMEOUT:-1200}"

started=$SECONDS
bash "$REPO/scripts/arm64/build_root.sh"
build_seconds=$((SECONDS - started))

for path in "${ARM64_TESTS[@]}"; do
    [ -e "$REPO/$path" ] || die "$path is listed in ${BASH_SOURCE[0]} but does not exist"
done

log "computing the x86-64 reference ($HOST_PYTHON)"
rm -rf "$WORK"
mkdir -p "$WORK"
step=$SECONDS
XDG_CACHE_HOME="$WORK/xdg-host" XDG_CONFIG_HOME="$WORK/xdg-config" "$HOST_PYTHON" "$REPO/tests/arm64/arm64_reference.py" prepare "$WORK"
prepare_seconds=$((SECONDS - step))

log "running pytest under qemu-aarch64-static: ${ARM64_TESTS[*]} $*"
step=$SECONDS
status=0
(
    cd "$REPO"
    unset M2V_EDGE_PROFILE
    export M2V_EDGE_ARM64_REFERENCE="$WORK" M2V_EDGE_ARM64_FIGURES="$WORK/figures.txt"
    # Private caches and no user profiles (a tuned profile in ~/.config must not change what detection picks).
    export M2V_EDGE_PARITY_FIGURES="$WORK/parity_figures.txt" XDG_CACHE_HOME="$WORK/xdg" XDG_CONFIG_HOME="$WORK/xdg-config"
    export HF_HUB_OFFLINE=1
    timeout --foreground --kill-after=30 "$PYTEST_TIMEOUT" "${EMULATED_PYTHON[@]}" -m pytest \
        -p no:cacheprovider --basetemp "$WORK/pytest-tmp" "${ARM64_TESTS[@]}" "$@"
) || status=$?
pytest_seconds=$((SECONDS - step))

log "root+site ${build_seconds}s, x86-64 reference ${prepare_seconds}s, emulated pytest ${pytest_seconds}s, total $((SECONDS - started))s"
[ -f "$WORK/figures.txt" ] && log "figures (also in $WORK/figures.txt):" && sed 's/^/    /' "$WORK/figures.txt" >&2
[ "$status" -eq 124 ] && log "the emulated pytest run timed out after ${PYTEST_TIMEOUT}s"
exit "$status"
