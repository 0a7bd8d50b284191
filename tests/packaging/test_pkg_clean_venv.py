"""The m2v-edge wheel in a fresh venv with no extras, plus the shipped model package, installed offline."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
from clean_venvs import CleanVenv
from helpers.tiny_models import TinyModels
from pkg_support import MODEL_DISTRIBUTION, MODEL_NAME, REPO, Dist, Report

import m2v_edge
from m2v_edge.bundle import FORMAT_VERSION, MANIFEST_FILE
from m2v_edge.model_wheel import build_model_wheel

IMPORTED = """
import json, sys
from m2v_edge import EdgeEmbedder
EdgeEmbedder(sys.argv[1], profile="generic").encode(["hello"])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""
NOT_INSTALLED = ("onnx", "safetensors", "pymilvus", "milvus_lite", "torch", "model2vec", "starlette", "uvicorn",
                 "orjson")


def test_version_and_where_the_package_comes_from(base_venv: CleanVenv) -> None:
    assert base_venv.run("m2v-edge", "--version").stdout.strip() == f"m2v-edge {m2v_edge.__version__}"
    location = base_venv.py("import m2v_edge; print(m2v_edge.__file__)").stdout.strip()
    assert Path(location).is_relative_to(base_venv.site_packages())


def test_no_export_or_milvus_dependencies(base_venv: CleanVenv, report: Report) -> None:
    assert [name for name in NOT_INSTALLED if base_venv.has(name)] == []
    # tokenizers (>= 0.14) requires huggingface_hub, so pip installs it; the runtime never imports it.
    imported = set(json.loads(base_venv.py(IMPORTED, MODEL_NAME).stdout))
    assert "onnxruntime" in imported and "m2v_edge" in imported
    assert imported.isdisjoint({"huggingface_hub", "onnx", "safetensors", "pymilvus", "tqdm", "requests", "httpx"})
    size = sum(p.stat().st_size for p in base_venv.site_packages().rglob("*") if p.is_file())
    report.size("site-packages, no extras (with the model package)", size)


def test_encodes_with_a_bundle_folder_and_with_the_installed_name(
    base_venv: CleanVenv, dist: Dist, potion_vectors: tuple[list[str], np.ndarray]
) -> None:
    texts, expected = potion_vectors
    np.testing.assert_allclose(base_venv.encode(str(dist.bundle), texts), expected, atol=1e-6)
    np.testing.assert_allclose(base_venv.encode(MODEL_NAME, texts), expected, atol=1e-6)
    np.testing.assert_allclose(base_venv.encode("potion-base-8M", texts, compat=True), expected, atol=1e-6)
    (base_venv.work / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = base_venv.run("m2v-edge", "encode", MODEL_NAME, "--variant", "int8", "--profile", "generic",
                        "--input", "texts.txt")
    rows = np.array([json.loads(line) for line in out.stdout.splitlines()], dtype=np.float32)
    np.testing.assert_allclose(rows, expected, atol=1e-6)


def test_the_wheel_brings_the_native_core_and_bundles_use_it(base_venv: CleanVenv, dist: Dist) -> None:
    cores = sorted(path.name for path in (base_venv.site_packages() / "m2v_edge").glob("_core.*.so"))
    assert cores == [f"_core{sysconfig.get_config_var('EXT_SUFFIX')}"]
    assert base_venv.tokenizing(MODEL_NAME) == ("True", dist.shipped_path, "-")


def test_device_profiles_ship_and_load(base_venv: CleanVenv) -> None:
    names = sorted(p.stem for p in (REPO / "m2v_edge" / "device_profiles" / "profiles").glob("*.toml"))
    listing = base_venv.run("m2v-edge", "profile", "list").stdout
    assert all(name in listing for name in names), listing
    code = "from m2v_edge.device_profiles import load_profile\nfor n in {names!r}: print(load_profile(n).name)"
    assert base_venv.py(code.format(names=names)).stdout.split() == names


def test_export_names_the_extra_to_install(base_venv: CleanVenv) -> None:
    result = base_venv.run("m2v-edge", "export", str(REPO / "models" / "potion-base-8M"), "-o", "out", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "m2v-edge export: error: m2v-edge export needs the 'export' extra: pip install 'm2v-edge[export]'"
    ]
    code = "from m2v_edge import Model2VecEmbeddingFunction as F\ntry: F('minishlab/potion-base-8M')\n" \
           "except Exception as exc: print(type(exc).__name__, exc)"
    assert "MissingExtraError" in (out := base_venv.py(code).stdout) and "pip install 'm2v-edge[export]'" in out


def test_serve_names_the_extra_to_install(base_venv: CleanVenv) -> None:
    result = base_venv.run("m2v-edge", "serve", MODEL_NAME, "--port", "0", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "m2v-edge serve: error: m2v-edge serve needs the 'serve' extra: pip install 'm2v-edge[serve]'"
    ]


def test_models_command_lists_the_installed_model(base_venv: CleanVenv, dist: Dist) -> None:
    out = base_venv.cli("models").stdout.splitlines()
    row = next(line for line in out if line.startswith(MODEL_NAME + " "))
    assert f"{MODEL_DISTRIBUTION} {m2v_edge.__version__}" in row and "dim 256" in row
    assert "fp16 15.1 MB" in row and "int8 7.7 MB" in row
    (listed,) = [json.loads(line) for line in base_venv.cli("models", "--json").stdout.splitlines()
                 if json.loads(line)["name"] == MODEL_NAME]
    manifest = json.loads((dist.bundle / MANIFEST_FILE).read_text())
    assert listed["variants"] == {
        name: entry["size"] + manifest["tables"][name]["size"] for name, entry in manifest["variants"].items()
    }
    assert Path(listed["path"]).is_relative_to(base_venv.site_packages())


def test_newer_format_in_an_installed_package_then_uninstall(
    base_venv: CleanVenv, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """A package built by a newer m2v-edge (its manifest says a newer format) is refused with 'upgrade'."""
    bundle = Path(shutil.copytree(tiny_models.bundle("wp-f32-L1"), tmp_path / "bundle"))
    wheel = build_model_wheel(bundle, tmp_path / "dist", name="future-model")
    base_venv.install(tmp_path / "dist", "m2v-edge-model-future-model")
    installed = base_venv.site_packages() / "m2v_edge_model_future_model" / "bundle" / MANIFEST_FILE
    data = json.loads(installed.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    installed.write_text(json.dumps(data))

    (base_venv.work / "one.txt").write_text("hello\n", encoding="utf-8")
    result = base_venv.run("m2v-edge", "encode", "future-model", "--input", "one.txt", check=False)
    assert result.returncode == 2
    assert f"uses bundle format {FORMAT_VERSION + 1} but this m2v-edge reads up to {FORMAT_VERSION}" in result.stderr
    assert "upgrade m2v-edge (pip install -U m2v-edge)" in result.stderr
    listing = base_venv.cli("models").stdout
    assert "future-model" in listing and "upgrade m2v-edge" in listing and MODEL_NAME in listing

    base_venv.uninstall("m2v-edge-model-future-model")
    assert not (base_venv.site_packages() / "m2v_edge_model_future_model").exists()
    assert "future-model" not in base_venv.cli("models").stdout
    assert wheel.is_file()
