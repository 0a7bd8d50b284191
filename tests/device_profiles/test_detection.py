"""Detection on fake roots holding real board texts, checked down to the onnxruntime SessionOptions."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import onnxruntime as ort
import pytest

from m2v_edge.device_profiles import detect, explain_detection, explain_resolution, parse_cpuinfo, read_facts
from m2v_edge.runtime.session import session_options

from .conftest import BOARDS, MakeRoot

# board fixture -> (machine, profile, intra-op threads, CPU arena, token budget, first variant)
EXPECTED = {
    "raspberry-pi-zero-2w": ("aarch64", "raspberry-pi-zero-2w", 2, True, 2048, "int8"),
    "raspberry-pi-3": ("aarch64", "raspberry-pi-3", 2, True, 4096, "int8"),
    "raspberry-pi-3-armv7l": ("armv7l", "raspberry-pi-3", 2, True, 4096, "int8"),
    "raspberry-pi-4": ("aarch64", "raspberry-pi-4", 4, True, 8192, "int8"),
    "raspberry-pi-5": ("aarch64", "raspberry-pi-5", 4, True, 16384, "int8"),
    "jetson-orin-nano": ("aarch64", "jetson-orin-nano", 4, True, 16384, "int8"),
    "x86-mini-pc": ("x86_64", "x86-64", 4, True, 4096, "int8"),
}
CONTAINER_MEMORY = str(512 * 1024 * 1024)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == BOARDS


def assert_options(options: ort.SessionOptions, *, threads: int, arena: bool, spinning: bool = False) -> None:
    assert options.intra_op_num_threads == threads
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena is arena
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == ("1" if spinning else "0")


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_board_is_detected_with_its_settings(board: str, make_root: MakeRoot) -> None:
    machine, name, threads, arena, budget, variant = EXPECTED[board]
    profile = detect(make_root(board), machine=machine)
    assert profile.name == name
    assert profile.source == "builtin"
    assert profile.encoding.token_budget == budget
    assert profile.encoding.variants[0] == variant
    assert_options(session_options(profile.session), threads=threads, arena=arena)


def test_device_tree_and_cpuinfo_are_read(make_root: MakeRoot) -> None:
    facts = read_facts(make_root("raspberry-pi-zero-2w"), machine="aarch64")
    assert facts.device_tree_model == "Raspberry Pi Zero 2 W Rev 1.0"  # trailing NUL removed
    assert facts.cpu is not None
    assert (facts.cpu.count, facts.cpu.implementers, facts.cpu.parts) == (4, ("0x41",), ("0xd03",))
    assert facts.cpu.board_model == "Raspberry Pi Zero 2 W Rev 1.0"
    assert facts.mem_total_mb == 427708 // 1024
    assert facts.fallbacks == ()
    jetson = read_facts(make_root("jetson-orin-nano"), machine="aarch64")
    assert jetson.cpu is not None and jetson.cpu.count == 6 and jetson.cpu.parts == ("0xd42",)
    n100 = read_facts(make_root("x86-mini-pc"), machine="x86_64")
    assert n100.cpu is not None and n100.cpu.model_name == "Intel(R) N100" and n100.board is None


def test_container_with_cpu_quota_and_memory_limit(make_root: MakeRoot) -> None:
    root = make_root("x86-mini-pc", cpu_max="150000 100000", memory_max=CONTAINER_MEMORY)
    detection = explain_detection(root, machine="x86_64")
    assert detection.facts.limits.cpu_quota == 1.5
    assert detection.facts.memory_mb == 512
    assert detection.chosen.name == "low-memory"
    profile = detection.profile
    assert profile.session.intra_op_threads == 1  # floor(1.5)
    assert profile.encoding.token_budget == 2048
    assert_options(session_options(profile.session), threads=1, arena=True)
    assert any("cgroup CPU quota 1.5" in note for note in detection.adjustments)


def test_cpu_quota_alone_caps_threads(make_root: MakeRoot) -> None:
    detection = explain_detection(make_root("x86-mini-pc", cpu_max="150000 100000"), machine="x86_64")
    assert detection.chosen.name == "x86-64"
    assert_options(session_options(detection.profile.session), threads=1, arena=True)
    assert detection.adjustments == (
        "intra_op_threads 4 -> 1 (limit 1 from cgroup CPU quota 1.5, 4 CPUs in /proc/cpuinfo)",
        "fallback_tokenizer_mib 4096 -> 3927 (1/4 of 15711 MiB usable)",
    )


@pytest.mark.parametrize(
    ("cpu_max", "threads"), [("250000 100000", 2), ("50000 100000", 1), ("max 100000", 4), ("900000 100000", 4)]
)
def test_quota_floor_and_cpu_count_cap(make_root: MakeRoot, cpu_max: str, threads: int) -> None:
    profile = detect(make_root("jetson-orin-nano", cpu_max=cpu_max), machine="aarch64")
    assert profile.session.intra_op_threads == threads


def test_board_keeps_its_profile_but_fits_a_small_memory_limit(make_root: MakeRoot) -> None:
    detection = explain_detection(make_root("raspberry-pi-4", memory_max=CONTAINER_MEMORY), machine="aarch64")
    assert detection.chosen.name == "raspberry-pi-4"
    assert detection.profile.encoding.token_budget == 512 * 8
    assert detection.adjustments == (
        "token_budget 8192 -> 4096 (512 MiB usable x 8 tokens/MiB)",
        "fallback_tokenizer_mib 4096 -> 128 (1/4 of 512 MiB usable)",
        "ascii_fast_path true -> false (512 MiB usable, 768 MiB or less)",
    )
    assert not detection.profile.encoding.ascii_fast_path
    jetson = detect(make_root("jetson-orin-nano", memory_max=CONTAINER_MEMORY), machine="aarch64")
    assert (jetson.name, jetson.encoding.token_budget) == ("jetson-orin-nano", 4096)
    assert not jetson.encoding.ascii_fast_path


def test_fast_path_stays_on_with_memory_to_spare(make_root: MakeRoot) -> None:
    """A 1 GiB board (a Pi 3 reports about 900 MiB) keeps the fast path and its profile's budget."""
    detection = explain_detection(make_root("raspberry-pi-3"), machine="aarch64")
    assert detection.chosen.name == "raspberry-pi-3" and detection.profile.encoding.ascii_fast_path
    assert not any("ascii_fast_path" in note for note in detection.adjustments)


def test_spinning_is_turned_off_under_a_quota(make_root: MakeRoot, user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "spin.toml").write_text(
        '[match]\narchitectures = ["x86_64"]\n'
        "[session]\nallow_spinning = true\nintra_op_threads = 2\nmem_pattern = false\n",
        encoding="utf-8",
    )
    free = detect(make_root("x86-mini-pc"), machine="x86_64")
    assert free.name == "spin" and free.session.allow_spinning is True
    assert_options(session_options(free.session), threads=2, arena=True, spinning=True)
    limited = detect(make_root("x86-mini-pc", cpu_max="300000 100000"), machine="x86_64")
    assert limited.name == "spin" and limited.session.allow_spinning is False


def test_cgroup_v1_limits(make_root: MakeRoot) -> None:
    root = make_root(
        "x86-mini-pc",
        files={
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "150000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": CONTAINER_MEMORY + "\n",
        },
    )
    detection = explain_detection(root, machine="x86_64")
    assert (detection.facts.limits.cpu_quota, detection.facts.memory_mb) == (1.5, 512)
    assert detection.chosen.name == "low-memory" and detection.profile.session.intra_op_threads == 1


def test_cgroup_v1_unlimited_values(make_root: MakeRoot) -> None:
    root = make_root(
        "x86-mini-pc",
        files={
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    facts = read_facts(root, machine="x86_64")
    assert facts.limits.cpu_quota is None and facts.limits.memory_bytes is None
    assert {read.status for read in facts.reads if "cgroup" in read.path} == {"unlimited"}


def test_nested_cgroup_v2_takes_the_tightest_level(make_root: MakeRoot) -> None:
    root = make_root(
        "jetson-orin-nano",
        files={
            "proc/self/cgroup": "0::/system.slice/kiosk.service\n",
            "sys/fs/cgroup/system.slice/cpu.max": "200000 100000\n",
            "sys/fs/cgroup/system.slice/kiosk.service/cpu.max": "max 100000\n",
            "sys/fs/cgroup/system.slice/kiosk.service/memory.max": "max\n",
            "sys/fs/cgroup/system.slice/kiosk.service/cpuset.cpus.effective": "0-2\n",
        },
    )
    facts = read_facts(root, machine="aarch64")
    assert facts.limits.cpu_quota == 2.0 and facts.limits.cpuset_cpus == 3 and facts.cpu_limit == 2
    assert detect(root, machine="aarch64").session.intra_op_threads == 2


def test_cpuset_caps_threads(make_root: MakeRoot) -> None:
    root = make_root("jetson-orin-nano", files={"sys/fs/cgroup/cpuset.cpus.effective": "0-1,4\n"})
    assert detect(root, machine="aarch64").session.intra_op_threads == 3


def test_unreadable_cpuinfo_falls_back_and_says_so(make_root: MakeRoot) -> None:
    root = make_root("raspberry-pi-4")
    (root / "proc/cpuinfo").unlink()
    (root / "proc/cpuinfo").mkdir()  # reading a directory fails like an unreadable file
    detection = explain_detection(root, machine="aarch64")
    assert detection.chosen.name == "raspberry-pi-4"  # the device tree still names the board
    assert [read.status for read in detection.reads if read.path == "/proc/cpuinfo"] == ["unreadable"]
    assert any("CPU count unknown" in note for note in detection.fallbacks)
    assert detection.profile.session.intra_op_threads == 4


def test_missing_device_tree_uses_the_cpuinfo_model_line(make_root: MakeRoot) -> None:
    root = make_root("raspberry-pi-5")
    (root / "proc/device-tree/model").unlink()
    detection = explain_detection(root, machine="aarch64")
    assert detection.chosen.name == "raspberry-pi-5"
    assert any("'Model' line" in note for note in detection.fallbacks)
    assert [read.status for read in detection.reads if "device" in read.path] == ["missing", "missing"]


def test_missing_meminfo_disables_memory_rules(make_root: MakeRoot) -> None:
    root = make_root("x86-mini-pc", cpu_max="150000 100000")
    (root / "proc/meminfo").unlink()
    detection = explain_detection(root, machine="x86_64")
    assert detection.chosen.name == "x86-64"
    assert any("memory size unknown" in note for note in detection.fallbacks)
    low = next(c for c in detection.candidates if c.name == "low-memory")
    assert not low.matched and "memory unknown" in low.reasons[0]


def test_malformed_limits_are_reported_not_raised(make_root: MakeRoot) -> None:
    root = make_root("x86-mini-pc", cpu_max="lots", memory_max="plenty")
    detection = explain_detection(root, machine="x86_64")
    statuses = {read.path: read.status for read in detection.reads}
    assert statuses["/sys/fs/cgroup/cpu.max"] == "malformed"
    assert statuses["/sys/fs/cgroup/memory.max"] == "malformed"
    assert detection.chosen.name == "x86-64" and detection.profile.session.intra_op_threads == 4


@pytest.mark.parametrize(
    ("machine", "name"), [("riscv64", "generic"), ("aarch64", "generic-arm64"), ("AMD64", "x86-64")]
)
def test_empty_root_falls_back_by_architecture(make_root: MakeRoot, machine: str, name: str) -> None:
    root = make_root()
    detection = explain_detection(root, machine=machine)
    assert detection.chosen.name == name
    via = explain_resolution(root=root, machine=machine).via
    assert via == ("fallback" if name == "generic" else "detection")
    assert any("CPU count unknown" in note for note in detection.fallbacks)
    assert any("memory size unknown" in note for note in detection.fallbacks)


def test_unknown_arm_board_is_generic_arm64(make_root: MakeRoot) -> None:
    root = make_root("raspberry-pi-4", files={"proc/device-tree/model": b"Radxa ROCK 5B\x00"})
    root_cpuinfo = root / "proc/cpuinfo"
    root_cpuinfo.write_text(root_cpuinfo.read_text().replace("Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n", ""))
    assert detect(root, machine="aarch64").name == "generic-arm64"


def test_host_architecture_is_a_recorded_fallback_on_fake_roots(make_root: MakeRoot) -> None:
    detection = explain_detection(make_root("x86-mini-pc"))
    assert any("platform.machine()" in note for note in detection.fallbacks)


def test_parse_cpuinfo_big_little() -> None:
    text = (
        "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n\n"
        "processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xD05\n\n"
        "processor\t: 2\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"
    )
    info = parse_cpuinfo(text)
    assert info is not None and info.count == 3 and info.parts == ("0xd05", "0xd0b")
    assert parse_cpuinfo("garbage without processors") is None


def test_real_machine_detection_reads_this_machine() -> None:
    """Facts of the real machine against what the standard library and /proc say directly."""
    detection = explain_detection()
    facts = detection.facts
    allowed = len(os.sched_getaffinity(0))
    assert facts.machine == platform.machine()
    assert facts.affinity_cpus == allowed
    processors = sum(line.startswith("processor") for line in Path("/proc/cpuinfo").read_text().splitlines())
    assert facts.cpu is not None and facts.cpu.count == processors
    assert facts.cpu_limit is not None and 1 <= facts.cpu_limit <= allowed
    mem_total_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                        if line.startswith("MemTotal:"))
    assert facts.mem_total_mb == mem_total_kb // 1024
    assert facts.memory_mb is not None and 0 < facts.memory_mb <= facts.mem_total_mb
    assert 1 <= detection.profile.session.intra_op_threads <= facts.cpu_limit
