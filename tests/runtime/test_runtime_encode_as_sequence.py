"""`EdgeEmbedder.encode_as_sequence` gives model2vec 0.10's per-token vectors, read from the variant's data file; the
same rows give raw means for `encode(normalize=False)` on a bundle whose graph normalises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyModels, word_salads
from model2vec import StaticModel
from test_runtime_bundle_formats import as_format_2

from m2v_edge.errors import BundleError
from m2v_edge.runtime import EdgeEmbedder

LONG = "the quick brown fox jumps over the lazy dog " * 80
"""720 tokens: more than potion's max_length of 512, which encode_as_sequence ignores unless asked."""
TEXTS = [LONG, "a fast text editor", "", "😀", "[UNK] and [CLS] as text", "Übergrößenträger café"]


@pytest.fixture(scope="module")
def reference(potion_source: Path) -> StaticModel:
    return StaticModel.from_pretrained(potion_source)


def assert_same_sequences(ours: list[np.ndarray], theirs: list[np.ndarray], atol: float = 1e-6) -> None:
    assert [vectors.shape for vectors in ours] == [vectors.shape for vectors in theirs]
    for vectors, expected in zip(ours, theirs):
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(vectors, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("tokenizing", ["native", "python", "tokenizers"])
@pytest.mark.parametrize("max_length", [None, 5, 512, 700])
def test_potion_sequences_are_model2vecs(
    potion_bundle: Path, reference: StaticModel, tokenizing: str, max_length: int | None
) -> None:
    embedder = EdgeEmbedder(potion_bundle, variant="fp32", profile="generic", tokenizing=tokenizing)
    ours = embedder.encode_as_sequence(TEXTS, max_length=max_length)
    assert_same_sequences(ours, reference.encode_as_sequence(TEXTS, max_length=max_length))
    assert len(ours[0]) == (720 if max_length is None else min(max_length, 720))
    assert [len(vectors) for vectors in ours[2:4]] == [0, 0]


def test_a_single_string_gives_one_array(potion_bundle: Path, reference: StaticModel) -> None:
    vectors = EdgeEmbedder(potion_bundle, variant="fp32").encode_as_sequence("a fast text editor")
    assert isinstance(vectors, np.ndarray) and vectors.shape == (4, 256)
    np.testing.assert_allclose(vectors, reference.encode_as_sequence("a fast text editor"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("spec", ["bpeunk-f32-w-L3", "uni-f32-m64w-L1", "wp-f32-w64-nolimit", "bpenounk-f32-m32-L2"])
def test_tiny_sequences_are_model2vecs(tiny_models: TinyModels, spec: str) -> None:
    """An unk token, weights, mappings, truncation at 8 tokens or none."""
    texts = [*word_salads(40), "", "xyzzy 🦊"]
    model = StaticModel.from_pretrained(tiny_models.folder(spec))
    embedder = EdgeEmbedder(tiny_models.bundle(spec), variant="fp32", profile="generic")
    for max_length in (None, 3):
        ours = embedder.encode_as_sequence(texts, max_length=max_length)
        assert_same_sequences(ours, model.encode_as_sequence(texts, max_length=max_length))


@pytest.mark.parametrize("variant", ["fp16", "int8"])
def test_every_variants_sequences_average_to_its_vectors(potion_bundle: Path, variant: str) -> None:
    """The rows are the variant's own (dequantised): their normalised mean is what encode gives."""
    embedder = EdgeEmbedder(potion_bundle, variant=variant, profile="generic")
    texts = [text for text in TEXTS if text not in ("", "😀")]
    means = np.stack([vectors.mean(axis=0) for vectors in embedder.encode_as_sequence(texts, max_length=512)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_allclose(means, embedder.encode(texts), rtol=0, atol=1e-6)


def test_raw_means_of_a_normalising_bundle_are_model2vecs(potion_bundle: Path, reference: StaticModel) -> None:
    embedder = EdgeEmbedder(potion_bundle, variant="fp32", profile="generic")
    for max_length in (None, 7):
        raw = embedder.encode(TEXTS, normalize=False, max_length=max_length)
        np.testing.assert_allclose(raw, reference.encode(TEXTS, normalize=False, max_length=max_length), atol=1e-6)
    single = embedder.encode("a fast text editor", normalize=False)
    np.testing.assert_allclose(single, reference.encode("a fast text editor", normalize=False), atol=1e-6)
    assert not np.isclose(np.linalg.norm(single), 1.0)


def test_a_format_2_bundle_says_to_export_again(potion_bundle: Path, tmp_path: Path) -> None:
    embedder = EdgeEmbedder(as_format_2(potion_bundle, tmp_path / "format2"), variant="fp32")
    for call in (lambda: embedder.encode_as_sequence(["text"]), lambda: embedder.encode(["text"], normalize=False)):
        with pytest.raises(BundleError, match="is of format 2.*re-export it"):
            call()
