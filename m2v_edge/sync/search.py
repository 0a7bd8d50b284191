"""Searching with a query embedded on the device: a Milvus collection (`search`), or the outbox itself, offline
(`search_outbox`). Both refuse vectors of another model, and both refuse a query that embeds to the zero vector
(`ZeroVectorQueryError`, saying why) instead of returning hits whose scores are all 0.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from m2v_edge.errors import ZeroVectorQueryError
from m2v_edge.sync.ingest import Embedder, model_name, own_zero_vector_warnings
from m2v_edge.sync.offline_index import index_of
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.rows import Hit

if TYPE_CHECKING:
    from m2v_edge.sync.milvus import MilvusCollection


def search(
    collection: MilvusCollection, embedder: Embedder, query: str, *, k: int = 10, kiosk: str | None = None
) -> list[Hit]:
    """The `k` documents of `collection` nearest to `query` (of kiosk `kiosk` only, when given).

    Refuses a collection built with another model's vectors.
    """
    _check_k(k)
    collection.must_exist = True
    collection.connect()
    collection.ensure(dim=embedder.dim, fingerprint=embedder.fingerprint, create=False)
    return collection.search(query_vector(embedder, query), k, kiosk=kiosk)


def search_outbox(
    outbox: Outbox | str | os.PathLike[str], embedder: Embedder, query: str, *, k: int = 10, kiosk: str | None = None
) -> list[Hit]:
    """The `k` documents of an outbox nearest to `query`: exact cosine over all its live rows, no Milvus needed.

    `outbox` is an open `Outbox` or the path of one. Rows are scored with their float16 search copies (cosine within
    about 1e-4 of the exact vectors'). The vectors are read once per process and then only what changed, and an
    int8 screen with a certified error bound limits the exact scoring to rows that can make the top k (see
    `m2v_edge.sync.offline_index`): 20 ms at 100,000 documents on a loaded 2-core machine. With `kiosk`, an outbox
    of another kiosk gives no hits. Refuses an outbox of another model (`OutboxError`).
    """
    _check_k(k)
    if not isinstance(outbox, Outbox):
        with Outbox.open(outbox) as opened:
            return search_outbox(opened, embedder, query, k=k, kiosk=kiosk)
    outbox.check_fingerprint(embedder.fingerprint, embedder.dim)
    vector = query_vector(embedder, query)
    if kiosk is not None and kiosk != outbox.kiosk_id:
        return []
    best = index_of(outbox).top(outbox, vector, k)
    documents = outbox.documents(doc_id for doc_id, _ in best)
    return [Hit(doc_id, score, *documents[doc_id], kiosk_id=outbox.kiosk_id)
            for doc_id, score in best if doc_id in documents]  # a row deleted meanwhile is left out


def query_vector(embedder: Embedder, query: str) -> np.ndarray:
    """`query` embedded and L2-normalised; `ZeroVectorQueryError` when the model knows none of its tokens."""
    from m2v_edge.runtime.zero_vectors import zero_vector_message  # here: the runtime package loads onnxruntime

    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    with own_zero_vector_warnings():  # said below, in the error
        vector = np.asarray(embedder.encode([query]), dtype=np.float32)[0]
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        reason = zero_vector_message(1, 1, model_name(embedder), [query])
        raise ZeroVectorQueryError(f"no meaningful hits for this query: {reason}")
    return vector / norm


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
