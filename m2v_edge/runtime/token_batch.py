"""`TokenBatch`: a list of texts' token ids laid end to end, what every tokenizing path returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only a type here: the native path never imports tokenizers
    from tokenizers import Encoding


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of a list of texts: text i's ids are `ids[offsets[i] : offsets[i] + lengths[i]]` (int64 arrays).

    Ids are truncated to the model's `max_length`; unk ids are still there (the graph drops them, as model2vec
    does after truncating).
    """

    ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_encodings(cls, encodings: Sequence[Encoding]) -> TokenBatch:
        """The ids of tokenizers' encodings, laid end to end."""
        lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
        total = int(lengths.sum())
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
        return cls(ids, np.cumsum(lengths) - lengths, lengths)

    @classmethod
    def merge(cls, size: int, parts: Sequence[tuple[Sequence[int], TokenBatch]]) -> TokenBatch:
        """One batch of `size` texts from parts that each hold the texts at the given indices."""
        offsets = np.zeros(size, dtype=np.int64)
        lengths = np.zeros(size, dtype=np.int64)
        base = 0
        for indices, part in parts:
            offsets[indices] = part.offsets + base
            lengths[indices] = part.lengths
            base += len(part.ids)
        return cls(np.concatenate([part.ids for _, part in parts]), offsets, lengths)
