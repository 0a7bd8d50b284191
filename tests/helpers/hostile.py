"""Building hostile bundles for the runtime tests: install crafted files with a matching manifest entry, and
check that loading is refused before onnxruntime or tokenizers read anything."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from m2v_edge.errors import BundleError
from m2v_edge.runtime import EdgeEmbedder

SPEC = "wp-f32-L1"  # dim 16, 220 token ids, no mapping
MAPPED_SPEC = "wp-f64-m32w-L3"  # a vocabulary -> row mapping and token weights
FIX = "re-export"


def edit_manifest(bundle: Path, change: Callable[[dict], None]) -> None:
    path = bundle / "m2v_edge.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def install(bundle: Path, name: str, data: bytes) -> Path:
    """Write a file into the bundle and make its manifest entry match it (the sha256 check then passes)."""
    path = bundle / name
    path.write_bytes(data)

    def update(manifest: dict) -> None:
        core = (manifest.get("core_tokenizer") or {}).get("file")
        files = [*manifest["variants"].values(), *manifest.get("tables", {}).values(), manifest["tokenizer"]]
        for entry in [*files, *([core] if core else [])]:
            if entry["file"] == name:
                entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    edit_manifest(bundle, update)
    return path


def graph_of(bundle: Path, variant: str = "fp32") -> onnx.ModelProto:
    """A variant's graph as exported: its arrays still references to its data file."""
    return onnx.load(str(bundle / f"model.{variant}.onnx"), load_external_data=False)


def install_graph(bundle: Path, model: onnx.ModelProto, variant: str = "fp32") -> Path:
    return install(bundle, f"model.{variant}.onnx", model.SerializeToString())


def external(tensor: onnx.TensorProto, location: str | None) -> onnx.TensorProto:
    """Move a tensor's data to an external file reference (no location: only `data_location` is set)."""
    del tensor.external_data[:]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    if location is not None:
        for key, value in (("location", location), ("offset", "0"), ("length", "64")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return tensor


def external_tensor(name: str, location: str | None = "weights.bin") -> onnx.TensorProto:
    return external(numpy_helper.from_array(np.zeros(16, dtype=np.float32), name=name), location)


def refused(bundle: Path, *needles: str, variant: str = "fp32", readers: list[str] | None = None,
            tokenizer_read: bool = True, tokenizing: str = "python") -> str:
    """Load twice (a refused file gets no verification stamp): both must raise BundleError naming `needles`.

    The Python path by default: it reads tokenizer.json (with tokenizers) before the graph, which `readers` records;
    the native path reads tokenizer.m2v instead (see test_runtime_native_hostile.py)."""
    messages = []
    for _ in range(2):
        if readers is not None:
            readers.clear()
        with pytest.raises(BundleError) as info:
            EdgeEmbedder(bundle, variant=variant, tokenizing=tokenizing)
        messages.append(str(info.value))
        if readers is not None:
            assert readers == (["tokenizers"] if tokenizer_read else []), f"files were read: {readers}"
    assert messages[0] == messages[1]
    for needle in needles:
        assert needle in messages[0], f"{needle!r} not in: {messages[0]}"
    assert "\n" not in messages[0]
    return messages[0]
