"""`m2v-edge package` and name resolution, in this process: a tiny bundle, wheels unpacked onto sys.path.

A wheel is a zip laid out as installed (Root-Is-Purelib), so unpacking one into a folder on sys.path is what
pip does minus the bookkeeping; `importlib.metadata` then finds its entry point like any installed package.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyModels
from wheel_checks import check_record, metadata, wheel_text

import m2v_edge
from m2v_edge import EdgeEmbedder, Model2VecEmbeddingFunction
from m2v_edge.bundle import FORMAT_VERSION, MANIFEST_FILE, SourceInfo
from m2v_edge.commands import models as models_command
from m2v_edge.errors import BundleError
from m2v_edge.model_wheel import FIRST_READER, build_model_wheel, default_model_name
from m2v_edge.models import ENTRY_POINT_GROUP, installed_models, resolve_bundle

SPEC = "wp-f32-L1"
TEXTS = ["the quick brown fox", "", "fonts for the latin alphabet"]


@pytest.fixture
def bundle(tiny_models: TinyModels, tmp_path: Path) -> Path:
    """A private copy of a tiny bundle (fp32, fp16, int8 and a licence file)."""
    return Path(shutil.copytree(tiny_models.bundle(SPEC), tmp_path / "tiny-bundle"))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty site folder put first on sys.path; model modules imported from it are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    # Hide model packages installed in this environment, so that each test sees only what it installs.
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if not _holds_model_packages(entry)])
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _forget_model_modules()
    yield folder
    _forget_model_modules()


def _holds_model_packages(entry: str) -> bool:
    return Path(entry or ".").is_dir() and any(Path(entry or ".").glob("m2v_edge_model_*.dist-info"))


def _forget_model_modules() -> None:
    for name in [name for name in sys.modules if name.startswith("m2v_edge_model_")]:
        del sys.modules[name]


def install(wheel: Path, site: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="m2v-edge")
    models_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_wheel_layout_record_metadata_and_entry_point(bundle: Path, tmp_path: Path) -> None:
    wheel = build_model_wheel(bundle, tmp_path / "dist", name="Tiny_Model.v1", version="2.0.post1")
    assert wheel.name == "m2v_edge_model_tiny_model_v1-2.0.post1-py3-none-any.whl"
    sizes = check_record(wheel)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    inside = {name.split("/bundle/", 1)[1] for name in sizes if "/bundle/" in name}
    listed = {e["file"] for e in [*manifest["variants"].values(), *manifest["tables"].values(), manifest["tokenizer"],
                                  *manifest["licence_files"]]}
    assert inside == listed | {MANIFEST_FILE} and manifest["licence_files"]
    meta = metadata(wheel)
    assert (meta.name, str(meta.version)) == ("m2v-edge-model-tiny-model-v1", "2.0.post1")
    assert [str(r) for r in meta.requires_dist or []] == [f"m2v-edge>={FIRST_READER[FORMAT_VERSION]}"]
    assert wheel_text(wheel, "entry_points.txt") == (
        f"[{ENTRY_POINT_GROUP}]\ntiny-model-v1 = m2v_edge_model_tiny_model_v1:BUNDLE\n"
    )
    assert "Root-Is-Purelib: true" in wheel_text(wheel, "WHEEL") and "Tag: py3-none-any" in wheel_text(wheel, "WHEEL")


def test_every_bundle_format_has_a_first_reader() -> None:
    assert set(range(1, FORMAT_VERSION + 1)) <= set(FIRST_READER)


def test_same_bundle_same_bytes(bundle: Path, tmp_path: Path) -> None:
    first = build_model_wheel(bundle, tmp_path / "a", name="tiny")
    copy = Path(shutil.copytree(bundle, tmp_path / "elsewhere" / "copied"))
    for path in copy.iterdir():
        os.utime(path, (1_700_000_000, 1_700_000_000))
    copy.chmod(0o700)
    second = build_model_wheel(copy, tmp_path / "b", name="tiny")
    assert first.read_bytes() == second.read_bytes()
    assert first.name.endswith(f"-{m2v_edge.__version__}-py3-none-any.whl")  # the default version


def test_tampered_bundle_is_refused_and_nothing_is_left(bundle: Path, tmp_path: Path) -> None:
    graph = bundle / "model.int8.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    out = tmp_path / "dist"
    with pytest.raises(BundleError, match=r"model\.int8\.onnx does not match its manifest"):
        build_model_wheel(bundle, out, name="tiny")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [("bad name", None, "not a valid model name"), ("-x", None, "not a valid model name"),
     ("tiny", "1.0-beta", "PEP 440"), ("tiny", "v1", "PEP 440")],
)
def test_bad_name_or_version(bundle: Path, tmp_path: Path, name: str, version: str | None, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        build_model_wheel(bundle, tmp_path, name=name, version=version)


def test_default_name_is_the_last_part_of_the_source_id(bundle: Path) -> None:
    from m2v_edge.bundle import read_manifest

    manifest = read_manifest(bundle)
    assert default_model_name(manifest) == SPEC
    hub = dataclasses.replace(manifest, source=SourceInfo("minishlab/potion-base-8M", revision="abc", sha256="0"))
    assert default_model_name(hub) == "potion-base-8M"


def test_installed_model_loads_by_name(bundle: Path, tmp_path: Path, site: Path) -> None:
    install(build_model_wheel(bundle, tmp_path / "dist", name="Tiny"), site)
    expected = EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(TEXTS)
    for name in ("tiny", "TINY"):
        embedder = EdgeEmbedder(name, variant="fp32", profile="generic")
        assert embedder.bundle_dir == site / "m2v_edge_model_tiny" / "bundle"
        np.testing.assert_array_equal(embedder.encode(TEXTS), expected)
    function = Model2VecEmbeddingFunction(model_source="tiny", variant="fp32", profile="generic")
    np.testing.assert_array_equal(np.array(function.encode_documents(TEXTS)), expected)
    assert [(m.name, m.distribution, m.version) for m in installed_models()] == [
        ("tiny", "m2v-edge-model-tiny", m2v_edge.__version__)
    ]


def test_an_existing_path_wins_over_an_installed_name(
    bundle: Path, tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(build_model_wheel(bundle, tmp_path / "dist", name="tiny"), site)
    work = tmp_path / "work"
    shutil.copytree(bundle, work / "tiny")
    monkeypatch.chdir(work)
    assert resolve_bundle("tiny") == Path("tiny")
    assert EdgeEmbedder("tiny", profile="generic").bundle_dir == Path("tiny")
    assert Model2VecEmbeddingFunction(model_source="tiny", profile="generic").embedder.bundle_dir == Path("tiny")


def test_unknown_name_says_what_is_installed_and_how_to_install(bundle: Path, tmp_path: Path, site: Path) -> None:
    with pytest.raises(BundleError, match="no model packages are installed"):
        resolve_bundle("potion-base-8m")
    install(build_model_wheel(bundle, tmp_path / "dist", name="tiny"), site)
    with pytest.raises(BundleError) as info:
        EdgeEmbedder("potion-base-8M")
    message = str(info.value)
    assert "'potion-base-8M'" in message and "installed models: tiny" in message
    assert "pip install m2v-edge-model-potion-base-8m" in message and "does not exist" in message
    with pytest.raises(BundleError, match="does not exist; export one"):
        resolve_bundle(tmp_path / "no" / "such" / "bundle")


def test_two_packages_claiming_one_name_are_refused(bundle: Path, tmp_path: Path, site: Path) -> None:
    install(build_model_wheel(bundle, tmp_path / "dist", name="tiny"), site)
    install(build_model_wheel(bundle, tmp_path / "dist", name="other"), site)
    points = site / f"m2v_edge_model_other-{m2v_edge.__version__}.dist-info" / "entry_points.txt"
    points.write_text(points.read_text().replace("other =", "tiny ="))
    with pytest.raises(BundleError, match=r"more than one installed package .*m2v-edge-model-other.*uninstall"):
        EdgeEmbedder("tiny")


def test_newer_bundle_format_in_an_installed_package_asks_for_an_upgrade(
    bundle: Path, tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(build_model_wheel(bundle, tmp_path / "dist", name="tiny"), site)
    installed = site / "m2v_edge_model_tiny" / "bundle" / MANIFEST_FILE
    data = json.loads(installed.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    installed.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=f"uses bundle format {FORMAT_VERSION + 1}.*upgrade m2v-edge"):
        EdgeEmbedder("tiny")
    assert run_command("models") == 0
    assert "upgrade m2v-edge" in capsys.readouterr().out


def test_package_and_models_commands(
    bundle: Path, tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command("models") == 0
    assert "no model packages installed" in capsys.readouterr().out
    assert run_command("package", str(bundle), "-o", str(tmp_path / "dist"), "--version", "3.1") == 0
    out = capsys.readouterr().out
    wheel = tmp_path / "dist" / f"m2v_edge_model_{SPEC.lower().replace('-', '_')}-3.1-py3-none-any.whl"
    assert f"wrote {wheel}" in out and f"m2v-edge-model-{SPEC.lower()}" in out
    install(wheel, site)
    assert run_command("models") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == [SPEC.lower(), f"m2v-edge-model-{SPEC.lower()}", "3.1"]
    assert "fp32" in lines[0] and "int8" in lines[0] and lines[1].strip().endswith("bundle")
    assert run_command("models", "--json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    assert row["name"] == SPEC.lower() and row["error"] is None
    assert row["variants"] == {
        name: entry["size"] + manifest["tables"][name]["size"] for name, entry in manifest["variants"].items()
    }
    assert row["variants"]["int8"] == sum((bundle / f"model.int8.{ext}").stat().st_size for ext in ("onnx", "data"))


def test_package_ships_only_the_variants_asked_for(
    bundle: Path, tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from m2v_edge.cli import main

    argv = ["package", str(bundle), "--name", "tiny", "--variants", "int8"]
    assert main([*argv, "-o", str(tmp_path / "dist")]) == 0
    assert "variants int8\n" in capsys.readouterr().out
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    expected = {manifest["variants"]["int8"]["file"], manifest["tables"]["int8"]["file"], manifest["tokenizer"]["file"],
                *(entry["file"] for entry in manifest["licence_files"]), MANIFEST_FILE}
    assert {name.split("/bundle/", 1)[1] for name in check_record(wheel) if "/bundle/" in name} == expected
    assert main([*argv, "-o", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / wheel.name).read_bytes() == wheel.read_bytes()  # still reproducible
    assert wheel.stat().st_size < build_model_wheel(bundle, tmp_path / "all", name="tiny").stat().st_size

    install(wheel, site)
    embedder = EdgeEmbedder("tiny", profile="generic")
    assert list(embedder.manifest.variants) == ["int8"] and embedder.variant == "int8"
    np.testing.assert_array_equal(embedder.encode(TEXTS), EdgeEmbedder(bundle, variant="int8").encode(TEXTS))
    with pytest.raises(BundleError, match="has no variant 'fp32'; it has int8"):
        EdgeEmbedder("tiny", variant="fp32")
