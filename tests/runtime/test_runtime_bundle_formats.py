"""Bundles of every format this runtime reads give the same vectors: format 2 (tables in `model.<variant>.data`) and
format 1 (tables inside the graphs, written by m2v-edge 0.1)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from helpers.tiny_models import CORPUS

from m2v_edge.runtime import EdgeEmbedder

VARIANTS = ("fp32", "fp16", "int8")


def as_format_1(bundle: Path, target: Path) -> Path:
    """A copy of a format-2 bundle rewritten as m2v-edge 0.1 wrote bundles: each table back inside its graph."""
    copy = Path(shutil.copytree(bundle, target))
    manifest = json.loads((copy / "m2v_edge.json").read_text(encoding="utf-8"))
    for variant, entry in manifest["variants"].items():
        data = onnx.load(str(copy / entry["file"])).SerializeToString()  # onnx reads the external table in
        (copy / entry["file"]).write_bytes(data)
        (copy / manifest["tables"][variant]["file"]).unlink()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    del manifest["tables"]
    manifest["format_version"] = 1
    (copy / "m2v_edge.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def test_format_1_bundles_still_load(potion_bundle: Path, tmp_path: Path) -> None:
    old = as_format_1(potion_bundle, tmp_path / "format1")
    assert not list(old.glob("*.data"))
    texts = [*CORPUS, "", "[UNK]", "東京 café"]
    for variant in VARIANTS:
        before, now = EdgeEmbedder(old, variant=variant), EdgeEmbedder(potion_bundle, variant=variant)
        assert before.manifest.format_version == 1 and now.manifest.format_version == 2
        np.testing.assert_array_equal(before.encode(texts), now.encode(texts))
