"""Searching a collection with a query text embedded on the device."""

from __future__ import annotations

from m2v_edge.sync.ingest import Embedder
from m2v_edge.sync.milvus import Hit, MilvusCollection


def search(collection: MilvusCollection, embedder: Embedder, query: str, *, k: int = 10) -> list[Hit]:
    """The `k` documents nearest to `query`; refuses a collection built with another model's vectors."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    collection.must_exist = True
    collection.connect()
    collection.ensure(dim=embedder.dim, fingerprint=embedder.fingerprint, create=False)
    vector = embedder.encode([query])[0]
    return collection.search(vector, k)
