"""Precedence: explicit argument > M2V_EDGE_PROFILE > user profiles > detection > generic; user profile files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from m2v_edge.device_profiles import (
    explain_resolution,
    list_profiles,
    load_profile,
    read_profile_file,
    resolve_profile,
    user_profile_dir,
    write_user_profile,
)
from m2v_edge.device_profiles.profile import MatchRules, Profile, SessionSettings
from m2v_edge.errors import ProfileError

from .conftest import MakeRoot

PI4_USER = """
description = "my Pi 4"
[match]
device_tree_model = ["Raspberry Pi 4"]
[session]
intra_op_threads = 3
[encoding]
variants = ["fp32"]
token_budget = 1000
"""


def test_user_profile_dir_follows_xdg(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert user_profile_dir() == isolated_config / "m2v-edge" / "profiles"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert user_profile_dir() == Path.home() / ".config" / "m2v-edge" / "profiles"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")  # the XDG spec says relative paths are invalid
    assert user_profile_dir() == Path.home() / ".config" / "m2v-edge" / "profiles"


def test_detection_is_the_default(make_root: MakeRoot) -> None:
    resolution = explain_resolution("auto", root=make_root("raspberry-pi-5"), machine="aarch64")
    assert (resolution.via, resolution.profile.name) == ("detection", "raspberry-pi-5")
    assert resolve_profile(None, root=make_root("raspberry-pi-5"), machine="aarch64").name == "raspberry-pi-5"


def test_matching_user_profile_beats_detection(make_root: MakeRoot, user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "my-pi4.toml").write_text(PI4_USER, encoding="utf-8")
    on_pi4 = explain_resolution("auto", root=make_root("raspberry-pi-4"), machine="aarch64")
    assert (on_pi4.via, on_pi4.profile.name, on_pi4.profile.source) == ("user profile", "my-pi4", "user")
    assert on_pi4.profile.session.intra_op_threads == 3 and on_pi4.profile.encoding.token_budget == 1000
    on_pi5 = explain_resolution("auto", root=make_root("raspberry-pi-5"), machine="aarch64")
    assert on_pi5.profile.name == "raspberry-pi-5"  # the user profile's rules do not match a Pi 5


def test_environment_beats_user_profiles(make_root: MakeRoot, user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "my-pi4.toml").write_text(PI4_USER, encoding="utf-8")
    monkeypatch.setenv("M2V_EDGE_PROFILE", "low-memory")
    resolution = explain_resolution("auto", root=make_root("raspberry-pi-4"), machine="aarch64")
    assert (resolution.via, resolution.profile.name) == ("environment", "low-memory")
    monkeypatch.setenv("M2V_EDGE_PROFILE", "auto")
    assert resolve_profile(root=make_root("raspberry-pi-4"), machine="aarch64").name == "my-pi4"


def test_explicit_argument_beats_environment(make_root: MakeRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M2V_EDGE_PROFILE", "low-memory")
    resolution = explain_resolution("raspberry-pi-5", root=make_root("raspberry-pi-zero-2w"), machine="aarch64")
    assert (resolution.via, resolution.profile.name) == ("argument", "raspberry-pi-5")
    # ... but the machine's limits still apply: a Zero 2 W has 417 MiB, so a smaller token budget.
    assert resolution.profile.encoding.token_budget == 417 * 8
    assert resolution.adjustments == (
        "token_budget 16384 -> 3336 (417 MiB usable x 8 tokens/MiB)",
        "fallback_tokenizer_mib 4096 -> 104 (1/4 of 417 MiB usable)",
        "ascii_fast_path true -> false (417 MiB usable, 768 MiB or less)",
    )
    given = Profile(name="given", session=SessionSettings(intra_op_threads=64))
    assert resolve_profile(given) is given  # a Profile object is used exactly as given


def test_explicit_path(tmp_path: Path, make_root: MakeRoot) -> None:
    path = tmp_path / "custom.toml"
    path.write_text("[session]\nintra_op_threads = 8\n", encoding="utf-8")
    profile = resolve_profile(path, root=make_root("raspberry-pi-4"), machine="aarch64")
    assert profile.name == "custom" and profile.source == "file"
    assert profile.session.intra_op_threads == 4  # capped to the Pi 4's CPUs
    assert resolve_profile(str(path), root=make_root("raspberry-pi-4"), machine="aarch64").name == "custom"


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M2V_EDGE_PROFILE", "raspberry-pi-9")
    with pytest.raises(ProfileError) as caught:
        resolve_profile()
    assert "M2V_EDGE_PROFILE='raspberry-pi-9'" in str(caught.value)
    assert "raspberry-pi-5" in str(caught.value)  # lists the known names


def test_unknown_name_lists_known_profiles() -> None:
    with pytest.raises(ProfileError, match=r"unknown device profile 'pi-9'; known profiles: .*generic.*x86-64"):
        load_profile("pi-9")


def test_broken_user_profile_is_refused_during_detection(user_dir: Path, make_root: MakeRoot) -> None:
    user_dir.mkdir(parents=True)
    bad = user_dir / "broken.toml"
    bad.write_text("[encoding]\nvariants = ['int3']\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="broken.toml.*'encoding.variants'.*fp32, fp16, int8"):
        resolve_profile(root=make_root("raspberry-pi-4"), machine="aarch64")


def test_user_profile_shadows_builtin_name(user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "generic.toml").write_text("[session]\nintra_op_threads = 3\n", encoding="utf-8")
    assert load_profile("generic").source == "user"
    sources = [(p.name, p.source) for p in list_profiles()]
    assert ("generic", "builtin") in sources and ("generic", "user") in sources


def test_duplicate_user_profile_names_are_refused(user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "a.toml").write_text("name = 'same'\n", encoding="utf-8")
    (user_dir / "b.toml").write_text("name = 'same'\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="both define profile 'same'"):
        list_profiles()


def test_write_user_profile_is_private_and_reads_back(user_dir: Path, make_root: MakeRoot) -> None:
    profile = Profile(
        name="kiosk",
        description='quotes " and \\ backslashes survive',
        match=MatchRules(device_tree_model=("Raspberry Pi 4 Model B",), architectures=("aarch64",)),
        session=SessionSettings(intra_op_threads=2, mem_pattern=False),
    )
    path = write_user_profile(profile, header="test header")
    assert path == user_dir / "kiosk.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(user_dir).st_mode) == 0o700
    assert path.read_text(encoding="utf-8").startswith("# test header\n")
    again = read_profile_file(path, source="user")
    assert (
        again.description == profile.description and again.match == profile.match and again.session == profile.session
    )
    assert resolve_profile(root=make_root("raspberry-pi-4"), machine="aarch64").name == "kiosk"
    write_user_profile(Profile(name="kiosk", session=SessionSettings(intra_op_threads=1)))  # replaces atomically
    assert read_profile_file(path).session.intra_op_threads == 1
    assert sorted(p.name for p in user_dir.iterdir()) == ["kiosk.toml"]  # no temporary files left behind


def test_write_refuses_bad_names(user_dir: Path) -> None:
    with pytest.raises(ProfileError, match="cannot save profile named"):
        write_user_profile(Profile(name="../escape"))
