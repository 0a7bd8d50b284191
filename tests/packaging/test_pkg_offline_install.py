"""README "Install on a device": the wheelhouse flow, run as the exact shell commands the README shows.

The workstation folder holds `dist/` as `make dist` leaves it (the `dist` fixture does what `make dist` does);
the workstation step uses the configured package index, the device steps run with no pip configuration, no
index and every proxy pointing at a closed port, in a HOME of their own, with the system Python as `python3`.
The Raspberry Pi variant downloads aarch64 wheels; it cannot run them here (`make test-arm64` runs the aarch64
m2v-edge wheel under emulation), so it checks that the wheelhouse holds only aarch64 or pure wheels, m2v-edge's
aarch64 wheel among them, and that pip resolves the device's install from it offline for aarch64, to that wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clean_venvs import offline_env
from pkg_support import AARCH64_PLATFORM, REPORT, Dist

WORKSTATION_COMMANDS = ("python3 -m pip download -d wheelhouse dist/m2v_edge-*x86_64.whl dist/m2v_edge_model_*.whl",)
"""After `make dist`, in the repository (README: "On the workstation")."""
PI_PLATFORMS = (
    f"--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --platform {AARCH64_PLATFORM}"
)
PI_WORKSTATION_COMMANDS = (
    (
        f"python3 -m pip download -d wheelhouse --only-binary=:all: --python-version 3.11 {PI_PLATFORMS} "
        "dist/m2v_edge-*aarch64.whl dist/m2v_edge_model_*.whl"
    ),
)
"""The same for a 64-bit Raspberry Pi OS Bookworm device from any workstation (README: "for a Raspberry Pi")."""
AARCH64_TAGS = ("-none-any.whl", "_aarch64.whl")
DEVICE_COMMANDS = (
    "python3 -m venv ~/m2v-edge",
    "~/m2v-edge/bin/pip install --no-index --find-links ~/wheelhouse m2v-edge m2v-edge-model-potion-base-8m",
    (
        "~/m2v-edge/bin/python -c 'from m2v_edge import EdgeEmbedder; "
        """print(EdgeEmbedder("potion-base-8m").encode(["hello"]).shape)'"""
    ),
)
"""After copying wheelhouse/ into the device's home folder (README: "on the device")."""


def shell(command: str, cwd: Path, env: dict[str, str], label: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    REPORT.transcript.add(label, command, result)
    assert result.returncode == 0, f"{command}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def workstation(tmp_path: Path, dist: Dist) -> Path:
    """A folder with dist/ as `make dist` leaves it: the m2v-edge sdist and wheels and the model wheel."""
    folder = tmp_path / "workstation"
    (folder / "dist").mkdir(parents=True)
    for built in (dist.wheel, dist.aarch64_wheel, dist.sdist, dist.model_wheel):
        shutil.copy2(built, folder / "dist" / built.name)
    return folder


def workstation_env() -> dict[str, str]:
    """This environment (with its package index), `python3` being the interpreter running the tests."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def test_readme_wheelhouse_flow(workstation: Path, tmp_path: Path) -> None:
    env = workstation_env()
    for command in WORKSTATION_COMMANDS:
        shell(command, workstation, env, "workstation")
    wheelhouse = workstation / "wheelhouse"
    wheels = sorted(path.name for path in wheelhouse.iterdir())
    assert all(name.endswith(".whl") for name in wheels), wheels  # binary wheels only: nothing to build on a device
    total = sum(path.stat().st_size for path in wheelhouse.iterdir())
    REPORT.size("README wheelhouse (m2v-edge, its dependencies, potion-base-8m)", total)

    home = tmp_path / "device-home"
    home.mkdir()
    shutil.copytree(wheelhouse, home / "wheelhouse")  # scp -r wheelhouse device:
    system_python = tmp_path / "device-bin"
    system_python.mkdir()
    (system_python / "python3").symlink_to(getattr(sys, "_base_executable", sys.executable))
    device = offline_env(home, [system_python])
    outputs = [shell(command, home, device, "device").stdout for command in DEVICE_COMMANDS]
    assert outputs[-1].strip() == "(1, 256)"
    site = next((home / "m2v-edge" / "lib").glob("python3*/site-packages"))
    assert (site / "m2v_edge_model_potion_base_8m" / "bundle" / "model.int8.onnx").is_file()
    assert not (site / "onnx").exists() and not (site / "safetensors").exists()


def test_readme_wheelhouse_for_a_raspberry_pi(workstation: Path, tmp_path: Path, dist: Dist) -> None:
    """The aarch64 wheelhouse holds only aarch64 or pure wheels, m2v-edge's aarch64 wheel among them, and resolves
    the device install offline, to that wheel."""
    for command in PI_WORKSTATION_COMMANDS:
        shell(command, workstation, workstation_env(), "workstation, for a Pi")
    wheelhouse = workstation / "wheelhouse"
    wheels = sorted(path.name for path in wheelhouse.iterdir())
    assert [name for name in wheels if not name.endswith(AARCH64_TAGS)] == []
    assert any(name.startswith("onnxruntime-") and "cp311" in name for name in wheels), wheels
    assert [name for name in wheels if name.startswith("m2v_edge-")] == [dist.aarch64_wheel.name]
    total = sum(path.stat().st_size for path in wheelhouse.iterdir())
    REPORT.size("README wheelhouse for aarch64 (Raspberry Pi OS Bookworm)", total)
    # What the device's `pip install --no-index --find-links ~/wheelhouse ...` resolves to, worked out here: pip
    # for a bookworm device accepts every manylinux tag up to its glibc, 2.36.
    device_platforms = " ".join(
        ["--platform manylinux2014_aarch64", *(f"--platform manylinux_2_{minor}_aarch64" for minor in range(17, 37))]
    )
    check = (
        "python3 -m pip install --dry-run --quiet --report - --no-index --find-links wheelhouse --only-binary=:all: "
        f"--python-version 3.11 {device_platforms} --target device-site m2v-edge m2v-edge-model-potion-base-8m"
    )
    (tmp_path / "home").mkdir()
    env = offline_env(tmp_path / "home", [Path(sys.executable).parent])
    report = json.loads(shell(check, workstation, env, "aarch64 resolution").stdout)
    chosen = {item["metadata"]["name"]: Path(item["download_info"]["url"]).name for item in report["install"]}
    assert chosen["m2v-edge"] == dist.aarch64_wheel.name
    assert {"m2v-edge-model-potion-base-8m", "onnxruntime", "numpy", "tokenizers"} <= set(chosen), chosen
