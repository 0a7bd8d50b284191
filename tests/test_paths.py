"""The XDG base directories: relative or empty values are ignored, as the specification says."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2v_edge.bundle.stamps import stamp_path
from m2v_edge.compat import _cache_root
from m2v_edge.device_profiles.store import user_profile_dir
from m2v_edge.paths import cache_dir, config_dir


@pytest.mark.parametrize("value", [None, "", "relative/cache", "./cache"])
def test_unset_empty_or_relative_values_fall_back_to_the_home_folder(monkeypatch, tmp_path, value) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert cache_dir() == tmp_path / ".cache" / "m2v-edge"
    assert config_dir() == tmp_path / ".config" / "m2v-edge"


def test_absolute_values_are_used_by_every_user_of_the_folders(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "f"))
    assert user_profile_dir() == tmp_path / "f" / "m2v-edge" / "profiles"
    assert _cache_root() == tmp_path / "c" / "m2v-edge" / "bundles"
    stamp = stamp_path(Path(__file__).stat(), "0" * 64)
    assert stamp.parent == tmp_path / "c" / "m2v-edge" / "verified"
