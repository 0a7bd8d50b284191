"""What the figures were measured on: CPU, cores, memory, load, Python and every installed library."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

KEY_LIBRARIES = (
    "m2v-edge",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "model2vec",
    "fastembed",
    "onnx",
    "safetensors",
    "huggingface-hub",
    "joblib",
    "matplotlib",
)
ENV_VARS = ("TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "RAYON_NUM_THREADS", "M2V_EDGE_PROFILE", "HF_HUB_OFFLINE")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (x86 `model name`; ARM `Hardware`/`Model` or implementer and part)."""
    fields: dict[str, str] = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if fields.get(key):
            return fields[key]
    if "CPU implementer" in fields:
        return f"implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return platform.processor() or platform.machine()


def _cgroup_cpus() -> str | None:
    quota = _read("/sys/fs/cgroup/cpu.max").split()
    if len(quota) == 2 and quota[0] != "max":
        return f"{int(quota[0]) / int(quota[1]):g}"
    return None


def _memory_mib() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(repo: Path, *args: str) -> str | None:
    try:
        # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock (read-only, never races a commit).
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine makes timings noisy)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(repo: Path) -> dict[str, Any]:
    """A JSON-ready description of this machine and software."""
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cgroup_cpu_limit": _cgroup_cpus(),
        "memory_mib": _memory_mib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in KEY_LIBRARIES},
        "all_distributions": dict(
            sorted({(d.metadata["Name"] or "?").lower(): d.version for d in metadata.distributions()}.items())
        ),
        "environment": {name: os.environ.get(name) for name in ENV_VARS},
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }
