"""What `make dist` produces: the m2v-edge sdist and wheel, and the shipped model as a model wheel."""

from __future__ import annotations

import json
import tarfile
import zipfile

from packaging.utils import canonicalize_name
from pkg_support import REPO, SHIPPED_VARIANTS, WHEEL_TARGET, Dist, Report
from wheel_checks import check_record, metadata

import m2v_edge
from m2v_edge.bundle import FORMAT_VERSION
from m2v_edge.model_wheel import FIRST_READER

PROFILES = sorted(p.name for p in (REPO / "m2v_edge" / "device_profiles" / "profiles").glob("*.toml"))
WHEEL_GUARD = 175_000
"""The size the wheel must stay under (a regression guard); the issue's target, WHEEL_TARGET, is reported."""


def test_wheel_holds_the_code_and_every_device_profile_and_nothing_else(dist: Dist) -> None:
    names = set(check_record(dist.wheel))
    assert PROFILES and {f"m2v_edge/device_profiles/profiles/{name}" for name in PROFILES} <= names
    assert "m2v_edge/device_profiles/tune_corpus.txt" in names
    assert {"m2v_edge/models.py", "m2v_edge/model_wheel.py", "m2v_edge/commands/models.py"} <= names
    assert {"m2v_edge/serve/app.py", "m2v_edge/serve/search_page.html"} <= names
    assert all(name.startswith(("m2v_edge/", "m2v_edge-")) for name in names), sorted(names)
    assert not [name for name in names if name.endswith((".onnx", ".safetensors", ".pyc"))]


def test_wheel_metadata_version_dependencies_and_extras(dist: Dist) -> None:
    meta = metadata(dist.wheel)
    assert str(meta.version) == m2v_edge.__version__
    assert {str(extra) for extra in meta.provides_extra or []} >= {"export", "milvus", "serve"}
    by_extra: dict[str, set[str]] = {}
    for requirement in meta.requires_dist or []:
        marker = str(requirement.marker or "")
        extra = marker.split("extra ==")[-1].strip(" \"'") if "extra ==" in marker else ""
        by_extra.setdefault(extra, set()).add(canonicalize_name(requirement.name))
    assert by_extra[""] == {"onnxruntime", "numpy", "tokenizers", "tomli"}
    assert by_extra["export"] == {"onnx", "huggingface-hub", "safetensors"}
    assert by_extra["milvus"] == {"pymilvus", "milvus-lite"}
    assert by_extra["serve"] == {"starlette", "uvicorn", "httptools", "uvloop", "orjson"}
    with zipfile.ZipFile(dist.wheel) as archive:
        scripts = archive.read(f"m2v_edge-{m2v_edge.__version__}.dist-info/entry_points.txt").decode()
    assert "m2v-edge = m2v_edge.cli:main" in scripts


def test_wheel_size(dist: Dist, report: Report) -> None:
    size = dist.wheel.stat().st_size
    state = "meets" if size < WHEEL_TARGET else "misses"
    report.size(f"m2v-edge wheel ({dist.wheel.name})", size, f"{state} the {WHEEL_TARGET // 1000} kB target")
    report.size(f"m2v-edge sdist ({dist.sdist.name})", dist.sdist.stat().st_size)
    report.size(f"model wheel ({dist.model_wheel.name})", dist.model_wheel.stat().st_size)
    assert size < WHEEL_GUARD


def test_sdist_builds_the_same_package(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "m2v_edge/__init__.py", "m2v_edge/models.py"} <= names
    assert {f"m2v_edge/device_profiles/profiles/{name}" for name in PROFILES} <= names
    assert not [name for name in names if name.startswith(("models/", "bench/data/"))], "no model or data in the sdist"


def test_shipped_model_wheel(dist: Dist) -> None:
    assert dist.model_wheel.name == f"m2v_edge_model_potion_base_8m-{m2v_edge.__version__}-py3-none-any.whl"
    sizes = check_record(dist.model_wheel)
    meta = metadata(dist.model_wheel)
    assert meta.name == "m2v-edge-model-potion-base-8m" and str(meta.version) == m2v_edge.__version__
    assert [str(r) for r in meta.requires_dist or []] == [f"m2v-edge>={FIRST_READER[FORMAT_VERSION]}"]
    bundle = "m2v_edge_model_potion_base_8m/bundle/"
    with zipfile.ZipFile(dist.model_wheel) as archive:
        manifest = json.loads(archive.read(bundle + "m2v_edge.json"))
    assert sorted(manifest["variants"]) == sorted(SHIPPED_VARIANTS)
    assert manifest["exporter_version"] == m2v_edge.__version__ and manifest["format_version"] == FORMAT_VERSION
    for entry in [*manifest["variants"].values(), *manifest["tables"].values(), manifest["tokenizer"],
                  *manifest["licence_files"]]:
        assert sizes[bundle + entry["file"]] == entry["size"]
    assert {name.rsplit("/", 1)[-1] for name in sizes if name.startswith(bundle)} == {
        "m2v_edge.json", "tokenizer.json", "ATTRIBUTION.txt", "model.int8.onnx", "model.int8.data", "model.fp16.onnx",
        "model.fp16.data",
    }
