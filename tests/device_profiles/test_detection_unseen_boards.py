"""Detection on boards and systems that have no fixture folder, built in tmp_path from their public texts.

Each fake root holds the board's `/proc/device-tree/model` (with the kernel's trailing NUL), `/proc/cpuinfo` in
the layout its kernel prints (one block per CPU; the Raspberry Pi kernel's Hardware/Revision/Model lines; no
`model name` line on mainline arm64 kernels, one on NVIDIA's L4T kernels) and `/proc/meminfo` with a MemTotal
typical of the board. Expectations come from the hardware (SoC, CPU count, memory) and the profiles' documented
purpose (README "Raspberry Pi"), not from m2v-edge's output.
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import pytest

from m2v_edge.cli import main
from m2v_edge.device_profiles import explain_detection, explain_resolution, read_facts, sysfiles
from m2v_edge.device_profiles.detect import TOKENS_PER_MIB
from m2v_edge.runtime.session import session_options

# --- real /proc texts -------------------------------------------------------------------------------------

A53_FEATURES = "fp asimd evtstrm crc32 cpuid"
A72_FEATURES = "fp asimd evtstrm crc32 cpuid"
A76_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
V7_FEATURES = "half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm "
V6_FEATURES = "half thumb fastmult vfp edsp java tls "
APPLE_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 "
    "asimddp sha512 asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp flagm2 frint"
)


def arm_cpu(
    index: int,
    implementer: str,
    variant: str,
    part: str,
    revision: str,
    features: str,
    *,
    architecture: int = 8,
    model_name: str | None = None,
    bogomips: str = "108.00",
) -> str:
    """One CPU block of an ARM /proc/cpuinfo."""
    text = f"processor\t: {index}\n"
    if model_name:
        text += f"model name\t: {model_name}\n"
    return text + (
        f"BogoMIPS\t: {bogomips}\nFeatures\t: {features}\nCPU implementer\t: {implementer}\n"
        f"CPU architecture: {architecture}\nCPU variant\t: {variant}\nCPU part\t: {part}\n"
        f"CPU revision\t: {revision}\n\n"
    )


def pi_tail(revision: str, model: str) -> str:
    """The lines the Raspberry Pi kernel appends to /proc/cpuinfo."""
    serial = "10000000abcdef01"
    return f"Hardware\t: BCM2835\nRevision\t: {revision}\nSerial\t\t: {serial}\nModel\t\t: {model}\n"


def x86_cpus(count: int, name: str, model: int) -> str:
    return "".join(
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: {model}\nmodel name\t: {name}\n"
        f"stepping\t: 8\ncpu MHz\t\t: 2000.000\ncache size\t: 4096 KB\nphysical id\t: 0\nsiblings\t: {count}\n"
        f"core id\t\t: {i}\ncpu cores\t: {count}\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep sse sse2\n\n"
        for i in range(count)
    )


def meminfo(total_kb: int, *, available: bool = True) -> str:
    text = f"MemTotal:       {total_kb:>9} kB\nMemFree:        {total_kb // 2:>9} kB\n"
    if available:
        text += f"MemAvailable:   {total_kb * 3 // 4:>9} kB\n"
    return text + "Buffers:           10000 kB\nCached:           200000 kB\nSwapCached:            0 kB\n"


def pi_cpus(count: int, variant: str, part: str, revision: str, features: str) -> str:
    return "".join(arm_cpu(i, "0x41", variant, part, revision, features) for i in range(count))


def rk3588() -> str:
    """Rockchip RK3588(S): CPUs 0-3 Cortex-A55, 4-7 Cortex-A76 (mainline arm64 layout, no 'model name')."""
    little = "".join(arm_cpu(i, "0x41", "0x2", "0xd05", "0", A76_FEATURES, bogomips="48.00") for i in range(4))
    big = "".join(arm_cpu(i, "0x41", "0x4", "0xd0b", "0", A76_FEATURES, bogomips="48.00") for i in range(4, 8))
    return little + big


# name -> (uname -m, device-tree model or None (ACPI / no device tree), cpuinfo, MemTotal kB)
BOARDS: dict[str, tuple[str, str | None, str, int]] = {
    "pi-400": (
        "aarch64", "Raspberry Pi 400 Rev 1.0",
        pi_cpus(4, "0x0", "0xd08", "3", A72_FEATURES) + pi_tail("c03130", "Raspberry Pi 400 Rev 1.0"), 3882788,
    ),
    "cm4-2gb": (
        "aarch64", "Raspberry Pi Compute Module 4 Rev 1.0",
        pi_cpus(4, "0x0", "0xd08", "3", A72_FEATURES) + pi_tail("b03140", "Raspberry Pi Compute Module 4 Rev 1.0"),
        1891580,
    ),
    "cm5-4gb": (
        "aarch64", "Raspberry Pi Compute Module 5 Rev 1.0",
        pi_cpus(4, "0x4", "0xd0b", "1", A76_FEATURES) + pi_tail("c04180", "Raspberry Pi Compute Module 5 Rev 1.0"),
        4043104,
    ),
    "cm5-lite": (
        "aarch64", "Raspberry Pi Compute Module 5 Lite Rev 1.0",
        pi_cpus(4, "0x4", "0xd0b", "1", A76_FEATURES)
        + pi_tail("c04180", "Raspberry Pi Compute Module 5 Lite Rev 1.0"),
        4043104,
    ),
    "pi-5-2gb": (
        "aarch64", "Raspberry Pi 5 Model B Rev 1.1",
        pi_cpus(4, "0x4", "0xd0b", "1", A76_FEATURES) + pi_tail("b04171", "Raspberry Pi 5 Model B Rev 1.1"), 2040976,
    ),
    "pi-5-4gb": (
        "aarch64", "Raspberry Pi 5 Model B Rev 1.0",
        pi_cpus(4, "0x4", "0xd0b", "1", A76_FEATURES) + pi_tail("c04170", "Raspberry Pi 5 Model B Rev 1.0"), 4139648,
    ),
    "pi-5-16gb": (
        "aarch64", "Raspberry Pi 5 Model B Rev 1.1",
        pi_cpus(4, "0x4", "0xd0b", "1", A76_FEATURES) + pi_tail("e04171", "Raspberry Pi 5 Model B Rev 1.1"), 16550816,
    ),
    "pi-4-1gb": (
        "aarch64", "Raspberry Pi 4 Model B Rev 1.1",
        pi_cpus(4, "0x0", "0xd08", "3", A72_FEATURES) + pi_tail("a03111", "Raspberry Pi 4 Model B Rev 1.1"), 905740,
    ),
    "pi-3-a-plus": (  # 512 MiB Pi 3: its own profile, fitted to the small memory
        "aarch64", "Raspberry Pi 3 Model A Plus Rev 1.0",
        pi_cpus(4, "0x0", "0xd03", "4", A53_FEATURES) + pi_tail("9020e0", "Raspberry Pi 3 Model A Plus Rev 1.0"),
        443524,
    ),
    "pi-2-armv7l": (
        "armv7l", "Raspberry Pi 2 Model B Rev 1.1",
        "".join(
            arm_cpu(i, "0x41", "0x0", "0xc07", "5", V7_FEATURES, architecture=7,
                    model_name="ARMv7 Processor rev 5 (v7l)", bogomips="38.40")
            for i in range(4)
        ) + pi_tail("a01041", "Raspberry Pi 2 Model B Rev 1.1"),
        944040,
    ),
    "zero-w-armv6l": (
        "armv6l", "Raspberry Pi Zero W Rev 1.1",
        arm_cpu(0, "0x41", "0x0", "0xb76", "7", V6_FEATURES, architecture=7,
                model_name="ARMv6-compatible processor rev 7 (v6l)", bogomips="997.08")
        + pi_tail("9000c1", "Raspberry Pi Zero W Rev 1.1"),
        443524,
    ),
    "pi-1-b-plus-armv6l": (
        "armv6l", "Raspberry Pi Model B Plus Rev 1.2",
        arm_cpu(0, "0x41", "0x0", "0xb76", "7", V6_FEATURES, architecture=7,
                model_name="ARMv6-compatible processor rev 7 (v6l)", bogomips="697.95")
        + pi_tail("0010", "Raspberry Pi Model B Plus Rev 1.2"),
        443524,
    ),
    "jetson-nano": (  # Tegra X1: 4 x Cortex-A57, 4 GiB (L4T R32)
        "aarch64", "NVIDIA Jetson Nano Developer Kit",
        "".join(
            arm_cpu(i, "0x41", "0x1", "0xd07", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32",
                    model_name="ARMv8 Processor rev 1 (v8l)", bogomips="38.40")
            for i in range(4)
        ),
        4059116,
    ),
    "jetson-xavier-nx": (  # 6 x NVIDIA Carmel (implementer 0x4e, part 0x004), 8 GiB
        "aarch64", "NVIDIA Jetson Xavier NX Developer Kit",
        "".join(
            arm_cpu(i, "0x4e", "0x0", "0x004", "0", A76_FEATURES, model_name="ARMv8 Processor rev 0 (v8l)",
                    bogomips="62.50")
            for i in range(6)
        ),
        7765444,
    ),
    "jetson-agx-orin": (  # 12 x Cortex-A78AE, 32 GiB: the same CPU part as the Orin Nano, another board
        "aarch64", "Jetson AGX Orin Developer Kit",
        "".join(
            arm_cpu(i, "0x41", "0x1", "0xd42", "1", A76_FEATURES, model_name="ARMv8 Processor rev 1 (v8l)",
                    bogomips="62.50")
            for i in range(12)
        ),
        31988580,
    ),
    "orange-pi-5": ("aarch64", "Orange Pi 5", rk3588(), 7931948),
    "rock-5b": ("aarch64", "Radxa ROCK 5B", rk3588(), 16125236),
    "odroid-n2": (  # Amlogic S922X: 2 x Cortex-A53 + 4 x Cortex-A73
        "aarch64", "Hardkernel ODROID-N2",
        "".join(arm_cpu(i, "0x41", "0x0", "0xd03", "4", A53_FEATURES, bogomips="48.00") for i in range(2))
        + "".join(arm_cpu(i, "0x41", "0x0", "0xd09", "2", A53_FEATURES, bogomips="48.00") for i in range(2, 6)),
        3803900,
    ),
    "asahi-m1": (  # Apple M1: 4 Icestorm (0x022) + 4 Firestorm (0x023), implementer 0x61
        "aarch64", "Apple Mac mini (M1, 2020)",
        "".join(arm_cpu(i, "0x61", "0x1", "0x022", "1", APPLE_FEATURES, bogomips="48.00") for i in range(4))
        + "".join(arm_cpu(i, "0x61", "0x1", "0x023", "1", APPLE_FEATURES, bogomips="48.00") for i in range(4, 8)),
        16145152,
    ),
    "graviton2-m6g-large": (  # ACPI server: no device tree; 2 x Neoverse N1
        "aarch64", None,
        "".join(arm_cpu(i, "0x41", "0x3", "0xd0c", "1", A76_FEATURES, bogomips="243.75") for i in range(2)),
        7975344,
    ),
    "graviton3-c7g-xlarge": (  # 4 x Neoverse V1
        "aarch64", None,
        "".join(arm_cpu(i, "0x41", "0x1", "0xd40", "1", APPLE_FEATURES, bogomips="2100.00") for i in range(4)),
        7911188,
    ),
    "qemu-virt-cortex-a72": (  # qemu-system-aarch64 -M virt -cpu cortex-a72: a Pi 4's CPU, but not a Pi 4
        "aarch64", None,
        "".join(arm_cpu(i, "0x41", "0x0", "0xd08", "3", A72_FEATURES, bogomips="125.00") for i in range(2)),
        2014512,
    ),
    "celeron-j4125": ("x86_64", None, x86_cpus(4, "Intel(R) Celeron(R) J4125 CPU @ 2.00GHz", 122), 7990000),
    "atom-x5-z8350": ("x86_64", None, x86_cpus(4, "Intel(R) Atom(TM) x5-Z8350  CPU @ 1.44GHz", 76), 1963360),
    "qemu-x86-vm": ("x86_64", None, x86_cpus(2, "QEMU Virtual CPU version 2.5+", 6), 2030940),
}

# name -> (profile, CPUs the hardware has). Pi 400 and CM4 are BCM2711 boards (raspberry-pi-4); CM5 and every
# Pi 5 are BCM2712 (raspberry-pi-5); other 64-bit ARM boards, including Jetsons other than the Orin Nano and
# Apple/Graviton machines, are generic-arm64; x86-64 PCs and VMs are x86-64; a 512 MiB board without a profile
# of its own is low-memory; a 32-bit Pi 2 has no profile (generic).
EXPECTED = {
    "pi-400": ("raspberry-pi-4", 4),
    "cm4-2gb": ("raspberry-pi-4", 4),
    "cm5-4gb": ("raspberry-pi-5", 4),
    "cm5-lite": ("raspberry-pi-5", 4),
    "pi-5-2gb": ("raspberry-pi-5", 4),
    "pi-5-4gb": ("raspberry-pi-5", 4),
    "pi-5-16gb": ("raspberry-pi-5", 4),
    "pi-4-1gb": ("raspberry-pi-4", 4),
    "pi-3-a-plus": ("raspberry-pi-3", 4),
    "pi-2-armv7l": ("generic", 4),
    "zero-w-armv6l": ("low-memory", 1),
    "pi-1-b-plus-armv6l": ("low-memory", 1),
    "jetson-nano": ("generic-arm64", 4),
    "jetson-xavier-nx": ("generic-arm64", 6),
    "jetson-agx-orin": ("generic-arm64", 12),
    "orange-pi-5": ("generic-arm64", 8),
    "rock-5b": ("generic-arm64", 8),
    "odroid-n2": ("generic-arm64", 6),
    "asahi-m1": ("generic-arm64", 8),
    "graviton2-m6g-large": ("generic-arm64", 2),
    "graviton3-c7g-xlarge": ("generic-arm64", 4),
    "qemu-virt-cortex-a72": ("generic-arm64", 2),
    "celeron-j4125": ("x86-64", 4),
    "atom-x5-z8350": ("x86-64", 4),
    "qemu-x86-vm": ("x86-64", 2),
}
SMALL_MEMORY_MIB = 768  # README: "with 768 MiB or less it also turns the ASCII fast path off"


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def build_root(tmp_path: Path, board: str, files: dict[str, str | bytes | None] | None = None) -> Path:
    machine, model, cpuinfo, mem_kb = BOARDS[board]
    root = tmp_path / f"root-{board}"
    if model is not None:
        write(root / "proc/device-tree/model", model.encode() + b"\x00")
    write(root / "proc/cpuinfo", cpuinfo)
    write(root / "proc/meminfo", meminfo(mem_kb))
    for relative, data in (files or {}).items():
        if data is None:
            (root / relative).unlink()
        else:
            write(root / relative, data)
    return root


def test_every_board_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(BOARDS)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_unseen_board_gets_a_sensible_profile(board: str, tmp_path: Path) -> None:
    machine, model, _, mem_kb = BOARDS[board]
    name, cpus = EXPECTED[board]
    detection = explain_detection(build_root(tmp_path, board), machine=machine, include_user=False)
    facts = detection.facts
    assert facts.cpu is not None and facts.cpu.count == cpus
    assert facts.mem_total_mb == mem_kb // 1024
    assert facts.board == model or (model is None and facts.board is None)
    assert detection.chosen.name == name, detection.reason
    session, encoding = detection.profile.session, detection.profile.encoding
    assert 1 <= session.intra_op_threads <= cpus and 1 <= session.inter_op_threads <= cpus
    assert session_options(session).intra_op_num_threads == session.intra_op_threads
    assert encoding.token_budget <= max(512, facts.memory_mb * TOKENS_PER_MIB)
    assert encoding.token_budget <= detection.chosen.encoding.token_budget
    if facts.memory_mb <= SMALL_MEMORY_MIB:
        assert encoding.ascii_fast_path is False
    resolution = explain_resolution("auto", root=build_root(tmp_path / "again", board), machine=machine)
    assert resolution.profile == detection.profile


def test_big_little_cpuinfo_lists_both_parts(tmp_path: Path) -> None:
    """RK3588: 8 CPUs of two kinds; its Cortex-A76 part must not make it a Raspberry Pi 5."""
    facts = read_facts(build_root(tmp_path, "orange-pi-5"), machine="aarch64")
    assert facts.cpu is not None
    assert (facts.cpu.count, facts.cpu.implementers, facts.cpu.parts) == (8, ("0x41",), ("0xd05", "0xd0b"))
    odroid = read_facts(build_root(tmp_path, "odroid-n2"), machine="aarch64")
    assert odroid.cpu is not None and odroid.cpu.parts == ("0xd03", "0xd09")


def test_container_on_a_pi_without_device_tree_uses_the_cpuinfo_model(tmp_path: Path) -> None:
    """Docker masks /sys/firmware, so /proc/device-tree/model is gone; the Pi kernel's cpuinfo still names it."""
    root = build_root(tmp_path, "pi-400", files={"proc/device-tree/model": None})
    detection = explain_detection(root, machine="aarch64", include_user=False)
    assert detection.chosen.name == "raspberry-pi-4"
    assert detection.facts.board == "Raspberry Pi 400 Rev 1.0"


def test_device_tree_under_sys_firmware_is_read(tmp_path: Path) -> None:
    root = build_root(tmp_path, "cm5-4gb", files={"proc/device-tree/model": None})
    write(root / "sys/firmware/devicetree/base/model", b"Raspberry Pi Compute Module 5 Rev 1.0\x00")
    root_cpuinfo = root / "proc/cpuinfo"
    root_cpuinfo.write_text(re.sub(r"Model\t\t: .*\n", "", root_cpuinfo.read_text()))
    assert explain_detection(root, machine="aarch64", include_user=False).chosen.name == "raspberry-pi-5"


@pytest.mark.parametrize(
    "model",
    [b"Raspberry Pi 400 Rev 1.0\x00", b"Raspberry Pi 400 Rev 1.0\x00\x00\n", b"Raspberry Pi 400 Rev 1.0 \xff\xfe\x00"],
    ids=["nul", "nuls-newline", "non-utf8"],
)
def test_device_tree_model_bytes(model: bytes, tmp_path: Path) -> None:
    root = build_root(tmp_path, "pi-400", files={"proc/device-tree/model": model})
    root_cpuinfo = root / "proc/cpuinfo"
    root_cpuinfo.write_text(re.sub(r"Model\t\t: .*\n", "", root_cpuinfo.read_text()))  # only the device tree names it
    detection = explain_detection(root, machine="aarch64", include_user=False)
    assert detection.chosen.name == "raspberry-pi-4"
    assert detection.facts.board is not None and "\x00" not in detection.facts.board


# --- containers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "threads", "quota"),
    [
        ({"sys/fs/cgroup/cpu.max": "max 100000\n"}, 4, None),  # no quota: generic-arm64's 4 of the 8 CPUs
        ({"sys/fs/cgroup/cpu.max": "50000 100000\n"}, 1, 0.5),
        ({"sys/fs/cgroup/cpu.max": "max 100000\n", "sys/fs/cgroup/cpuset.cpus.effective": "0-1,4\n"}, 3, None),
        ({"sys/fs/cgroup/cpu.max": "250000 100000\n", "sys/fs/cgroup/memory.max": "max\n"}, 2, 2.5),
    ],
    ids=["v2-max", "v2-half-cpu", "v2-cpuset", "v2-2.5-cpus"],
)
def test_cgroup_v2_on_a_big_little_board(
    files: dict[str, str], threads: int, quota: float | None, tmp_path: Path
) -> None:
    root = build_root(tmp_path, "orange-pi-5", files={"proc/self/cgroup": "0::/\n", **files})
    detection = explain_detection(root, machine="aarch64", include_user=False)
    assert detection.facts.limits.cpu_quota == quota
    assert detection.facts.memory_mb == 7931948 // 1024  # memory.max "max": MemTotal stays the limit
    assert detection.profile.session.intra_op_threads == threads
    if quota is not None:
        assert detection.profile.session.allow_spinning is False


def test_cgroup_v1_docker_limits_at_the_mount_root(tmp_path: Path) -> None:
    """Docker on cgroup v1: /proc/self/cgroup names /docker/<id>, but the container sees its own cgroup as the
    mount root; quota -1 means no quota, the cpuset is "0-1,4" (3 CPUs)."""
    container = "/docker/3f1c0a9e5b7d"
    root = build_root(
        tmp_path,
        "jetson-xavier-nx",
        files={
            "proc/self/cgroup": f"12:cpuset:{container}\n4:cpu,cpuacct:{container}\n9:memory:{container}\n"
            f"1:name=systemd:{container}\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": str(1024 << 20) + "\n",
            "sys/fs/cgroup/cpuset/cpuset.cpus": "0-1,4\n",
        },
    )
    detection = explain_detection(root, machine="aarch64", include_user=False)
    limits = detection.facts.limits
    assert (limits.cpu_quota, limits.memory_bytes, limits.cpuset_cpus) == (None, 1024 << 20, 3)
    assert detection.facts.memory_mb == 1024
    assert detection.profile.session.intra_op_threads == 3


def test_meminfo_without_memavailable(tmp_path: Path) -> None:
    root = build_root(tmp_path, "pi-4-1gb", files={"proc/meminfo": "MemTotal:         905740 kB\nMemFree: 1 kB\n"})
    facts = read_facts(root, machine="aarch64")
    assert facts.mem_total_mb == 905740 // 1024 and facts.fallbacks == ()


GARBLED: dict[str, dict[str, str | bytes]] = {
    "empty-cpuinfo": {"proc/cpuinfo": ""},
    "binary-cpuinfo": {"proc/cpuinfo": b"\x00\xff\xfeprocessor\n:::\n\x80"},
    "empty-meminfo": {"proc/meminfo": ""},
    "garbled-meminfo": {"proc/meminfo": b"\xff\xfe MemTotal: lots\x00\n"},
    "empty-model": {"proc/device-tree/model": b""},
    "nul-model": {"proc/device-tree/model": b"\x00"},
    "empty-cpu-max": {"sys/fs/cgroup/cpu.max": ""},
    "garbled-cpu-max": {"sys/fs/cgroup/cpu.max": b"\xff 100000 extra\n"},
    "negative-cpu-max": {"sys/fs/cgroup/cpu.max": "-1 100000\n"},
    "empty-memory-max": {"sys/fs/cgroup/memory.max": ""},
    "garbled-cpuset": {"sys/fs/cgroup/cpuset.cpus.effective": "0-x,\n"},
    "garbled-self-cgroup": {"proc/self/cgroup": b"\xff\n::\n0::/../../..\n"},
    "garbled-v1-quota": {
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "abc\n",
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "\x00\n",
    },
}


@pytest.mark.parametrize("case", sorted(GARBLED))
def test_empty_and_garbled_files_never_crash(case: str, tmp_path: Path) -> None:
    root = build_root(tmp_path, "pi-400", files=dict(GARBLED[case]))
    detection = explain_detection(root, machine="aarch64", include_user=False)
    assert detection.chosen.name == "raspberry-pi-4"  # the board is named by the device tree or cpuinfo's Model
    threads = detection.profile.session.intra_op_threads
    assert 1 <= threads <= 4
    assert detection.profile.encoding.token_budget >= 1


@pytest.mark.parametrize(
    "files",
    [{"sys/fs/cgroup/cpuset.cpus.effective": "3-1\n"}, {"sys/fs/cgroup/cpuset/cpuset.cpus": "3-0\n"}],
    ids=["v2", "v1"],
)
def test_reversed_cpuset_range_is_malformed_not_negative(files: dict[str, str], tmp_path: Path) -> None:
    detection = explain_detection(build_root(tmp_path, "pi-400", files=dict(files)), machine="aarch64")
    assert detection.facts.limits.cpuset_cpus is None or detection.facts.limits.cpuset_cpus >= 1
    assert 1 <= detection.profile.session.intra_op_threads <= 4
    assert 1 <= detection.profile.session.inter_op_threads <= 4


def test_unreadable_files_are_recorded_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission denied on every /proc file (tests may run as root, so the error is injected at open)."""
    root = build_root(tmp_path, "pi-5-4gb", files={"sys/fs/cgroup/cpu.max": "200000 100000\n"})
    real_open = builtins.open
    denied = {root / "proc/device-tree/model", root / "proc/cpuinfo", root / "proc/meminfo"}

    def fake_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sysfiles, "open", fake_open, raising=False)
    detection = explain_detection(root, machine="aarch64", include_user=False)
    statuses = {read.path: read.status for read in detection.reads}
    assert statuses["/proc/device-tree/model"] == "unreadable"
    assert statuses["/proc/cpuinfo"] == "unreadable" and statuses["/proc/meminfo"] == "unreadable"
    assert detection.chosen.name == "generic-arm64"  # nothing names the board any more
    assert detection.profile.session.intra_op_threads == 2  # still capped by the 2-CPU quota
    assert detection.fallbacks


# --- the command ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("board", ["orange-pi-5", "jetson-nano", "graviton2-m6g-large", "pi-400"])
def test_profile_detect_command_explains_unseen_boards(
    board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine, model, _, _ = BOARDS[board]
    name, cpus = EXPECTED[board]
    assert main(["profile", "detect", "--root", str(build_root(tmp_path, board)), "--machine", machine]) == 0
    out = capsys.readouterr().out
    assert f"chosen: {name} (" in out
    assert re.search(rf"^  CPUs +{cpus}\b", out, re.M)
    assert re.search(rf"^  board +{re.escape(model) if model else 'unknown'}$", out, re.M)
    assert re.search(r"^settings: \d+ intra-op", out, re.M)


@pytest.mark.parametrize("board", ["pi-2-armv7l", "zero-w-armv6l"])
def test_32_bit_arm_is_told_it_is_unsupported(
    board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = BOARDS[board][0]
    assert main(["profile", "detect", "--root", str(build_root(tmp_path, board)), "--machine", machine]) == 0
    captured = capsys.readouterr()
    assert re.search(r"32-bit|onnxruntime", captured.out + captured.err, re.I)


def test_32_bit_python_on_a_64_bit_kernel_is_warned(tmp_path: Path) -> None:
    """32-bit Raspberry Pi OS on a Pi 4/5 runs a 64-bit kernel: `uname -m` says aarch64, but Python is 32-bit."""
    import dataclasses

    facts = read_facts(build_root(tmp_path, "pi-400"), machine="aarch64")
    assert facts.warnings == ()
    (warning,) = dataclasses.replace(facts, python_bits=32).warnings
    assert "32-bit" in warning and "onnxruntime" in warning and "64-bit" in warning
    assert dataclasses.replace(facts, python_bits=64).warnings == ()
