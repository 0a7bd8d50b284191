# shellcheck shell=bash disable=SC2034  # sourced by build_root.sh and run_tests.sh, which use these names
# Shared settings of the aarch64 emulation scripts (sourced, not run).
#
# Everything is cached under $M2V_EDGE_ARM64_CACHE (default: .cache/arm64 in the repo, ignored by git):
#   root/            Debian bookworm arm64 (debootstrap first stage + every .deb unpacked), root/.complete marks it done
#   site/            aarch64 wheels installed for the root's python3.11; site/.complete holds a digest of the
#                    requirements and constraints (site-inputs/) it was built from: a change rebuilds it
#   pycache/         bytecode the emulated Python compiles (PYTHONPYCACHEPREFIX: nothing is written into the repo)
#   work/            per-run files: the x86-64 bundle and reference vectors (rewritten on every run)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${M2V_EDGE_ARM64_CACHE:-$REPO/.cache/arm64}"
ROOT="$CACHE/root"
SITE="$CACHE/site"
WORK="$CACHE/work"
SUITE="${M2V_EDGE_ARM64_SUITE:-bookworm}"
MIRROR="${M2V_EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EMULATED_PYTHON_VERSION="3.11"  # bookworm's python3
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

# The emulated interpreter: qemu user mode with ROOT as the library (and /proc/cpuinfo) prefix; the repo and the
# aarch64 site-packages on its path (m2v_edge is pure Python: it runs from the work tree).
EMULATED_PYTHON=(
    env PYTHONPATH="$REPO:$SITE" PYTHONPYCACHEPREFIX="$CACHE/pycache" PYTHONNOUSERSITE=1
    qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python$EMULATED_PYTHON_VERSION"
)
emulated_python() { "${EMULATED_PYTHON[@]}" "$@"; }
