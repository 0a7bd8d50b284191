"""`bench.multilingual_model`: the offline stand-in for potion-multilingual-128M that the bench and tests build.

Built at full vocabulary with a 2-dim table (the 500,353 x 256 table is only bigger, not different), and small for
the parity check against model2vec 0.10.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

from bench.multilingual_model import PIECES, build_multilingual_model, tokenlearn_tokenizer_file
from helpers.tiny_models import model2vec_reference, measure
from m2v_edge.export import export_model
from m2v_edge.runtime import EdgeEmbedder

TEXTS = [
    "Die Übersetzungsvorlage für Paketbeschreibungen",
    "Scala プログラミング言語",
    "用于解析命令行选项的小型库",
    "утилиты для чтения и записи сжатых архивов",
    "bibliothèque partagée et en-têtes de développement",
    "¡Hola! ¿Qué tal? Ｆｕｌｌ-width ｶﾀｶﾅ",
    "",
]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_full_vocabulary_extends_the_real_pipeline(tmp_path: Path) -> None:
    folder = build_multilingual_model(tmp_path / "a", dim=2)
    real = json.loads(tokenlearn_tokenizer_file().read_text(encoding="utf-8"))
    built = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in built.items() if k != "model"} == {k: v for k, v in real.items() if k != "model"}
    assert built["normalizer"]["type"] == "Precompiled"
    pieces = [piece for piece, _ in built["model"]["vocab"]]
    assert len(pieces) == len(set(pieces)) == PIECES == 500_353
    assert built["model"]["vocab"][: len(real["model"]["vocab"])] == real["model"]["vocab"]
    lowest = min(score for _, score in real["model"]["vocab"])
    assert all(score < lowest for _, score in built["model"]["vocab"][len(real["model"]["vocab"]) :])
    with safe_open(str(folder / "model.safetensors"), "numpy") as tensors:
        assert tensors.get_slice("embeddings").get_shape() == [PIECES, 2]
    assert json.loads((folder / "config.json").read_text(encoding="utf-8"))["normalize"] is True
    assert _digest(build_multilingual_model(tmp_path / "b", dim=2)) == _digest(folder)  # same arguments, same bytes


def test_small_build_matches_model2vec_through_m2v_edge(tmp_path: Path) -> None:
    folder = build_multilingual_model(tmp_path / "model", pieces=5_000, dim=8, seed=3)
    bundle = export_model(folder, tmp_path / "bundle", variants=("fp32",))
    out = EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(TEXTS)
    figures = measure(out, model2vec_reference(folder, TEXTS))
    assert figures.zero_mismatches == () and figures.max_abs <= 1e-6, figures
    assert np.count_nonzero(np.abs(out).sum(axis=1)) >= len(TEXTS) - 1  # only the empty text pools to zero
