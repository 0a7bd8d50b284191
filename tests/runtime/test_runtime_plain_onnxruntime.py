"""The fp32 graph run by plain onnxruntime, fed by the bundle's tokenizer.json through `tokenizers`.

This is what a third-party ONNX runner does with a bundle: no m2v-edge code takes part in the computation
(`plain_onnxruntime_vectors` uses only json, numpy, tokenizers and onnxruntime), and the vectors must still
equal model2vec's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from helpers.tiny_models import TINY_SPECS, TinyModels, for_model2vec, measure
from tokenizers import Tokenizer


def plain_onnxruntime_vectors(bundle: Path, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Encode with the bundle's fp32 graph using only its files: manifest, tokenizer.json, model.fp32.onnx."""
    manifest = json.loads((bundle / "m2v_edge.json").read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    pad_id = manifest["pad_id"]
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))
    max_length = manifest["max_length"]
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
        char_limit = manifest["median_token_length"] * max_length
        texts = [text[:char_limit] for text in texts]
    session = ort.InferenceSession(
        str(bundle / manifest["variants"]["fp32"]["file"]), providers=["CPUExecutionProvider"]
    )
    blocks = []
    for start in range(0, len(texts), batch_size):
        encodings = tokenizer.encode_batch(texts[start : start + batch_size], add_special_tokens=False)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        blocks.append(session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})[0])
    return np.concatenate(blocks)


def _assert_fp32_parity(out: np.ndarray, reference: np.ndarray, *, source_dtype: str) -> None:
    figures = measure(out, reference)
    assert figures.finite and figures.zero_mismatches == (), figures
    if source_dtype == "float16":  # model2vec rounds its own output to float16: see test_runtime_parity
        assert figures.min_cos >= 0.9999 and figures.max_rel <= 2**-9, figures
    else:
        assert figures.min_cos >= 0.99999 and figures.max_rel <= 1e-5, figures


def test_potion_fp32_graph_with_plain_onnxruntime(potion_bundle: Path, potion_reference) -> None:
    texts, reference = potion_reference
    # tokenizers refuses lone surrogates: a plain caller has to replace them itself (model2vec cannot encode them)
    out = plain_onnxruntime_vectors(potion_bundle, [for_model2vec(t) for t in texts])
    assert out.dtype == np.float32 and out.shape == reference.shape
    _assert_fp32_parity(out, reference, source_dtype="float32")
    assert np.abs(out - reference).max() <= 1e-5


@pytest.mark.parametrize("spec_id", [spec.id for spec in TINY_SPECS])
def test_tiny_fp32_graph_with_plain_onnxruntime(tiny_models: TinyModels, spec_id: str) -> None:
    texts, reference = tiny_models.reference(spec_id)
    out = plain_onnxruntime_vectors(tiny_models.bundle(spec_id), [for_model2vec(t) for t in texts], batch_size=16)
    _assert_fp32_parity(out, reference, source_dtype=tiny_models.spec(spec_id).dtype)


def test_plain_onnxruntime_batch_of_only_empty_texts(potion_bundle: Path) -> None:
    """A padded batch with zero columns ([2, 0] inputs) is valid input for the graph: zero vectors."""
    out = plain_onnxruntime_vectors(potion_bundle, ["", "   "])
    assert out.shape == (2, 256)
    assert not out.any()
