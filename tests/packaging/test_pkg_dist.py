"""What `make dist` produces: the m2v-edge sdist, its x86-64 and aarch64 wheels, and the shipped model as a model
wheel."""

from __future__ import annotations

import json
import sys
import sysconfig
import tarfile
import zipfile

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from pkg_support import AARCH64_PLATFORM, REPO, SHIPPED_VARIANTS, WHEEL_TARGET, Dist, Report
from wheel_checks import check_record, elf_machine, elf_needs, metadata, wheel_text

import m2v_edge
from m2v_edge.bundle import FORMAT_VERSION
from m2v_edge.model_wheel import FIRST_READER
from m2v_edge.runtime import native

PROFILES = sorted(p.name for p in (REPO / "m2v_edge" / "device_profiles" / "profiles").glob("*.toml"))
NATIVE_SOURCES = sorted(p.name for p in (REPO / "m2v_edge" / "_native").iterdir() if p.suffix in (".c", ".h"))
WHEEL_GUARD = 400_000
"""The size each m2v-edge wheel must stay under (a regression guard); the issue's target, WHEEL_TARGET, is reported.
Measured: about 340-355 kB each (x86-64 and aarch64). About 260 kB are the Python modules (sync and serve included),
device profiles and metadata (the README is the long description, 21 kB compressed); the compiled core adds about
77 kB compressed (245-265 kB as a file, 195 kB of it the Unicode tables that let it match tokenizers' normalization
without loading tokenizers)."""
PY = f"cp{sys.version_info.major}{sys.version_info.minor}"
WHEELS = {
    "x86-64": ("wheel", f"{PY}-{PY}-linux_x86_64", 62, f"_core{sysconfig.get_config_var('EXT_SUFFIX')}"),
    "aarch64": ("aarch64_wheel", f"cp311-cp311-{AARCH64_PLATFORM}", 183, "_core.cpython-311-aarch64-linux-gnu.so"),
}
"""Each wheel: its `Dist` field, its one tag, its core's ELF machine (the ELF specification's EM_X86_64 and
EM_AARCH64) and file name. The aarch64 wheel is for bookworm's Python 3.11, whatever Python builds it."""


@pytest.mark.parametrize("machine", sorted(WHEELS))
def test_wheel_holds_the_code_its_core_and_every_device_profile_and_nothing_else(dist: Dist, machine: str) -> None:
    field, _, _, core = WHEELS[machine]
    names = set(check_record(getattr(dist, field)))
    assert PROFILES and {f"m2v_edge/device_profiles/profiles/{name}" for name in PROFILES} <= names
    assert "m2v_edge/device_profiles/tune_corpus.txt" in names
    assert {"m2v_edge/models.py", "m2v_edge/model_wheel.py", "m2v_edge/commands/models.py"} <= names
    assert {"m2v_edge/serve/app.py", "m2v_edge/serve/search_page.html"} <= names
    assert all(name.startswith(("m2v_edge/", "m2v_edge-")) for name in names), sorted(names)
    assert not [name for name in names if name.endswith((".onnx", ".safetensors", ".pyc"))]
    assert [name for name in names if name.endswith(".so")] == [f"m2v_edge/{core}"]
    assert not [name for name in names if name.startswith("m2v_edge/_native/")], "C sources belong in the sdist"


@pytest.mark.parametrize("machine", sorted(WHEELS))
def test_wheel_tag_and_the_machine_of_its_core(dist: Dist, machine: str) -> None:
    field, tag, elf, core = WHEELS[machine]
    wheel = getattr(dist, field)
    _, version, _, tags = parse_wheel_filename(wheel.name)
    assert str(version) == m2v_edge.__version__ and {str(t) for t in tags} == {tag}
    assert f"Tag: {tag}" in wheel_text(wheel, "WHEEL").splitlines()
    assert "Root-Is-Purelib: false" in wheel_text(wheel, "WHEEL").splitlines()
    with zipfile.ZipFile(wheel) as archive:
        assert elf_machine(archive.read(f"m2v_edge/{core}")) == elf


def test_aarch64_core_needs_exactly_the_glibc_its_tag_names(dist: Dist) -> None:
    """manylinux_2_34 promises a glibc >= 2.34 and nothing else outside the manylinux libraries (PEP 600): the
    core names only glibc's libraries, needs no symbol version newer than GLIBC_2.34, and one that new (the tag is
    the oldest glibc the core can run on)."""
    with zipfile.ZipFile(dist.aarch64_wheel) as archive:
        needed, versions = elf_needs(archive.read(f"m2v_edge/{WHEELS['aarch64'][3]}"))
    assert needed <= {"libc.so.6", "libm.so.6", "libpthread.so.0", "ld-linux-aarch64.so.1"}, needed
    glibc = {tuple(map(int, name.removeprefix("GLIBC_").split("."))) for names in versions.values() for name in names}
    assert all(name.startswith("GLIBC_") for names in versions.values() for name in names), versions
    required = max(glibc)
    assert f"manylinux_{required[0]}_{required[1]}_aarch64" == AARCH64_PLATFORM, versions


def test_wheel_metadata_version_dependencies_and_extras(dist: Dist) -> None:
    assert wheel_text(dist.aarch64_wheel, "METADATA") == wheel_text(dist.wheel, "METADATA")  # one sdist, two builds
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
    sizes = {wheel: wheel.stat().st_size for wheel in (dist.wheel, dist.aarch64_wheel)}
    for wheel, size in sizes.items():
        state = "meets" if size < WHEEL_TARGET else "misses"
        report.size(f"m2v-edge wheel ({wheel.name})", size, f"{state} the {WHEEL_TARGET // 1000} kB target")
    report.size(f"m2v-edge sdist ({dist.sdist.name})", dist.sdist.stat().st_size)
    report.size(f"model wheel ({dist.model_wheel.name})", dist.model_wheel.stat().st_size)
    assert max(sizes.values()) < WHEEL_GUARD, sizes


def test_sdist_builds_the_same_package(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "m2v_edge/__init__.py", "m2v_edge/models.py"} <= names
    assert {"setup.py", "MANIFEST.in", *(f"m2v_edge/_native/{name}" for name in NATIVE_SOURCES)} <= names
    assert not [name for name in names if name.endswith(".so")], "no compiled core in the sdist"
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
    # tokenizer.m2v: the native core's tokenizer, which the export writes where it has the core (so unless
    # M2V_EDGE_NATIVE=0 turns it off here) and has verified it against tokenizers.
    core = [manifest["core_tokenizer"]["file"]] if native.available() else []
    assert manifest["core_tokenizer"]["file"] == (core[0] if core else None)
    for entry in [*manifest["variants"].values(), *manifest["tables"].values(), manifest["tokenizer"], *core,
                  *manifest["licence_files"]]:
        assert sizes[bundle + entry["file"]] == entry["size"]
    assert {name.rsplit("/", 1)[-1] for name in sizes if name.startswith(bundle)} == {
        "m2v_edge.json", "tokenizer.json", "ATTRIBUTION.txt", "model.int8.onnx", "model.int8.data", "model.fp16.onnx",
        "model.fp16.data", *(entry["file"] for entry in core),
    }
