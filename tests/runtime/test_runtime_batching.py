"""Batching must not change vectors: single text vs batch, alone vs among others, any token budget, any thread.

Not bit-for-bit, today: a text's padded width depends on its batch neighbours (rows are padded to the batch's
longest), and onnxruntime's MatMul sums over the sequence in blocks that depend on that width, so the same text
can come out 1 float32 ulp (about 3e-8 here) apart. Batch size alone (same width) changes nothing.
`SAME` allows for that and nothing more: any real difference (a token more or less, wrong padding) is ~1e-2.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import EDGE_TEXTS, TinyModels

from m2v_edge.runtime import EdgeEmbedder

SAME = {"rtol": 0, "atol": 1e-6}


def assert_same_vectors(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(actual, expected, **SAME)
    assert np.array_equal(~actual.any(axis=-1), ~expected.any(axis=-1))  # zero rows stay exactly zero


@pytest.fixture(scope="module")
def potion_texts(debian_texts: list[str]) -> list[str]:
    """Short and long texts mixed, with empty ones in between: 1,200 texts (more than one tokenizer chunk)."""
    mixed = [t for pair in zip(debian_texts[:500], debian_texts[8000:8500]) for t in pair]
    edges = [t for name, t in EDGE_TEXTS.items() if name != "ten_mb"]
    return mixed + edges * 10 + ["", "fox"] * 5 + debian_texts[8500:8600]


@pytest.fixture(scope="module", params=["fp32", "int8"])
def potion_embedder(request, potion_bundle: Path) -> EdgeEmbedder:
    return EdgeEmbedder(potion_bundle, variant=request.param)


def test_single_text_path_equals_batch_path(potion_embedder: EdgeEmbedder, potion_texts: list[str]) -> None:
    batch = potion_embedder.encode(potion_texts)
    singles = np.concatenate([potion_embedder.encode([t]) for t in potion_texts])
    assert_same_vectors(singles, batch)
    as_str = np.stack([potion_embedder.encode(t) for t in potion_texts[:50]])
    assert_same_vectors(as_str, batch[:50])


def test_same_text_alone_or_in_any_batch(potion_embedder: EdgeEmbedder, potion_texts: list[str]) -> None:
    target = potion_texts[7]
    alone = potion_embedder.encode([target])[0]
    for neighbours in (potion_texts[:3], potion_texts[100:400], ["", " "], [EDGE_TEXTS["ten_mb"]]):
        for position in (0, len(neighbours) // 2, len(neighbours)):
            batch = [*neighbours[:position], target, *neighbours[position:]]
            assert_same_vectors(potion_embedder.encode(batch)[position], alone)


@pytest.mark.parametrize("budget", [1, 7, 100, 1 << 30])
def test_token_budget_does_not_change_vectors(potion_bundle: Path, potion_texts: list[str], budget: int) -> None:
    texts = potion_texts[:300]
    reference = EdgeEmbedder(potion_bundle, variant="fp32", token_budget=16384).encode(texts)
    out = EdgeEmbedder(potion_bundle, variant="fp32", token_budget=budget).encode(texts)
    assert_same_vectors(out, reference)


@pytest.mark.parametrize("spec_id", ["bpeunk-f16-m64w-L1", "uni-i8-L3"])
def test_tiny_token_budget_and_single_path(tiny_models: TinyModels, spec_id: str) -> None:
    texts, _ = tiny_models.reference(spec_id)
    large = EdgeEmbedder(tiny_models.bundle(spec_id), variant="fp32")
    small = EdgeEmbedder(tiny_models.bundle(spec_id), variant="fp32", token_budget=7)
    batch = large.encode(texts)
    assert_same_vectors(small.encode(texts), batch)
    assert_same_vectors(np.concatenate([large.encode([t]) for t in texts]), batch)


def test_many_texts_in_chunks_equal_small_batches(potion_bundle: Path, debian_texts: list[str]) -> None:
    """5,000 texts (several tokenizer chunks, pipelined) give the rows that batches of 100 give."""
    embedder = EdgeEmbedder(potion_bundle, variant="fp32")
    texts = debian_texts[3000:5500] + debian_texts[10000:12500]
    whole = embedder.encode(texts)
    pieces = np.concatenate([embedder.encode(texts[i : i + 100]) for i in range(0, len(texts), 100)])
    assert_same_vectors(whole, pieces)


def test_concurrent_callers_get_the_same_vectors(potion_bundle: Path, potion_texts: list[str]) -> None:
    embedder = EdgeEmbedder(potion_bundle, variant="fp32")
    batches = [potion_texts[i::8] for i in range(8)]
    expected = [embedder.encode(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(embedder.encode, batches * 3))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 8])  # same batches: bit for bit


def test_output_shapes_and_pymilvus_surface(potion_bundle: Path) -> None:
    embedder = EdgeEmbedder(potion_bundle, variant="int8")
    assert embedder.dim == 256 and embedder.variant == "int8"
    assert embedder.manifest.dim == 256
    empty = embedder.encode([])
    assert empty.shape == (0, 256) and empty.dtype == np.float32
    texts = ["a text", "", "another text"]
    matrix = embedder.encode(texts)
    for method in (embedder.encode_documents, embedder.encode_queries, embedder):
        vectors = method(texts)
        assert isinstance(vectors, list) and len(vectors) == 3
        for vector, row in zip(vectors, matrix):
            assert vector.dtype == np.float32 and vector.shape == (256,)
            np.testing.assert_array_equal(vector, row)
    assert embedder.encode("one text").shape == (256,)
    assert [vector.shape for vector in embedder.encode_documents("one text")] == [(256,)]
    assert embedder.encode(("a", "tuple")).shape == (2, 256)


@pytest.mark.parametrize("budget", [1, 7, 64, 4096])
def test_the_native_batches_equal_the_numpy_ones(budget: int) -> None:
    """The core's batch planner and numpy's give the same rows, ids and masks (token counts 0 to 40, repeated)."""
    from m2v_edge.runtime import native
    from m2v_edge.runtime.batching import numpy_batches
    from m2v_edge.runtime.token_batch import TokenBatch

    rng = np.random.default_rng(budget)
    lengths = rng.integers(0, 41, size=500).astype(np.int64)
    lengths[::50] = 0
    ids = rng.integers(0, 1000, size=int(lengths.sum())).astype(np.int64)
    tokens = TokenBatch(ids, np.cumsum(lengths) - lengths, lengths)
    expected = list(numpy_batches(tokens, budget))
    got = list(native.batches(tokens, budget))
    assert len(got) == len(expected) and sum(len(rows) for rows, _, _ in got) == int((lengths > 0).sum())
    for (rows, batch_ids, mask), (want_rows, want_ids, want_mask) in zip(got, expected):
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(batch_ids, want_ids)
        np.testing.assert_array_equal(mask, want_mask)
