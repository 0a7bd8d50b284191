# shellcheck shell=bash disable=SC2034  # sourced by build_root.sh, build_wheel.sh and run_tests.sh, which use these
# Shared settings of the aarch64 emulation scripts (sourced, not run).
#
# Everything is cached under $M2V_EDGE_ARM64_CACHE (default: .cache/arm64 in the repo, ignored by git):
#   root/            Debian bookworm arm64 (debootstrap first stage + every .deb unpacked), root/.complete marks it done
#   site/            aarch64 wheels installed for the root's python3.11; site/.complete holds a digest of the
#                    requirements and constraints (site-inputs/) it was built from: a change rebuilds it
#   pycache/         bytecode the emulated Python compiles (PYTHONPYCACHEPREFIX: nothing is written into the repo)
#   wheel-build.*/   an aarch64 wheel build (build_wheel.sh): unpacked sdist, build.log; removed when it succeeds
#   work/            per-run files of run_tests.sh (rewritten on every run): the aarch64 m2v-edge wheel and its
#                    installation (installed/), the x86-64 bundle and reference vectors, pytest logs

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${M2V_EDGE_ARM64_CACHE:-$REPO/.cache/arm64}"
ROOT="$CACHE/root"
SITE="$CACHE/site"
WORK="$CACHE/work"
INSTALLED="$WORK/installed"  # the aarch64 m2v-edge wheel, installed by run_tests.sh with pip install --target
TEST_SUPPORT="$WORK/test-support"  # the repo's bench package alone (some test modules import it), not m2v_edge
SUITE="${M2V_EDGE_ARM64_SUITE:-bookworm}"
MIRROR="${M2V_EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EMULATED_PYTHON_VERSION="3.11"  # bookworm's python3
# In the root (from libpython3.11-dev and libpython3.11-stdlib): the headers the aarch64 core is compiled against,
# and the target's sysconfig data (extension suffix, compiler flags).
TARGET_PYTHON_INCLUDE="usr/include/python$EMULATED_PYTHON_VERSION"
TARGET_SYSCONFIGDATA="_sysconfigdata__linux_aarch64-linux-gnu"
# The aarch64 wheel's platform tag: the oldest glibc that the core's symbols allow. Its threads call pthread_create
# and pthread_join, which glibc 2.34 moved into libc.so.6 with the version GLIBC_2.34; everything else it uses is
# GLIBC_2.17, aarch64's first. Raspberry Pi OS Bookworm and Debian bookworm have glibc 2.36, Ubuntu 22.04 has 2.35.
# build_wheel.sh fails when auditwheel finds that the core needs another tag, rather than mislabel the wheel.
AARCH64_WHEEL_PLATFORM="manylinux_2_34_aarch64"
# What pip accepts on the device (bookworm: glibc 2.36, CPython 3.11), for downloading and installing aarch64
# wheels here. pip takes --platform tags literally (no expansion to older glibc versions), so list them all.
PIP_TARGET_FLAGS=(--only-binary=:all: --platform manylinux2014_aarch64)
for minor in $(seq 17 36); do PIP_TARGET_FLAGS+=(--platform "manylinux_2_${minor}_aarch64"); done
PIP_TARGET_FLAGS+=(--python-version "$EMULATED_PYTHON_VERSION" --implementation cp)
PIP_NOISE="is ignored: it is neither a file nor a directory"  # this machine's pip config names absent local indexes
# Time bound of one download try (debootstrap, pip download, apt-get); each is tried 3 times. A healthy mirror needs
# about 20 s for debootstrap and 10 s for the wheels.
DOWNLOAD_TIMEOUT="${M2V_EDGE_ARM64_DOWNLOAD_TIMEOUT:-300}"
# The host Python: the one that has m2v-edge (and its export extra) installed; make passes the venv's.
HOST_PYTHON="${HOST_PYTHON:-$REPO/.venv/bin/python}"
[ -x "$HOST_PYTHON" ] || HOST_PYTHON="$(command -v python3)"

log() { printf '[arm64 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# retry TRIES SECONDS COMMAND...: run COMMAND, killed after SECONDS, up to TRIES times with a growing pause.
# Used for every download so that a slow or flaky mirror on the first try does not fail the build.
retry() {
    local tries="$1" seconds="$2" attempt=1 status
    shift 2
    while :; do
        status=0
        timeout --kill-after=15 "$seconds" "$@" || status=$?
        [ "$status" -eq 0 ] && return 0
        if [ "$attempt" -ge "$tries" ]; then
            log "gave up after $attempt tries (last exit status $status): $*"
            return "$status"
        fi
        log "try $attempt of $tries failed (exit status $status$([ "$status" -eq 124 ] && echo ", timed out after ${seconds}s")); retrying in $((attempt * 10))s: $*"
        sleep $((attempt * 10))
        attempt=$((attempt + 1))
    done
}

# apt_install PACKAGE...: install Debian packages that a step needs and this machine lacks (needs root).
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages; install them: apt-get install -y --no-install-recommends $*"
    log "installing $*"
    local apt_opts=(-o Acquire::Retries=3 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30)
    retry 3 "$DOWNLOAD_TIMEOUT" apt-get "${apt_opts[@]}" update -q
    retry 3 "$DOWNLOAD_TIMEOUT" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
        --no-install-recommends "$@"
}

# The emulated interpreter: qemu user mode with ROOT as the library (and /proc/cpuinfo) prefix; on its path the
# installed aarch64 m2v-edge wheel, the aarch64 site-packages and the test support, never the work tree (whose
# m2v_edge holds this host's x86-64 core): PYTHONSAFEPATH keeps `python -m` from putting the working folder first.
EMULATED_PYTHON=(
    env PYTHONPATH="$INSTALLED:$SITE:$TEST_SUPPORT" PYTHONSAFEPATH=1 PYTHONPYCACHEPREFIX="$CACHE/pycache" PYTHONNOUSERSITE=1
    qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python$EMULATED_PYTHON_VERSION"
)
emulated_python() { "${EMULATED_PYTHON[@]}" "$@"; }
