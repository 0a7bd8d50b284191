"""Bundles of every format this runtime reads give the same vectors: format 3 (every array in `model.<variant>.data`,
laid out in the manifest), format 2 (only the token table there, written by m2v-edge 0.2) and format 1 (tables
inside the graphs, written by m2v-edge 0.1). The older formats are made from a format-3 export the way those versions
wrote them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from helpers.tiny_models import CORPUS
from onnx import numpy_helper

from m2v_edge.runtime import EdgeEmbedder

VARIANTS = ("fp32", "fp16", "int8")
FORMAT_2_NAMES = {"int4": {"table": "int4_table", "scales": "int4_scales"}}
"""The initializers format 2 named otherwise than format 3 does (by variant)."""
TEXTS = [*CORPUS, "", "[UNK]", "東京 café"]


def _rewrite(bundle: Path, target: Path, version: int, graph: callable) -> Path:
    """A copy of a format-3 bundle with each variant's graph replaced by `graph(model, copy, variant)` (the model read
    with its data file) and its manifest entries updated; `graph` returns the variant's data file entry, if any."""
    copy = Path(shutil.copytree(bundle, target))
    manifest = json.loads((copy / "m2v_edge.json").read_text(encoding="utf-8"))
    tables = {}
    for variant, entry in manifest["variants"].items():
        model = onnx.load(str(copy / entry["file"]))
        (copy / manifest["tables"][variant]["file"]).unlink()
        table = graph(model, copy, variant)
        if table is not None:
            tables[variant] = table
        data = model.SerializeToString()
        (copy / entry["file"]).write_bytes(data)
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    manifest["tables"] = tables
    manifest["format_version"] = version
    (copy / "m2v_edge.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def as_format_1(bundle: Path, target: Path) -> Path:
    """m2v-edge 0.1's bundle: each graph holds its table (and everything else)."""
    return _rewrite(bundle, target, 1, lambda model, copy, variant: None)


def as_format_2(bundle: Path, target: Path) -> Path:
    """m2v-edge 0.2's bundle: the token table alone in `model.<variant>.data`, whole, the other arrays in the graph."""

    def graph(model: onnx.ModelProto, copy: Path, variant: str) -> dict:
        names = FORMAT_2_NAMES.get(variant, {})
        for node in model.graph.node:
            node.input[:] = [names.get(name, name) for name in node.input]
        for tensor in model.graph.initializer:
            tensor.name = names.get(tensor.name, tensor.name)
        table = next(t for t in model.graph.initializer if t.name == names.get("table", "table"))
        data = numpy_helper.to_array(table).tobytes()
        (copy / f"model.{variant}.data").write_bytes(data)
        table.ClearField("raw_data")
        table.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", f"model.{variant}.data"), ("offset", "0"), ("length", str(len(data)))):
            entry = table.external_data.add()
            entry.key, entry.value = key, value
        return {"file": f"model.{variant}.data", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    return _rewrite(bundle, target, 2, graph)


def _same_vectors(old: Path, new: Path, variants: tuple[str, ...], version: int) -> None:
    for variant in variants:
        before, now = EdgeEmbedder(old, variant=variant), EdgeEmbedder(new, variant=variant)
        assert before.manifest.format_version == version and now.manifest.format_version == 3
        np.testing.assert_array_equal(before.encode(TEXTS), now.encode(TEXTS))


def test_format_1_bundles_still_load(potion_bundle: Path, tmp_path: Path) -> None:
    old = as_format_1(potion_bundle, tmp_path / "format1")
    assert not list(old.glob("*.data"))
    _same_vectors(old, potion_bundle, VARIANTS, 1)


def test_format_2_bundles_still_load(potion_bundle: Path, potion_int4_bundle: Path, tmp_path: Path) -> None:
    for bundle, variants in ((potion_bundle, VARIANTS), (potion_int4_bundle, ("int4",))):
        old = as_format_2(bundle, tmp_path / f"format2-{variants[0]}")
        manifest = json.loads((old / "m2v_edge.json").read_text(encoding="utf-8"))
        assert all(set(entry) == {"file", "sha256", "size"} for entry in manifest["tables"].values())
        _same_vectors(old, bundle, variants, 2)
