"""The bundle format module: manifest round trip, version and field checks, file verification."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from m2v_edge.bundle import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    FileEntry,
    Manifest,
    model_file,
    table_file,
    read_manifest,
    sha256_file,
    verify_file,
)
from m2v_edge.errors import BundleError


@pytest.fixture
def bundle(potion_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the potion bundle's small files (manifest, tokenizer, licence) and a fresh verification cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in ("m2v_edge.json", "tokenizer.json", "ATTRIBUTION.txt"):
        shutil.copy(potion_bundle / name, copy / name)
    return copy


def test_manifest_round_trip_is_byte_stable(potion_bundle: Path) -> None:
    text = (potion_bundle / MANIFEST_FILE).read_text(encoding="utf-8")
    manifest = read_manifest(potion_bundle)
    assert manifest.to_json() == text
    assert Manifest.from_json(text) == manifest
    assert list(json.loads(text)) == sorted(json.loads(text))  # sorted keys


def test_manifest_values(potion_bundle: Path) -> None:
    manifest = read_manifest(potion_bundle)
    assert manifest.format_version == FORMAT_VERSION == 3
    assert manifest.tables["int8"].file == table_file("int8") == "model.int8.data"
    assert manifest.char_limit == manifest.max_length * manifest.median_token_length
    assert manifest.variants["int8"].file == model_file("int8") == "model.int8.onnx"
    assert manifest.fingerprint("fp32") != manifest.fingerprint("int8")


def test_char_limit_without_truncation(potion_bundle: Path) -> None:
    data = json.loads((potion_bundle / MANIFEST_FILE).read_text(encoding="utf-8"))
    data["max_length"] = None
    assert Manifest.from_json(json.dumps(data)).char_limit is None


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "format_version"),
        ('{"format_version": "1"}', "format_version"),
        ('{"format_version": 1}', "malformed"),
    ],
)
def test_malformed_manifests(text: str, needle: str) -> None:
    with pytest.raises(BundleError, match=needle):
        Manifest.from_json(text, where="/some/bundle/m2v_edge.json")


def test_newer_format_version(potion_bundle: Path) -> None:
    data = json.loads((potion_bundle / MANIFEST_FILE).read_text(encoding="utf-8"))
    data["format_version"] = 999
    with pytest.raises(BundleError) as info:
        Manifest.from_json(json.dumps(data), where="/b/m2v_edge.json")
    assert "999" in str(info.value) and "upgrade" in str(info.value) and "/b/m2v_edge.json" in str(info.value)


def test_unknown_extra_fields_are_kept_out_of_the_way(potion_bundle: Path) -> None:
    data = json.loads((potion_bundle / MANIFEST_FILE).read_text(encoding="utf-8"))
    data["extra"]["something_new"] = [1, 2]
    assert Manifest.from_json(json.dumps(data)).extra["something_new"] == [1, 2]


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        read_manifest(tmp_path / "missing")
    with pytest.raises(BundleError, match="not an m2v-edge bundle"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(BundleError, match=str(tmp_path)):
        read_manifest(tmp_path)


def test_verify_file_checks_a_file_once_per_state(bundle: Path) -> None:
    """The sha256 and the format check run on the first load only; another file in its place is checked again."""
    entry = read_manifest(bundle).tokenizer
    checked: list[Path] = []
    assert verify_file(bundle, entry, check=checked.append, check_id="t") == bundle / "tokenizer.json"
    assert checked == [bundle / "tokenizer.json"]
    assert verify_file(bundle, entry, check=checked.append, check_id="t") == bundle / "tokenizer.json"
    assert len(checked) == 1  # remembered: neither hashed nor checked again
    verify_file(bundle, entry, check=checked.append, check_id="another check")
    assert len(checked) == 2  # a different check is not covered by the first one's stamp
    path = bundle / "tokenizer.json"
    shutil.copy(path, bundle / "copy")
    os.replace(bundle / "copy", path)  # the same bytes in another file: not the state that was checked
    verify_file(bundle, entry, check=checked.append, check_id="t")
    assert len(checked) == 3


def test_verify_file_refuses_paths_outside_the_bundle(bundle: Path) -> None:
    for name in ("../tokenizer.json", "/etc/passwd", "sub/../../x"):
        with pytest.raises(BundleError, match="outside the bundle"):
            verify_file(bundle, FileEntry(file=name, sha256="0" * 64, size=1))


def test_verify_file_size_and_hash(bundle: Path) -> None:
    path = bundle / "ATTRIBUTION.txt"
    entry = FileEntry.of(bundle, "ATTRIBUTION.txt")
    verify_file(bundle, entry)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(BundleError, match="sha256"):
        verify_file(bundle, entry)
    path.write_bytes(data + b"\n")
    with pytest.raises(BundleError, match="truncated or was replaced"):
        verify_file(bundle, entry)
    path.unlink()
    with pytest.raises(BundleError, match="missing"):
        verify_file(bundle, entry)


def test_verification_cache_that_cannot_be_written(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    entry = FileEntry.of(bundle, "tokenizer.json")
    assert verify_file(bundle, entry) == bundle / "tokenizer.json"
