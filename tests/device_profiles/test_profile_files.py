"""Built-in profile files, and refusal of bad profile files with messages naming file, key and allowed values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from m2v_edge.bundle import VARIANTS
from m2v_edge.device_profiles import builtin_profiles, load_profile, read_profile_file, render_profile
from m2v_edge.device_profiles.schema import parse_profile
from m2v_edge.errors import ProfileError

PROFILE_DIR = Path(__file__).resolve().parents[2] / "m2v_edge" / "device_profiles" / "profiles"
REQUIRED = {
    "generic",
    "x86-64",
    "generic-arm64",
    "raspberry-pi-zero-2w",
    "raspberry-pi-3",
    "raspberry-pi-4",
    "raspberry-pi-5",
    "jetson-orin-nano",
    "low-memory",
}


def test_required_profiles_ship() -> None:
    profiles = builtin_profiles()
    assert {p.name for p in profiles} == REQUIRED
    for profile in profiles:
        assert profile.source == "builtin" and profile.path is not None and profile.path.stem == profile.name
        assert profile.description
        assert set(profile.encoding.variants) <= set(VARIANTS)


def test_memory_first_profiles_turn_the_ascii_fast_path_off() -> None:
    """The fast path's vocabulary copy and word-split cache are memory the two memory-bound profiles do not spend."""
    off = {p.name for p in builtin_profiles() if not p.encoding.ascii_fast_path}
    assert off == {"raspberry-pi-zero-2w", "low-memory"}


@pytest.mark.parametrize("path", sorted(PROFILE_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_setting_carries_its_reasoning(path: Path) -> None:
    in_table = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            in_table = line.strip("[]")
        elif in_table in ("session", "encoding") and re.match(r"^\w+ = ", line):
            assert "#" in line, f"{path.name}: {line!r} has no comment"


@pytest.mark.parametrize("profile", builtin_profiles(), ids=lambda p: p.name)
def test_render_round_trips(profile) -> None:
    text = render_profile(profile)
    again = parse_profile(text, name="x", where="rendered", path=profile.path, source="builtin")
    assert again == profile


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[session\nintra_op_threads = 2\n", ["not valid TOML"]),
        ("colour = 'blue'\n", ["unknown key 'colour'", "description", "encoding"]),
        ("[session]\nthreads = 4\n", ["unknown key 'session.threads'", "intra_op_threads", "allow_spinning"]),
        ("[sessions]\nintra_op_threads = 4\n", ["unknown key 'sessions'", "session"]),
        ("[session]\nintra_op_threads = 0\n", ["'session.intra_op_threads'", "from 1 to 1024", "got 0"]),
        ("[session]\ninter_op_threads = -2\n", ["'session.inter_op_threads'", "from 1 to 1024"]),
        ("[session]\nintra_op_threads = '4'\n", ["'session.intra_op_threads'", "integer", "(string)"]),
        ("[session]\nintra_op_threads = true\n", ["'session.intra_op_threads'", "(boolean)"]),
        ("[session]\nintra_op_threads = 2.5\n", ["'session.intra_op_threads'", "(float)"]),
        ("[session]\ncpu_mem_arena = 'no'\n", ["'session.cpu_mem_arena'", "true or false"]),
        ("[session]\nexecution_mode = 'fast'\n", ["'session.execution_mode'", '"sequential", "parallel"']),
        ("[session]\ngraph_optimization_level = 3\n", ["'session.graph_optimization_level'", '"disable"', '"all"']),
        ("[encoding]\nvariants = ['int2']\n", ["'encoding.variants'", "'int2'", "fp32, fp16, int8, int4"]),
        ("[encoding]\nvariants = 'int8'\n", ["'encoding.variants'", "list of strings"]),
        ("[encoding]\nvariants = []\n", ["'encoding.variants'", "at least one of fp32, fp16, int8"]),
        ("[encoding]\nvariants = ['int8', 'int8']\n", ["'encoding.variants'", "twice"]),
        ("[encoding]\ntoken_budget = 0\n", ["'encoding.token_budget'", "from 1 to"]),
        ("[encoding]\nascii_fast_path = 'off'\n", ["'encoding.ascii_fast_path'", "true or false", "(string)"]),
        ("[encoding]\nfast_path = false\n", ["unknown key 'encoding.fast_path'", "ascii_fast_path"]),
        ("[match]\narchitectures = ['sparc']\n", ["'match.architectures'", "'sparc'", "aarch64", "x86_64"]),
        ("[match]\ncpu_part = ['A53']\n", ["'match.cpu_part'", "hexadecimal"]),
        (
            "[match]\nmin_memory_mb = 800\nmax_memory_mb = 500\n",
            ["'match.min_memory_mb' (800)", "'match.max_memory_mb' (500)"],
        ),
        ("session = 4\n", ["'session' must be a table"]),
        ("name = 'Bad Name'\n", ["'name'", "a-z"]),
    ],
)
def test_bad_files_are_refused_with_file_key_and_allowed_values(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        read_profile_file(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_bad_file_is_refused_through_load_profile(tmp_path: Path) -> None:
    path = write(tmp_path, "[session]\nintra_op_threads = 0\n")
    with pytest.raises(ProfileError, match="intra_op_threads"):
        load_profile(path)
    with pytest.raises(ProfileError, match="intra_op_threads"):
        load_profile(str(path))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        read_profile_file(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProfileError, match="not UTF-8"):
        read_profile_file(binary)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ProfileError, match="cannot read"):
        read_profile_file(folder)


def test_minimal_file_takes_defaults_and_file_name(tmp_path: Path) -> None:
    profile = read_profile_file(write(tmp_path, "", name="kiosk-7.toml"))
    assert profile.name == "kiosk-7" and profile.source == "file" and profile.match.is_empty
    assert profile.session.intra_op_threads == 1 and profile.encoding.variants == ("int8", "fp16", "fp32")


def test_values_are_normalised(tmp_path: Path) -> None:
    text = "[match]\narchitectures = ['ARM64', 'amd64']\ncpu_part = ['0xD0B']\n"
    profile = read_profile_file(write(tmp_path, text))
    assert profile.match.architectures == ("aarch64", "x86_64")
    assert profile.match.cpu_part == ("0xd0b",)
