"""Files holding user data are private (mode 0600, folders 0700) whatever the umask: outboxes with their SQLite
-wal and -shm files and sync lock, and user device profiles."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.device_profiles import load_profile, write_user_profile
from m2v_edge.sync import Outbox, SyncLock

FP = "0123456789abcdef:fp32:norm:4"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_outbox_files_are_private_under_any_umask(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "kiosk.outbox"
    with umask(mask), Outbox.create(path, fingerprint=FP, dim=4) as outbox, SyncLock(path):
        outbox.put([("a", "text", {})], np.ones((1, 4), dtype=np.float32))
        files = {p.name: mode(p) for p in tmp_path.iterdir()}
    assert set(files) >= {"kiosk.outbox", "kiosk.outbox-wal", "kiosk.outbox-shm", "kiosk.outbox.sync.lock"}
    assert all(m == 0o600 for m in files.values()), {name: oct(m) for name, m in files.items()}


def test_ingest_command_creates_a_private_outbox(tiny_models, tmp_path: Path) -> None:
    records = tmp_path / "docs.jsonl"
    records.write_text(json.dumps({"id": "1", "text": "quick brown fox"}) + "\n", encoding="utf-8")
    outbox = tmp_path / "out" / "kiosk.outbox"
    outbox.parent.mkdir()
    code = "import os, sys; os.umask(0); from m2v_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-c", code, "ingest", "--bundle", str(tiny_models.bundle("wp-f32-L1")), "--variant", "fp32",
         "--outbox", str(outbox), "--no-progress", str(records)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    files = {p.name: mode(p) for p in outbox.parent.iterdir()}
    assert "kiosk.outbox" in files and all(m == 0o600 for m in files.values()), {n: oct(m) for n, m in files.items()}


@pytest.mark.parametrize("mask", [0o000, 0o022])
def test_user_profiles_are_private_under_any_umask(tmp_path: Path, mask: int) -> None:
    folder = tmp_path / "config" / "m2v-edge" / "profiles"
    with umask(mask):
        path = write_user_profile(dataclasses.replace(load_profile("generic"), name="mine"), user_dir=folder)
    assert mode(path) == 0o600 and mode(folder) == 0o700
    assert not [p for p in folder.iterdir() if p.name != path.name]  # no temporary file left behind
