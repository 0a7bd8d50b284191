"""Fake machine roots built from real /proc texts, and an isolated user profile folder for every test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BOARDS = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())
REPO = Path(__file__).resolve().parents[2]
SOURCE_MODEL = REPO / "models" / "potion-base-8M"

MakeRoot = Callable[..., Path]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """potion-base-8M exported with the fp32 and int8 variants (no fp16, to test fallbacks)."""
    from m2v_edge.export import export_model

    out = tmp_path_factory.mktemp("dp-bundle") / "potion-base-8M"
    export_model(str(SOURCE_MODEL), out, variants=("fp32", "int8"))
    return out


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty $XDG_CONFIG_HOME and no M2V_EDGE_PROFILE."""
    config = tmp_path / "xdg-config"
    config.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("M2V_EDGE_PROFILE", raising=False)
    return config


@pytest.fixture
def user_dir(isolated_config: Path) -> Path:
    """The user profile folder of this test (not created yet)."""
    return isolated_config / "m2v-edge" / "profiles"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def make_root(tmp_path: Path) -> MakeRoot:
    """Build a fake root: `make_root("raspberry-pi-4", cpu_max="150000 100000", memory_max=...)`."""
    counter = iter(range(1000))

    def build(
        board: str | None = None,
        *,
        cpu_max: str | None = None,
        memory_max: str | None = None,
        files: dict[str, str | bytes] | None = None,
    ) -> Path:
        root = tmp_path / f"root-{next(counter)}-{board or 'empty'}"
        root.mkdir()
        if board is not None:
            source = FIXTURES / board
            if (source / "model").exists():
                model = (source / "model").read_text(encoding="utf-8").strip()
                write(root / "proc/device-tree/model", model.encode() + b"\x00")
            write(root / "proc/cpuinfo", (source / "cpuinfo").read_text(encoding="utf-8"))
            write(root / "proc/meminfo", (source / "meminfo").read_text(encoding="utf-8"))
        if cpu_max is not None:
            write(root / "sys/fs/cgroup/cpu.max", cpu_max + "\n")
        if memory_max is not None:
            write(root / "sys/fs/cgroup/memory.max", memory_max + "\n")
        for relative, text in (files or {}).items():
            write(root / relative, text)
        return root

    return build
