"""Container limits from cgroups (v2 `cpu.max` / `memory.max`, v1 CFS quota / `memory.limit_in_bytes`).

The limit that applies to a process is the tightest one on the path from its cgroup up to the hierarchy's
root, so every existing level is read and the minimum kept. `/proc/self/cgroup` names the process's
cgroup; inside a container with its own cgroup namespace that is `/`, and the mount root holds the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from m2v_edge.device_profiles.sysfiles import ReadLog, shorten

CGROUP_MOUNT = "sys/fs/cgroup"
UNLIMITED_BYTES = 1 << 60
"""cgroup v1 reports "no limit" as a huge number (9223372036854771712 on 4 KiB-page systems)."""


@dataclass(frozen=True)
class CgroupLimits:
    """What cgroups allow this process: CPUs of quota, bytes of memory, CPUs in its cpuset (None: no limit)."""

    cpu_quota: float | None = None
    memory_bytes: int | None = None
    cpuset_cpus: int | None = None


def _own_cgroups(log: ReadLog) -> dict[str, str]:
    """Controller name -> cgroup path from /proc/self/cgroup ("" is the v2 unified hierarchy)."""
    text = log.read_text(log.root / "proc/self/cgroup", record_missing=False)
    paths: dict[str, str] = {}
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _levels(mount: Path, cgroup_path: str | None) -> list[Path]:
    """Existing folders from the process's cgroup up to the mount root (deepest first)."""
    levels = []
    if cgroup_path:
        relative = PurePosixPath(cgroup_path.lstrip("/"))
        for depth in range(len(relative.parts), 0, -1):
            candidate = mount.joinpath(*relative.parts[:depth])
            if candidate.is_dir():
                levels.append(candidate)
    levels.append(mount)
    return levels


def _cpus_in_list(text: str) -> int | None:
    """Count the CPUs of a cpuset list such as "0-3,6"; None when malformed."""
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not (high.isdigit() and int(high) >= int(low))):
            return None
        count += (int(high) - int(low) + 1) if high else 1
    return count or None


def _min(current: float | int | None, value: float | int | None) -> float | int | None:
    if value is None:
        return current
    return value if current is None else min(current, value)


def _read_v2(log: ReadLog, levels: list[Path]) -> CgroupLimits:
    quota: float | None = None
    memory: int | None = None
    cpuset: int | None = None
    for level in levels:
        cpu_max = log.read_text(level / "cpu.max", record_missing=False)
        if cpu_max is not None:
            fields = cpu_max.split()
            path = level / "cpu.max"
            if len(fields) >= 1 and fields[0] == "max":
                log.note(path, "unlimited", shorten(cpu_max))
            elif len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]) > 0:
                value = int(fields[0]) / int(fields[1])
                log.note(path, "ok", f"{shorten(cpu_max)} = {value:g} CPUs")
                quota = _min(quota, value)  # type: ignore[assignment]
            else:
                log.note(path, "malformed", f"expected 'QUOTA PERIOD' or 'max PERIOD', got {shorten(cpu_max)!r}")
        memory_max = log.read_text(level / "memory.max", record_missing=False)
        if memory_max is not None:
            path = level / "memory.max"
            value_text = memory_max.strip()
            if value_text == "max":
                log.note(path, "unlimited", "max")
            elif value_text.isdigit():
                log.note(path, "ok", f"{value_text} bytes = {int(value_text) // (1 << 20)} MiB")
                memory = _min(memory, int(value_text))  # type: ignore[assignment]
            else:
                log.note(path, "malformed", f"expected a byte count or 'max', got {shorten(memory_max)!r}")
        if cpuset is None:
            cpus = log.read_text(level / "cpuset.cpus.effective", record_missing=False)
            if cpus is not None and cpus.strip():
                count = _cpus_in_list(cpus)
                path = level / "cpuset.cpus.effective"
                if count:
                    log.note(path, "ok", f"{shorten(cpus)} = {count} CPUs")
                else:
                    log.note(path, "malformed", shorten(cpus))
                cpuset = count
    return CgroupLimits(quota, memory, cpuset)


def _read_v1(log: ReadLog, own: dict[str, str]) -> CgroupLimits:
    mount = log.root / CGROUP_MOUNT
    quota: float | None = None
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        if not (mount / name).is_dir():
            continue
        for level in _levels(mount / name, own.get("cpu")):
            quota_text = log.read_text(level / "cpu.cfs_quota_us", record_missing=False)
            period_text = log.read_text(level / "cpu.cfs_period_us", record_missing=False)
            if quota_text is None or period_text is None:
                continue
            path = level / "cpu.cfs_quota_us"
            try:
                quota_us, period_us = int(quota_text), int(period_text)
            except ValueError:
                log.note(path, "malformed", f"{shorten(quota_text)!r} / {shorten(period_text)!r}")
                continue
            if quota_us < 0 or period_us <= 0:
                log.note(path, "unlimited", f"{quota_us}")
            else:
                log.note(path, "ok", f"{quota_us}/{period_us} = {quota_us / period_us:g} CPUs")
                quota = _min(quota, quota_us / period_us)  # type: ignore[assignment]
        break
    memory: int | None = None
    if (mount / "memory").is_dir():
        for level in _levels(mount / "memory", own.get("memory")):
            text = log.read_text(level / "memory.limit_in_bytes", record_missing=False)
            if text is None:
                continue
            path = level / "memory.limit_in_bytes"
            if not text.strip().isdigit():
                log.note(path, "malformed", shorten(text))
            elif int(text) >= UNLIMITED_BYTES:
                log.note(path, "unlimited", text.strip())
            else:
                log.note(path, "ok", f"{text.strip()} bytes = {int(text) // (1 << 20)} MiB")
                memory = _min(memory, int(text))  # type: ignore[assignment]
    cpuset: int | None = None
    if (mount / "cpuset").is_dir():
        for level in _levels(mount / "cpuset", own.get("cpuset")):
            text = log.read_text(level / "cpuset.cpus", record_missing=False)
            if text is not None and text.strip():
                cpuset = _cpus_in_list(text)
                log.note(level / "cpuset.cpus", "ok" if cpuset else "malformed", shorten(text))
                break
    return CgroupLimits(quota, memory, cpuset)


def read_cgroup_limits(log: ReadLog) -> CgroupLimits:
    """The CPU quota, memory limit and cpuset size that apply under `log.root`, from v2 and v1 files."""
    mount = log.root / CGROUP_MOUNT
    if not mount.is_dir():
        log.note(mount, "missing", "no cgroup file system: no container limits")
        return CgroupLimits()
    own = _own_cgroups(log)
    v2 = _read_v2(log, _levels(mount, own.get("")))
    v1 = _read_v1(log, own)
    limits = CgroupLimits(
        cpu_quota=_min(v2.cpu_quota, v1.cpu_quota),  # type: ignore[arg-type]
        memory_bytes=_min(v2.memory_bytes, v1.memory_bytes),  # type: ignore[arg-type]
        cpuset_cpus=_min(v2.cpuset_cpus, v1.cpuset_cpus),  # type: ignore[arg-type]
    )
    if not any(read.path.startswith("/" + CGROUP_MOUNT) for read in log.reads):
        log.note(mount, "missing", "no cpu.max, memory.max or v1 limit files: no container limits")
    return limits
