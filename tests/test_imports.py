"""Import weight: the runtime must not pull in export or test dependencies, and `m2v_edge` alone pulls in nothing.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RUNTIME_MUST_NOT_IMPORT = ("onnx", "huggingface_hub", "safetensors", "torch", "model2vec", "pymilvus", "tqdm")


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_runtime_imports_no_export_dependencies() -> None:
    modules = _modules_after("import m2v_edge.runtime")
    assert "m2v_edge.runtime" in modules and "onnxruntime" in modules  # the check itself works
    assert _top_level(modules).isdisjoint(RUNTIME_MUST_NOT_IMPORT), sorted(
        _top_level(modules) & set(RUNTIME_MUST_NOT_IMPORT)
    )
    assert not any(name.startswith("m2v_edge.export") for name in modules)


def test_lazy_top_level_embedder_imports_no_export_dependencies() -> None:
    modules = _modules_after("from m2v_edge import EdgeEmbedder")
    assert _top_level(modules).isdisjoint(RUNTIME_MUST_NOT_IMPORT)


def test_package_alone_imports_neither_onnxruntime_nor_onnx() -> None:
    modules = _modules_after("import m2v_edge, m2v_edge.errors, m2v_edge.bundle")
    assert _top_level(modules).isdisjoint({"onnxruntime", "onnx", *RUNTIME_MUST_NOT_IMPORT})


@pytest.mark.parametrize("name", ["EdgeEmbedder", "export_model", "M2VEdgeError", "__version__"])
def test_lazy_names_resolve(name: str) -> None:
    import m2v_edge

    assert getattr(m2v_edge, name) is not None


def test_unknown_attribute() -> None:
    import m2v_edge

    with pytest.raises(AttributeError):
        m2v_edge.no_such_name  # noqa: B018
