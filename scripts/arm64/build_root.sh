#!/usr/bin/env bash
# Build (or reuse) the Debian bookworm arm64 root and the aarch64 wheels that the emulated tests run on.
#
#   scripts/arm64/build_root.sh          # the root and the site; idempotent: reuses what a completed earlier
#                                        # build left in the cache
#   scripts/arm64/build_root.sh root     # the root only (what the aarch64 wheel build needs: make dist)
#
# The root: qemu-user-static + debootstrap first stage (--foreign: nothing is executed) of python3 and
# libpython3.11-dev (the aarch64 Python headers that scripts/arm64/build_wheel.sh compiles the native core against),
# then every downloaded .deb unpacked with `dpkg -x`, then an ARM-format /proc/cpuinfo inside the root (onnxruntime's
# CPU detection crashes under qemu when it reads the host's x86 one). The site: aarch64 wheels for the root's
# CPython 3.11 installed with `pip install --target`. Each part is built in a `.partial` folder and renamed, with its
# marker written last, only when complete; an interrupted build is started over on the next run. Every download is
# retried with a time bound.
set -euo pipefail
# shellcheck source=scripts/arm64/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Bump when the way the root is built changes: a root built by an older recipe is rebuilt.
ROOT_RECIPE="m2v-edge arm64 root v2: $SUITE minbase+python3+libpython$EMULATED_PYTHON_VERSION-dev, dpkg -x, cpuinfo raspberry-pi-4 x2"

started=$SECONDS

ensure_tools() {
    command -v qemu-aarch64-static >/dev/null && command -v debootstrap >/dev/null && return 0
    apt_install qemu-user-static debootstrap
}

# ARM-format /proc/cpuinfo, as a Raspberry Pi 4 on 64-bit Raspberry Pi OS prints it, with two cores (CI has two).
write_cpuinfo() {
    local root="$1" cpu
    mkdir -p "$root/proc"
    {
        for cpu in 0 1; do
            printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$cpu"
            printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
        done
        printf 'Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 100000000badc0de\n'
        printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.1\n'
    } >"$root/proc/cpuinfo"
}

debootstrap_once() {  # a fresh first stage into $1 (called by retry: a failed try leaves nothing behind)
    rm -rf "$1"
    debootstrap --foreign --arch=arm64 --variant=minbase --include="python3,libpython$EMULATED_PYTHON_VERSION-dev" \
        "$SUITE" "$1" "$MIRROR"
}

build_root() {
    if [ -f "$ROOT/.complete" ] && [ "$(cat "$ROOT/.complete")" = "$ROOT_RECIPE" ]; then
        log "reusing the arm64 root $ROOT"
        return 0
    fi
    local stage="$ROOT.partial" debs deb
    log "building the arm64 root ($SUITE from $MIRROR) in $stage"
    export -f debootstrap_once
    export SUITE MIRROR EMULATED_PYTHON_VERSION
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash
    retry 3 "$DOWNLOAD_TIMEOUT" bash -c 'debootstrap_once "$1"' _ "$stage"
    shopt -s nullglob
    debs=("$stage"/var/cache/apt/archives/*.deb)
    shopt -u nullglob
    [ "${#debs[@]}" -gt 0 ] || die "debootstrap downloaded no packages into $stage/var/cache/apt/archives"
    log "unpacking ${#debs[@]} packages"
    for deb in "${debs[@]}"; do
        dpkg -x "$deb" "$stage"
    done
    rm -f "$stage"/var/cache/apt/archives/*.deb  # nobody reads them again
    [ -x "$stage/usr/bin/python$EMULATED_PYTHON_VERSION" ] || die "no python$EMULATED_PYTHON_VERSION in $stage after unpacking"
    [ -f "$stage/$TARGET_PYTHON_INCLUDE/Python.h" ] || die "no $TARGET_PYTHON_INCLUDE/Python.h in $stage after unpacking"
    write_cpuinfo "$stage"
    rm -rf "$ROOT"
    mv "$stage" "$ROOT"
    printf '%s\n' "$ROOT_RECIPE" >"$ROOT/.complete"
}

# What the emulated tests import: m2v-edge's own dependencies plus its `export` and `dev` extras (read from
# pyproject.toml, markers evaluated for the root's Python on aarch64); and the host venv's version of every package
# as a constraint, so that both sides of the parity check run the same onnxruntime, numpy, tokenizers, model2vec.
write_requirements() {  # write_requirements REQUIREMENTS_FILE CONSTRAINTS_FILE
    "$HOST_PYTHON" - "$REPO/pyproject.toml" "$EMULATED_PYTHON_VERSION" "$1" "$2" <<'PY'
import re
import sys
import tomllib
from importlib.metadata import distributions

try:
    from packaging.requirements import Requirement
except ImportError:  # pip vendors it
    from pip._vendor.packaging.requirements import Requirement

pyproject, python_version, requirements_file, constraints_file = sys.argv[1:]
with open(pyproject, "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = project.get("optional-dependencies", {})
environment = {
    "python_version": python_version, "python_full_version": f"{python_version}.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "platform_machine": "aarch64", "sys_platform": "linux",
    "os_name": "posix", "platform_system": "Linux", "extra": "",
}
normalise = lambda text: re.sub(r"[-_.]+", "-", text).lower()
wanted, pending, seen = set(), [*project["dependencies"], *extras.get("export", []), *extras.get("dev", [])], set()
while pending:
    requirement = Requirement(pending.pop(0))
    if requirement.marker is not None and not requirement.marker.evaluate(environment):
        continue
    if normalise(requirement.name) == normalise(project["name"]):  # "m2v-edge[export]" inside an extra
        for extra in sorted(requirement.extras - seen):
            seen.add(extra)
            pending += extras.get(extra, [])
        continue
    requirement.marker = None
    wanted.add(str(requirement))
with open(requirements_file, "w") as handle:
    handle.write("".join(f"{line}\n" for line in sorted(wanted)))
pins = {}
for dist in distributions():
    name = dist.metadata["Name"]
    if name and normalise(name) != normalise(project["name"]):
        pins.setdefault(normalise(name), f"{name}=={dist.version}")
with open(constraints_file, "w") as handle:
    handle.write("".join(f"{pin}\n" for pin in sorted(pins.values())))
PY
}

build_site() {
    local inputs="$CACHE/site-inputs" key
    mkdir -p "$inputs"
    write_requirements "$inputs/requirements.txt" "$inputs/constraints.txt"
    key="$(cat "$inputs/requirements.txt" "$inputs/constraints.txt" <(printf '%s\n' "${PIP_TARGET_FLAGS[@]}") \
        | sha256sum | cut -c1-16)"
    if [ -f "$SITE/.complete" ] && [ "$(cat "$SITE/.complete")" = "$key" ]; then
        log "reusing the aarch64 site-packages $SITE"
        return 0
    fi
    log "downloading aarch64 wheels for: $(tr '\n' ' ' <"$inputs/requirements.txt")"
    local wheels_stage="$CACHE/wheels.partial" site_stage="$SITE.partial"
    rm -rf "$wheels_stage" "$site_stage"
    mkdir -p "$wheels_stage"
    # pip resolves the dependencies for the target platform; a failed try's finished files are kept for the next.
    retry 3 "$DOWNLOAD_TIMEOUT" "$HOST_PYTHON" -m pip download --quiet --disable-pip-version-check --timeout 60 --retries 2 \
        "${PIP_TARGET_FLAGS[@]}" --dest "$wheels_stage" \
        -r "$inputs/requirements.txt" -c "$inputs/constraints.txt" 2> >(grep -v "$PIP_NOISE" >&2)
    log "installing $(find "$wheels_stage" -name '*.whl' | wc -l) wheels into $site_stage"
    "$HOST_PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --no-compile \
        "${PIP_TARGET_FLAGS[@]}" --target "$site_stage" "$wheels_stage"/*.whl 2> >(grep -v "$PIP_NOISE" >&2)
    rm -rf "$SITE" "$wheels_stage"
    mv "$site_stage" "$SITE"
    log "checking the emulated interpreter"  # only now: emulated_python reads $SITE
    emulated_python -c '
import platform, numpy, onnxruntime, tokenizers
assert platform.machine() == "aarch64", platform.machine()
print(f"  {platform.machine()} Python {platform.python_version()}, numpy {numpy.__version__}, "
      f"onnxruntime {onnxruntime.__version__}, tokenizers {tokenizers.__version__}")
' >&2 || die "the emulated interpreter cannot import the runtime dependencies"
    printf '%s\n' "$key" >"$SITE/.complete"
}

case "${1:-all}" in
    all) parts="root and site" ;;
    root) parts="root" ;;
    *) die "unknown argument '$1': pass nothing (the root and the site) or 'root' (the root only)" ;;
esac
mkdir -p "$CACHE"
# One build at a time per cache (make test's packaging tests and make test-arm64 may both get here first).
exec 9>"$CACHE/.build.lock"
flock 9
ensure_tools
build_root
[ "$parts" = root ] || build_site
log "arm64 $parts ready in $((SECONDS - started))s ($CACHE)"
