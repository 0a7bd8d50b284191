"""The batches the pooling graph runs on: texts sorted by token count (stable), each batch as many texts as fit in
the token budget once padded to its longest text (at least one text), texts without tokens left out (their vector
stays zero).

The native core builds them (`m2v_edge.runtime.native.batches`), several times faster than numpy for many short
texts; where the core is not available, numpy builds the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from m2v_edge.runtime import native
from m2v_edge.runtime.token_batch import TokenBatch

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(rows, ids, mask): the texts' indices, and the [rows, width] int64 ids and attention mask."""


def padded_batches(tokens: TokenBatch, budget: int) -> Iterator[Batch]:
    """The batches of `tokens` under a `budget` of padded tokens per batch."""
    if native.available():
        yield from native.batches(tokens, budget)
    else:
        yield from numpy_batches(tokens, budget)


def numpy_batches(tokens: TokenBatch, budget: int) -> Iterator[Batch]:
    """`padded_batches` in numpy. Padding positions point at a real token, masked out by the graph."""
    flat, offsets, lengths = tokens.ids, tokens.offsets, tokens.lengths
    total = len(flat)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    sorted_lengths = lengths[order]
    start = 0
    while start < len(order):
        # Rows are sorted by length, so a batch's padded size is (rows) x (length of its last row).
        padded = np.arange(1, len(order) - start + 1) * sorted_lengths[start:]
        stop = start + max(1, int(np.searchsorted(padded, budget, side="right")))
        rows = order[start:stop]
        columns = np.arange(int(sorted_lengths[stop - 1]))
        mask = columns < lengths[rows, None]
        yield rows, flat[np.minimum(offsets[rows, None] + columns, total - 1)], mask.astype(np.int64)
        start = stop
