"""`m2v-edge profile list|show|detect` and `m2v-edge tune`, run through their argument parser."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from m2v_edge.commands.profile import register
from m2v_edge.device_profiles import read_profile_file

from .conftest import MakeRoot


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="m2v-edge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.handler(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_profile_list_marks_the_detected_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profile", "list"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 9 and sum(line.startswith("*") for line in lines) == 1
    assert any("raspberry-pi-zero-2w" in line and "builtin" in line for line in lines)


def test_profile_show_named_and_raw(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profile", "show", "jetson-orin-nano"], capsys)
    assert code == 0 and 'name = "jetson-orin-nano"' in out and "intra_op_threads = 4" in out
    assert out.startswith("# builtin profile, from ")
    code, raw, _ = run(["profile", "show", "--raw", "raspberry-pi-zero-2w"], capsys)
    assert "# Cortex-A53" in raw and "Memory is the constraint" in raw


def test_profile_show_default_is_what_the_runtime_uses(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M2V_EDGE_PROFILE", "low-memory")
    code, out, _ = run(["profile", "show"], capsys)
    assert code == 0 and "chosen by environment" in out and 'name = "low-memory"' in out


def test_profile_detect_explains_a_container(make_root: MakeRoot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root("x86-mini-pc", cpu_max="150000 100000", memory_max=str(512 << 20))
    code, out, _ = run(["profile", "detect", "--root", str(root), "--machine", "x86_64"], capsys)
    assert code == 0
    assert "ok        /sys/fs/cgroup/cpu.max: 150000 100000 = 1.5 CPUs" in out
    assert "missing   /proc/device-tree/model" in out
    assert "chosen: low-memory" in out
    assert "intra_op_threads 2 -> 1 (limit 1 from cgroup CPU quota 1.5, 4 CPUs in /proc/cpuinfo)" in out
    assert "settings: 1 intra-op / 1 inter-op threads" in out


def test_profile_detect_reports_fallbacks(make_root: MakeRoot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root("raspberry-pi-4")
    (root / "proc/meminfo").unlink()
    (root / "proc/meminfo").mkdir()
    code, out, _ = run(["profile", "detect", "--root", str(root), "--machine", "aarch64"], capsys)
    assert "unreadable /proc/meminfo: is a directory" in out
    assert "memory size unknown" in out and "chosen: raspberry-pi-4" in out


def test_profile_detect_names_each_bundles_tokenizing_path(
    potion_bundle: Path, tiny_models, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from m2v_edge.runtime import native

    bpe = tiny_models.bundle("bpeunk-f32-w-L3")
    code, out, _ = run(["profile", "detect", "--bundle", str(potion_bundle), "--bundle", str(bpe)], capsys)
    assert code == 0
    assert f"native core: version {native.core_version()}" in out
    assert f"bundle {potion_bundle}: native\n" in out
    assert f"bundle {bpe}: python (the native core does not reproduce the BPE model)" in out
    monkeypatch.setenv(native.SWITCH, "0")
    code, out, _ = run(["profile", "detect", "--bundle", str(potion_bundle)], capsys)
    assert "native core: the native core is turned off (M2V_EDGE_NATIVE=0)" in out
    assert f"bundle {potion_bundle}: " in out and "turned off" in out.splitlines()[-1]


def test_tune_command_prints_table_and_writes_profile(
    bundle: Path, user_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", str(bundle), "--threads", "1", "--variants", "int8", "--budgets", "512,2048"]
    argv += ["--min-seconds", "0.05", "--latency-samples", "3", "--write", "--name", "bench-box", "--progress"]
    code, out, err = run(argv, capsys)
    assert code == 0
    assert "texts/s" in out and "peak MiB" in out
    assert sum(line.startswith("*") for line in out.splitlines()) == 1
    assert "detection now chooses it on this machine" in out
    text = (user_dir / "bench-box.toml").read_text(encoding="utf-8")
    assert text.startswith("# written by m2v-edge tune") and "#   threads variant budget   texts/s" in text
    saved = read_profile_file(user_dir / "bench-box.toml")
    assert saved.session.intra_op_threads == 1 and saved.encoding.token_budget in (512, 2048)
    assert "tuning" in err  # progress bar (tqdm) or progress lines on stderr


def _tune_stderr(bundle: Path, *extra: str, terminal: bool) -> str:
    """What a real `m2v-edge tune` run writes to its stderr: a terminal (a pseudo-terminal) or a pipe."""
    argv = [sys.executable, "-m", "m2v_edge.cli", "tune", str(bundle), "--threads", "1", "--variants", "int8",
            "--budgets", "512", "--min-seconds", "0.01", "--latency-samples", "2", *extra]
    if not terminal:
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns, as a terminal has
    try:
        with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=follower) as process:
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the process exited and closed its side
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        assert process.returncode == 0
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)


def test_tune_shows_progress_on_a_terminal_only_unless_told(bundle: Path) -> None:
    assert "tuning" in _tune_stderr(bundle, terminal=True)
    assert "tuning" not in _tune_stderr(bundle, "--no-progress", terminal=True)
    assert "tuning" not in _tune_stderr(bundle, terminal=False)


def test_tune_rejects_bad_lists(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(["tune", str(tmp_path), "--threads", "0"], capsys)
    assert "expected integers >= 1" in capsys.readouterr().err


def test_device_profiles_imports_only_the_standard_library() -> None:
    code = (
        "import sys, json; before = set(sys.modules); import m2v_edge.device_profiles as d; d.resolve_profile(); "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    new = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert new - set(sys.stdlib_module_names) - {"m2v_edge"} == set()
