"""What detection reads about a machine: board model, CPUs, memory, container limits, architecture.

Everything is read from files under a root folder (`/` on a real device, a fake root in tests), so the
same code runs on any host. Nothing here raises for an unreadable file: it is recorded with the fallback
that was used instead.
"""

from __future__ import annotations

import math
import os
import platform
import struct
from dataclasses import dataclass, field
from pathlib import Path

from m2v_edge.device_profiles.cgroups import CgroupLimits, read_cgroup_limits
from m2v_edge.device_profiles.schema import normalize_architecture
from m2v_edge.device_profiles.sysfiles import ReadLog, SourceRead, shorten

DEVICE_TREE_MODEL_PATHS = ("proc/device-tree/model", "sys/firmware/devicetree/base/model")
WHEEL_ARCHITECTURES = ("x86_64", "aarch64")
"""Linux architectures with onnxruntime wheels on PyPI (manylinux): elsewhere onnxruntime must be built by hand."""


@dataclass(frozen=True)
class CpuInfo:
    """The parts of /proc/cpuinfo detection uses."""

    count: int
    """Processors listed (the online CPUs)."""
    implementers: tuple[str, ...] = ()
    """Distinct `CPU implementer` values (ARM), lower-case hex."""
    parts: tuple[str, ...] = ()
    """Distinct `CPU part` values (ARM), lower-case hex; big.LITTLE chips list two or more."""
    model_name: str | None = None
    """The `model name` line (x86, some ARM kernels)."""
    board_model: str | None = None
    """The `Model` line Raspberry Pi kernels add (the board, like the device-tree model)."""
    hardware: str | None = None


@dataclass(frozen=True)
class MachineFacts:
    """Everything detection knows about the machine, with the record of how it was learnt."""

    root: Path
    machine: str
    """Canonical architecture name (see `schema.ARCHITECTURES`)."""
    device_tree_model: str | None
    cpu: CpuInfo | None
    mem_total_mb: int | None
    limits: CgroupLimits = field(default_factory=CgroupLimits)
    affinity_cpus: int | None = None
    """CPUs this process may run on (sched_getaffinity), only known when the root is the real `/`."""
    reads: tuple[SourceRead, ...] = ()
    fallbacks: tuple[str, ...] = ()
    python_bits: int | None = None
    """Pointer size of this Python in bits, only known when the root is the real `/`."""

    @property
    def warnings(self) -> tuple[str, ...]:
        """What keeps the runtime from installing here as documented (no onnxruntime wheels for this system)."""
        if self.python_bits == 32 and self.machine in WHEEL_ARCHITECTURES:
            return (
                f"this Python is 32-bit on a 64-bit {self.machine} kernel (as in 32-bit Raspberry Pi OS): PyPI has no "
                "onnxruntime wheels for it; install a 64-bit OS (64-bit Raspberry Pi OS)",
            )
        if self.machine not in WHEEL_ARCHITECTURES:
            bits = "32-bit " if self.machine in ("armv6l", "armv7l", "i686") else ""
            return (
                f"{self.machine} is a {bits}architecture PyPI has no onnxruntime wheels for: install a 64-bit OS "
                "(aarch64 or x86_64, e.g. 64-bit Raspberry Pi OS) or build onnxruntime yourself",
            )
        return ()

    @property
    def memory_mb(self) -> int | None:
        """Usable memory in MiB: MemTotal, or the cgroup memory limit when lower."""
        values = [self.mem_total_mb]
        if self.limits.memory_bytes is not None:
            values.append(self.limits.memory_bytes // (1 << 20))
        known = [value for value in values if value is not None]
        return min(known) if known else None

    @property
    def board(self) -> str | None:
        """The board name: device-tree model, or the cpuinfo `Model` line when the device tree is unreadable."""
        if self.device_tree_model:
            return self.device_tree_model
        return self.cpu.board_model if self.cpu else None

    @property
    def cpu_limit(self) -> int | None:
        """Most threads worth running: the tightest of listed CPUs, cpuset, affinity and quota (floor, min 1)."""
        limits = []
        if self.cpu is not None:
            limits.append(self.cpu.count)
        if self.limits.cpuset_cpus is not None:
            limits.append(self.limits.cpuset_cpus)
        if self.affinity_cpus is not None:
            limits.append(self.affinity_cpus)
        if self.limits.cpu_quota is not None:
            limits.append(max(1, math.floor(self.limits.cpu_quota)))
        return min(limits) if limits else None


def parse_cpuinfo(text: str) -> CpuInfo | None:
    """Parse /proc/cpuinfo text (x86 or ARM layout); None when it lists no processor."""
    count = 0
    implementers: list[str] = []
    parts: list[str] = []
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            count += 1
        elif key == "CPU implementer" and value.lower() not in implementers:
            implementers.append(value.lower())
        elif key == "CPU part" and value.lower() not in parts:
            parts.append(value.lower())
        elif key in ("model name", "Model", "Hardware") and value and key not in found:
            found[key] = value
    if count == 0:
        return None
    return CpuInfo(
        count=count,
        implementers=tuple(implementers),
        parts=tuple(parts),
        model_name=found.get("model name"),
        board_model=found.get("Model"),
        hardware=found.get("Hardware"),
    )


def _device_tree_model(log: ReadLog) -> str | None:
    for relative in DEVICE_TREE_MODEL_PATHS:
        path = log.root / relative
        text = log.read_text(path, limit=4096)
        if text is None:
            continue
        model = text.replace("\x00", " ").strip()
        if model:
            log.note(path, "ok", shorten(model))
            return model
        log.note(path, "malformed", "empty")
    return None


def _cpuinfo(log: ReadLog, real_root: bool) -> CpuInfo | None:
    path = log.root / "proc/cpuinfo"
    text = log.read_text(path)
    info = parse_cpuinfo(text) if text is not None else None
    if info is not None:
        detail = f"{info.count} CPUs"
        if info.parts:
            detail += f", implementer {'/'.join(info.implementers)}, part {'/'.join(info.parts)}"
        if info.model_name:
            detail += f", {shorten(info.model_name, 40)}"
        log.note(path, "ok", detail)
        return info
    if text is not None:
        log.note(path, "malformed", "no 'processor' lines")
    count = os.cpu_count() if real_root else None
    if count:
        log.fallback(f"CPU count from os.cpu_count() = {count} because /proc/cpuinfo gave none")
        return CpuInfo(count=count)
    log.fallback("CPU count unknown: threads are not capped by the number of CPUs")
    return None


def _meminfo(log: ReadLog, real_root: bool) -> int | None:
    path = log.root / "proc/meminfo"
    text = log.read_text(path)
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        fields = value.split()
        if key.strip() == "MemTotal" and fields and fields[0].isdigit():
            mib = int(fields[0]) // 1024
            log.note(path, "ok", f"MemTotal {fields[0]} kB = {mib} MiB")
            return mib
    if text is not None:
        log.note(path, "malformed", "no 'MemTotal: N kB' line")
    if real_root and hasattr(os, "sysconf"):
        try:
            mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
        except (ValueError, OSError):
            mib = 0
        if mib > 0:
            log.fallback(f"memory size from sysconf = {mib} MiB because /proc/meminfo gave none")
            return mib
    log.fallback("memory size unknown: profiles with memory rules cannot match")
    return None


def _affinity(real_root: bool) -> int | None:
    if not real_root or not hasattr(os, "sched_getaffinity"):
        return None
    try:
        return len(os.sched_getaffinity(0)) or None
    except OSError:
        return None


def read_facts(root: str | Path = "/", *, machine: str | None = None) -> MachineFacts:
    """Read everything detection needs from `root` (never raises for missing or unreadable files)."""
    root_path = Path(root)
    real_root = root_path.resolve() == Path("/").resolve()
    log = ReadLog(root_path)
    if machine is None:
        machine = platform.machine()
        if not real_root:
            log.fallback(f"architecture of this host, platform.machine() = {machine!r}: no machine given for {root}")
    device_tree = _device_tree_model(log)
    cpu = _cpuinfo(log, real_root)
    if device_tree is None and cpu is not None and cpu.board_model:
        log.fallback(f"board from the 'Model' line of /proc/cpuinfo ({cpu.board_model!r}): no device-tree model")
    memory = _meminfo(log, real_root)
    limits = read_cgroup_limits(log)
    return MachineFacts(
        root=root_path,
        machine=normalize_architecture(machine or "unknown"),
        device_tree_model=device_tree,
        cpu=cpu,
        mem_total_mb=memory,
        limits=limits,
        affinity_cpus=_affinity(real_root),
        reads=tuple(log.reads),
        fallbacks=tuple(log.fallbacks),
        python_bits=struct.calcsize("P") * 8 if real_root else None,
    )
