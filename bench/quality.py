"""Retrieval quality: each query against every document, the one relevant document being the one on its line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.systems import REFERENCE, System

K = 10
BLOCK = 512
"""Queries scored per matrix product: bounds the score matrix to BLOCK x documents floats."""


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), in float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def relevant_ranks(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    """0-based rank of document i among all documents for query i, by cosine similarity.

    Ties are broken by document order (as a stable sort of the scores would), which only matters for zero vectors
    and duplicated documents.
    """
    if queries.shape != documents.shape:
        raise ValueError(f"queries {queries.shape} and documents {documents.shape} must be aligned by line")
    q, d = _unit(queries), _unit(documents)
    n = len(q)
    ranks = np.empty(n, dtype=np.int64)
    positions = np.arange(n)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        rows = np.arange(stop - start)
        scores = q[start:stop] @ d.T
        relevant = scores[rows, positions[start:stop]][:, None]
        higher = (scores > relevant).sum(axis=1)
        tied_before = ((scores == relevant) & (positions[None, :] < positions[start:stop, None])).sum(axis=1)
        ranks[start:stop] = higher + tied_before
    return ranks


def retrieval_metrics(ranks: np.ndarray, k: int = K) -> dict[str, float]:
    """nDCG@k and Recall@k for one relevant document per query, and its mean reciprocal rank."""
    hit = ranks < k
    gains = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {
        f"ndcg@{k}": float(gains.mean()),
        f"recall@{k}": float(hit.mean()),
        "mrr": float((1.0 / (ranks + 1.0)).mean()),
    }


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two zero rows count as equal (1), one zero row against a non-zero one as 0."""
    ua, ub = _unit(a), _unit(b)
    cos = (ua * ub).sum(axis=1)
    both_zero = ~ua.any(axis=1) & ~ub.any(axis=1)
    return np.where(both_zero, 1.0, cos)


def measure_quality(systems: Sequence[System], queries: list[str], documents: list[str]) -> dict[str, Any]:
    """nDCG@10, Recall@10 and MRR per system, and how far its vectors are from model2vec's."""
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for system in systems:
        if system.vectors is not None:
            vectors[system.key] = (system.vectors(queries), system.vectors(documents))
    reference = vectors[REFERENCE]
    results: dict[str, Any] = {}
    for key, (q, d) in vectors.items():
        metrics = retrieval_metrics(relevant_ranks(q, d))
        cos = np.concatenate([_cosines(q, reference[0]), _cosines(d, reference[1])])
        metrics["min_cosine_to_model2vec"] = float(cos.min())
        metrics["mean_cosine_to_model2vec"] = float(cos.mean())
        metrics["dim"] = int(q.shape[1])
        results[key] = metrics
    base = results[REFERENCE][f"ndcg@{K}"]
    for metrics in results.values():
        metrics[f"ndcg@{K}_delta_to_model2vec"] = metrics[f"ndcg@{K}"] - base
    return results


def measure_agreement(systems: Sequence[System], sets: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """How close each system's vectors are to model2vec's on each text set: the minimum cosine, and how many rows are
    identical bit for bit once both are cast to float32 (model2vec returns float64 for some models)."""
    reference = next(s for s in systems if s.key == REFERENCE)
    assert reference.vectors is not None
    expected = {name: reference.vectors(texts) for name, texts in sets.items()}
    results: dict[str, dict[str, Any]] = {}
    for system in systems:
        if system.vectors is None:
            continue
        results[system.key] = {}
        for name, texts in sets.items():
            got, want = system.vectors(texts), expected[name]
            identical = (got.astype(np.float32) == want.astype(np.float32)).all(axis=1)
            results[system.key][name] = {
                "min_cosine": float(_cosines(got, want).min()),
                "identical_rows": int(identical.sum()),
                "rows": len(texts),
            }
    return results
