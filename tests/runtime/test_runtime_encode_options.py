"""`EdgeEmbedder.encode` takes model2vec's `StaticModel.encode` keywords and gives model2vec 0.10's results for them;
`tokenize` gives `StaticModel.tokenize`'s ids; texts that give zero vectors are logged once per call."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyModels, measure, word_salads
from model2vec import StaticModel

from m2v_edge.runtime import EdgeEmbedder

LONG = "the quick brown fox jumps over the lazy dog " * 80
"""720 tokens, 3,520 characters: more than potion's max_length (512 tokens, 3,072 characters)."""
TEXTS = [LONG, "a fast text editor", "", "😀", "Übergrößenträger café", "library for parsing XML documents " * 30]
MAX_LENGTHS = [1, 7, 100, 511, 512, 513, 1000, None]
"""Below, at and above potion's 512 tokens, and no truncation at all."""


@pytest.fixture(scope="module", params=["native", "python", "tokenizers"])
def potion(potion_bundle: Path, request: pytest.FixtureRequest) -> EdgeEmbedder:
    """potion-base-8M fp32, along each tokenizing path (per-call truncation is applied to every path's ids)."""
    return EdgeEmbedder(potion_bundle, variant="fp32", profile="generic", tokenizing=request.param)


@pytest.fixture(scope="module")
def reference(potion_source: Path) -> StaticModel:
    return StaticModel.from_pretrained(potion_source)


def assert_model2vec_vectors(out: np.ndarray, ref: np.ndarray) -> None:
    figures = measure(out.astype(np.float32), np.asarray(ref, dtype=np.float64))
    assert figures.zero_mismatches == () and figures.max_abs <= 1e-5, figures


@pytest.mark.parametrize("max_length", MAX_LENGTHS)
def test_max_length_per_call_is_model2vecs(potion, reference, max_length: int | None) -> None:
    out = potion.encode(TEXTS, max_length=max_length)
    assert out.shape == (len(TEXTS), 256) and out.dtype == np.float32
    assert_model2vec_vectors(out, reference.encode(TEXTS, max_length=max_length))
    for text in (LONG, TEXTS[1]):  # one text alone takes another path
        alone = potion.encode([text], max_length=max_length)
        assert_model2vec_vectors(alone, reference.encode([text], max_length=max_length))


def test_max_length_changes_the_vector_of_long_texts_only(potion) -> None:
    default, short = potion.encode(TEXTS), potion.encode(TEXTS, max_length=7)
    assert not np.allclose(default[0], short[0]) and np.array_equal(default[1], short[1])
    np.testing.assert_array_equal(potion.encode(TEXTS, max_length=512), default)  # potion's own max_length


def test_max_length_on_bundles_that_truncate_less_or_not_at_all(tiny_models: TinyModels) -> None:
    texts = word_salads(60)
    for spec in ("bpeunk-f32-w-L3", "wp-f32-w64-nolimit"):  # max_length 8 (unk, weights), none (weights)
        model = StaticModel.from_pretrained(tiny_models.folder(spec))
        embedder = EdgeEmbedder(tiny_models.bundle(spec), variant="fp32", profile="generic")
        for max_length in (3, 8, 20, None):
            out = embedder.encode(texts, max_length=max_length)
            assert_model2vec_vectors(out, model.encode(texts, max_length=max_length))


@pytest.mark.parametrize("max_length", [0, -3, 2.5, "10", True])
def test_invalid_max_length_is_refused(potion, max_length: object) -> None:
    with pytest.raises(ValueError, match="max_length must be a whole number >= 1"):
        potion.encode(["text"], max_length=max_length)


def test_normalize_true_on_a_raw_bundle_is_model2vecs(tiny_models: TinyModels) -> None:
    texts = word_salads(40) + ["", "xyzzy"]
    for spec in ("wp-f32-w64-nolimit", "uni-f32-m64w-L1"):  # normalize false: weights; mapping and weights
        model = StaticModel.from_pretrained(tiny_models.folder(spec))
        embedder = EdgeEmbedder(tiny_models.bundle(spec), variant="fp32", profile="generic")
        out = embedder.encode(texts, normalize=True)
        assert_model2vec_vectors(out, model.encode(texts, normalize=True))
        norms = np.linalg.norm(out, axis=1)
        assert np.allclose(norms[norms > 0], 1.0, atol=1e-6)
        assert_model2vec_vectors(embedder.encode(texts, normalize=False), model.encode(texts, normalize=False))


def test_normalize_false_on_a_normalising_bundle_says_how_to_get_raw_vectors(potion) -> None:
    np.testing.assert_array_equal(potion.encode(TEXTS, normalize=True), potion.encode(TEXTS))
    with pytest.raises(ValueError, match="--no-normalize"):
        potion.encode(TEXTS, normalize=False)


def test_batch_size_and_multiprocessing_keywords_change_nothing(potion) -> None:
    expected = potion.encode(TEXTS)
    for keywords in ({"batch_size": 1}, {"batch_size": 2}, {"use_multiprocessing": False},
                     {"use_multiprocessing": True, "multiprocessing_threshold": 1}):
        np.testing.assert_array_equal(potion.encode(TEXTS, **keywords), expected)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        potion.encode(TEXTS, batch_size=0)


def test_other_keywords_are_ignored_with_one_debug_line(potion, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="m2v_edge"):
        out = potion.encode(TEXTS[1:2], convert_to_numpy=True, device="cpu")
    np.testing.assert_array_equal(out, potion.encode(TEXTS[1:2]))
    ignored = [r for r in caplog.records if "ignores" in r.getMessage()]
    assert len(ignored) == 1 and ignored[0].levelno == logging.DEBUG
    assert "convert_to_numpy, device" in ignored[0].getMessage()


def test_progress_bar_on_request_only(potion, capsys: pytest.CaptureFixture[str]) -> None:
    many = word_salads(300)
    with_bar = potion.encode(many, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "300/300" in err and "texts" in err  # a tqdm bar that reached the end (tqdm may draw it more than once)
    np.testing.assert_array_equal(with_bar, potion.encode(many))
    assert capsys.readouterr().err == ""  # no bar unless asked for


def test_a_single_string_gives_one_vector(potion, reference) -> None:
    vector = potion.encode("a fast text editor")
    assert vector.shape == (256,) and vector.dtype == np.float32
    np.testing.assert_array_equal(vector, potion.encode(["a fast text editor"])[0])
    assert_model2vec_vectors(vector[None], reference.encode("a fast text editor")[None])
    assert [v.shape for v in potion.encode_documents("a fast text editor")] == [(256,)]


def test_zero_vectors_are_one_warning_per_call(potion, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="m2v_edge"):
        potion.encode(["a text", "😀", "", "another text", "🦊🦊"])
        potion.encode(["only known words"])
        potion.encode("ภาษาไทย")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["m2v_edge.runtime.zero_vectors"] * 2
    assert warnings[0].getMessage() == (
        "3 of 5 texts gave zero vectors: potion-base-8M knows none of their tokens "
        "(empty texts, emoji or symbols, or a script the model does not cover)"
    )
    assert warnings[1].getMessage().startswith("1 text gave zero vectors")
    assert "does not cover Thai: use a multilingual model" in warnings[1].getMessage()


def test_tokenize_is_model2vecs(potion, reference, tiny_models: TinyModels) -> None:
    texts = [*TEXTS, "[UNK] and [CLS] as text", *word_salads(50)]
    assert potion.tokenize(texts) == reference.tokenize(texts)
    for spec in ("bpeunk-f32-w-L3", "uni-f32-L2-nolimit"):  # truncation at 8 with an unk token; none
        model = StaticModel.from_pretrained(tiny_models.folder(spec))
        embedder = EdgeEmbedder(tiny_models.bundle(spec), variant="fp32", profile="generic")
        assert embedder.tokenize(texts) == model.tokenize(texts)
    with pytest.raises(TypeError, match=r"pass \[text\]"):
        potion.tokenize("one text")
