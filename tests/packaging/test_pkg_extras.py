"""The `[export]`, `[milvus]` and `[serve]` extras, each in its own fresh venv installed offline from the
wheelhouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from clean_venvs import CleanVenv
from pkg_support import MODEL_DISTRIBUTION, MODEL_NAME, POTION, REPORT, Dist
from serve.conftest import ServeProcess

import m2v_edge

MILVUS_ROUND_TRIP = """
import sys
from pymilvus import MilvusClient
from m2v_edge import EdgeEmbedder
embedder = EdgeEmbedder(sys.argv[1], variant="int8", profile="generic")
texts = ["a text editor for the terminal", "plugins for the media player", "tools to monitor hard drives"]
client = MilvusClient(sys.argv[2])
client.create_collection("docs", dimension=embedder.dim, metric_type="COSINE")
rows = [{"id": i, "vector": v.tolist(), "text": t} for i, (t, v) in enumerate(zip(texts, embedder.encode(texts)))]
client.insert("docs", rows)
query = embedder.encode(["play music and video"])[0].tolist()
hits = client.search("docs", data=[query], limit=1, output_fields=["text"])
print(hits[0][0]["entity"]["text"])
client.close()
"""


@pytest.fixture(scope="module")
def export_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> CleanVenv:
    env = CleanVenv(tmp_path_factory.mktemp("export") / "venv", "export extra", REPORT.transcript)
    env.install(wheelhouse, "m2v-edge[export]")
    return env


@pytest.fixture(scope="module")
def milvus_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> CleanVenv:
    env = CleanVenv(tmp_path_factory.mktemp("milvus") / "venv", "milvus extra", REPORT.transcript)
    env.install(wheelhouse, "m2v-edge[milvus]", MODEL_DISTRIBUTION)
    return env


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> CleanVenv:
    env = CleanVenv(tmp_path_factory.mktemp("serve") / "venv", "serve extra", REPORT.transcript)
    env.install(wheelhouse, "m2v-edge[serve]", MODEL_DISTRIBUTION)
    return env


def test_export_extra_exports_the_same_bundle_as_here(export_venv: CleanVenv, dist: Dist) -> None:
    assert export_venv.run("m2v-edge", "--version").stdout.strip() == f"m2v-edge {m2v_edge.__version__}"
    assert [name for name in ("onnx", "huggingface_hub", "safetensors") if not export_venv.has(name)] == []
    assert [name for name in ("pymilvus", "milvus_lite", "torch", "model2vec") if export_venv.has(name)] == []
    out = export_venv.run("m2v-edge", "export", str(POTION), "-o", "bundle", "--variants", "int8,fp16").stdout
    assert "model.int8.onnx" in out and "model.fp16.onnx" in out
    here = json.loads((dist.bundle / "m2v_edge.json").read_text())
    there = json.loads((export_venv.work / "bundle" / "m2v_edge.json").read_text())
    assert there == here  # deterministic export: same files, same sha256, same exporter version


def test_export_extra_packages_a_bundle(export_venv: CleanVenv, dist: Dist) -> None:
    export_venv.run("m2v-edge", "export", str(POTION), "-o", "b8", "--variants", "int8,fp16")
    out = export_venv.cli("package", "b8", "-o", "dist", "--name", "potion-base-8M").stdout
    assert "m2v-edge-model-potion-base-8m" in out
    built = export_venv.work / "dist" / dist.model_wheel.name
    assert built.read_bytes() == dist.model_wheel.read_bytes()  # the same bytes as `make dist`'s, in another venv


def test_milvus_extra_round_trip_with_the_installed_model(milvus_venv: CleanVenv) -> None:
    assert milvus_venv.run("m2v-edge", "--version").stdout.strip() == f"m2v-edge {m2v_edge.__version__}"
    assert milvus_venv.has("pymilvus") and milvus_venv.has("milvus_lite")
    assert [name for name in ("onnx", "safetensors", "torch", "model2vec") if milvus_venv.has(name)] == []
    result = milvus_venv.py(MILVUS_ROUND_TRIP, MODEL_NAME, str(milvus_venv.work / "kiosk.db"))
    assert result.stdout.strip().splitlines()[-1] == "plugins for the media player"
    export = milvus_venv.run("m2v-edge", "export", str(POTION), "-o", "out", check=False)
    assert export.returncode == 2 and "pip install 'm2v-edge[export]'" in export.stderr


def test_serve_extra_serves_the_installed_model_by_its_name(serve_venv: CleanVenv) -> None:
    assert all(serve_venv.has(name) for name in ("starlette", "uvicorn", "orjson", "httptools", "uvloop"))
    assert [name for name in ("onnx", "pymilvus", "torch", "model2vec") if serve_venv.has(name)] == []
    server = ServeProcess(MODEL_NAME, "--port", "0", env=serve_venv.env,
                          program=str(serve_venv.root / "bin" / "m2v-edge"))
    try:
        url = server.wait_ready()
        info = requests.get(f"{url}info", timeout=60).json()
        assert (info["model"], info["dim"], info["version"]) == ("potion-base-8M", 256, m2v_edge.__version__)
        assert len(requests.post(f"{url}embed", json={"inputs": "a text editor"}, timeout=60).json()[0]) == 256
    finally:
        assert server.stop() == 0, server.lines
