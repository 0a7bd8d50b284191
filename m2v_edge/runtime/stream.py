"""Encoding an unbounded stream of texts in fixed-size steps, with constant memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np

from m2v_edge.runtime.embedder import EdgeEmbedder


def encode_stream(embedder: EdgeEmbedder, texts: Iterable[str], *, batch: int = 4096) -> Iterator[np.ndarray]:
    """Yield float32 [k, dim] blocks for consecutive groups of at most `batch` texts."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    iterator = iter(texts)
    while block := list(islice(iterator, batch)):
        yield embedder.encode(block)
