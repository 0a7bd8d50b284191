"""The native core's single-text pooling (`m2v_edge.runtime.native.NativePooler`) against the pooling graph.

One text per call is pooled in the core from the variant's mapped arrays; batches go through onnxruntime's graph. The
two must agree to float32 rounding for every variant, with and without mapping and weights, normalised or not, for
texts with no tokens, only unknown tokens, and more tokens than max_length.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import PARITY_VARIANTS, TINY_SPECS, TinyModels, tiny_texts
from tokenizers import Tokenizer, models

from m2v_edge import _core
from m2v_edge.export.tokenizer_file import compile_tokenizer
from m2v_edge.runtime import EdgeEmbedder, native

NATIVE_SPECS = [spec.id for spec in TINY_SPECS if spec.tokenizer in ("wordpiece", "unigram")]


def assert_agrees(single: np.ndarray, batch: np.ndarray) -> None:
    """float32 rounding, relative to each row's scale (raw int8 means reach 127)."""
    scale = np.maximum(1.0, np.abs(batch).max(axis=1, keepdims=True))
    assert (np.abs(single - batch) / scale).max() <= 2e-6
    assert np.array_equal(~single.any(axis=1), ~batch.any(axis=1))


@pytest.mark.parametrize("variant", PARITY_VARIANTS)
@pytest.mark.parametrize("spec_id", NATIVE_SPECS)
def test_single_texts_pooled_in_the_core_equal_the_graph(tiny_models: TinyModels, spec_id: str, variant: str) -> None:
    embedder = EdgeEmbedder(tiny_models.bundle_with(spec_id, variant), variant=variant, tokenizing="native")
    assert embedder._pooler is not None  # single texts really are pooled in the core
    texts = [text[:3000] for text in tiny_texts(tiny_models.spec(spec_id))][:120]
    batch = embedder.encode(texts)
    single = np.vstack([embedder.encode(text) for text in texts])
    assert_agrees(single, batch)


@pytest.mark.parametrize("variant", PARITY_VARIANTS)
def test_potion_single_texts_equal_the_graph(request, debian_texts, variant: str) -> None:
    bundle = request.getfixturevalue("potion_int4_bundle" if variant == "int4" else "potion_bundle")
    embedder = EdgeEmbedder(bundle, variant=variant, tokenizing="native")
    texts = [*debian_texts[::80], "", "[UNK]", "😀", "x" * 5000]
    assert_agrees(np.vstack([embedder.encode(text) for text in texts]), embedder.encode(texts))


def test_other_paths_pool_single_texts_with_onnxruntime(tiny_models: TinyModels) -> None:
    for path in ("python", "tokenizers"):
        assert EdgeEmbedder(tiny_models.bundle("wp-f32-L1"), variant="fp32", tokenizing=path)._pooler is None


def test_every_float16_value_is_read_exactly(tmp_path: Path) -> None:
    """A float16 table row holding all 65,536 half values, pooled from one token: each finite value and each
    infinity comes out as numpy's float16-to-float32 conversion gives it (subnormals included), each NaN as a NaN.
    (The sum starts at +0.0, so -0.0 comes out as +0.0; the pooling widens to double, so NaN payloads are not
    compared.)"""
    tokenizer = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    path = tmp_path / "tokenizer.m2v"
    path.write_bytes(compile_tokenizer(json.loads(tokenizer.to_str()), tokenizer, 2))
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    table = np.vstack([np.zeros_like(halves), halves])
    pooler = _core.Pooler(table=table, kind=1, rows=2, dim=table.shape[1], block=0, blocks=0, scales=None,
                          mapping=None, weights=None, id_count=2, unk_id=0, normalize=False)
    out = np.empty(table.shape[1], dtype=np.float32)
    pooler.embed(native.NativeTokenizer(path, None)._core, "a", -1, out)
    expected = halves.astype(np.float32)
    assert np.array_equal(out, expected, equal_nan=True)
