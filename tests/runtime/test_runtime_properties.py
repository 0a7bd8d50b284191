"""Property-based tests (hypothesis) on arbitrary Unicode text and lists of texts.

For any texts: the fp32 vectors equal model2vec's `StaticModel.encode` (bounds of `test_runtime_parity`: max
difference 1e-5 relative to the row's scale, zero rows exactly where model2vec's are), are finite, float32 and
[len(texts), dim]; and a text gets the same vector alone, as a plain string, or anywhere inside any batch (to 1e-6:
the padded width changes onnxruntime's MatMul summation order by an ulp, see `test_runtime_batching`).

model2vec raises on lone surrogates, which m2v-edge reads as U+FFFD: model2vec is given the cleaned text
(`for_model2vec`). Runs are reproducible: `derandomize=True` and no example database; example counts are modest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import CORPUS, TinyModels, for_model2vec, measure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model2vec import StaticModel

from m2v_edge.runtime import EdgeEmbedder

SAME = {"rtol": 0, "atol": 1e-6}
TINY_SPECS = ("wp-f32-L1", "uni-f32-m64w-L1", "bpenounk-f32-m32-L2")
"""float32 tables (a float16 or int8 source makes model2vec's own reference less precise, see the parity tests):
WordPiece normalised, Unigram with mapping and weights, BPE without unk token."""

PROPERTIES = settings(
    max_examples=100, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

ANY_CHARACTER = st.characters(exclude_categories=())  # every code point, lone surrogates included
WORDS = sorted({word for line in CORPUS for word in line.split()} | {"[UNK]", "[CLS]", "[PAD]", "😀", "東京", "zürich"})
TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=300),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(ANY_CHARACTER, max_size=6)), max_size=60).map(" ".join),
    st.sampled_from(["", " ", "\x00", "\ud800", "fox \udfff dog", "a" * 5000]),
)
TEXTS = st.lists(TEXT, max_size=12)


class Pair:
    """An m2v-edge fp32 embedder and model2vec's model for the same source."""

    def __init__(self, bundle: Path, source: Path) -> None:
        self.edge = EdgeEmbedder(bundle, variant="fp32")
        self.model2vec = StaticModel.from_pretrained(source)

    def reference(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model2vec.encode([for_model2vec(t) for t in texts]), dtype=np.float64)


@pytest.fixture(scope="module")
def potion(potion_bundle: Path, potion_source: Path) -> Pair:
    return Pair(potion_bundle, potion_source)


@pytest.fixture(scope="module", params=TINY_SPECS)
def tiny(request, tiny_models: TinyModels) -> Pair:
    return Pair(tiny_models.bundle(request.param), tiny_models.folder(request.param))


def check_against_model2vec(pair: Pair, texts: list[str]) -> None:
    out = pair.edge.encode(texts)
    assert out.dtype == np.float32 and out.shape == (len(texts), pair.edge.dim)
    assert np.isfinite(out).all()
    if not texts:
        return
    figures = measure(out, pair.reference(texts))
    assert figures.zero_mismatches == (), (figures, texts)
    assert figures.max_rel <= 1e-5, (figures, texts)


def check_alone_and_in_batches(pair: Pair, texts: list[str], position: int) -> None:
    batch = pair.edge.encode(texts)
    for index, text in enumerate(texts):
        alone = pair.edge.encode([text])
        np.testing.assert_allclose(batch[index : index + 1], alone, **SAME)
        np.testing.assert_array_equal(pair.edge.encode(text), alone[0])  # a plain string gives one 1-D vector
    if texts:
        target, at = texts[position % len(texts)], position % (len(texts) + 1)
        moved = [*texts[:at], target, *texts[at:]]  # the same text again, elsewhere in the batch
        np.testing.assert_allclose(pair.edge.encode(moved)[at], pair.edge.encode([target])[0], **SAME)
        assert (batch.any(axis=1) == np.array([pair.edge.encode([t]).any() for t in texts])).all()


@PROPERTIES
@given(texts=TEXTS)
def test_potion_fp32_equals_model2vec(potion: Pair, texts: list[str]) -> None:
    check_against_model2vec(potion, texts)


@PROPERTIES
@given(texts=TEXTS)
def test_tiny_fp32_equals_model2vec(tiny: Pair, texts: list[str]) -> None:
    check_against_model2vec(tiny, texts)


@PROPERTIES
@given(texts=TEXTS, position=st.integers(0, 12))
def test_potion_same_vector_alone_or_in_any_batch(potion: Pair, texts: list[str], position: int) -> None:
    check_alone_and_in_batches(potion, texts, position)


@PROPERTIES
@given(texts=TEXTS, position=st.integers(0, 12))
def test_tiny_same_vector_alone_or_in_any_batch(tiny: Pair, texts: list[str], position: int) -> None:
    check_alone_and_in_batches(tiny, texts, position)


@pytest.fixture(scope="module")
def potion_variants(potion_bundle: Path) -> dict[str, EdgeEmbedder]:
    return {variant: EdgeEmbedder(potion_bundle, variant=variant) for variant in ("fp32", "fp16", "int8")}


@settings(PROPERTIES, max_examples=150)
@given(text=TEXT)
def test_every_variant_gives_finite_float32_vectors(potion_variants: dict[str, EdgeEmbedder], text: str) -> None:
    for embedder in potion_variants.values():
        out = embedder.encode(text)
        assert out.shape == (256,) and out.dtype == np.float32 and np.isfinite(out).all()
