"""The native core's objects refuse buffers that disagree with what they are told, before reading them: pooling
arrays whose sizes wrap around 2**64 (found by fuzz/fuzz_pool.c), a tokenizer file that is not 8-byte aligned in
memory (its sections hold u32 and f64 values; a mapped file is always aligned, another buffer need not be)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.m2v_file import (
    FREE,
    MODEL,
    MODEL_RECORD,
    ROOT,
    STRING_TABLE,
    STRINGS,
    UNIT,
    VOCAB,
    layout,
    string_sections,
)
from m2v_edge import _core  # built by every installation the suite runs on: a missing core fails here, not skips

F32, F16 = 0, 1


def pooler(table: np.ndarray, kind: int, rows: int, dim: int) -> object:
    return _core.Pooler(table, kind, rows, dim, 0, 0, None, None, None, rows, -1, False)


@pytest.mark.parametrize(
    ("kind", "dtype", "dim", "wrap"),
    [(F32, np.float32, 3, 2**62), (F16, np.float16, 4, 2**61)],  # rows * dim * itemsize wraps by exactly 2**64 * k
)
def test_rows_whose_table_size_wraps_around_are_refused(kind: int, dtype: type, dim: int, wrap: int) -> None:
    table = np.arange(6 * dim, dtype=dtype)
    pooler(table, kind, 6, dim)  # the honest sizes are accepted
    assert ((6 + wrap) * dim * table.itemsize) % 2**64 == table.nbytes
    with pytest.raises(ValueError, match="table size does not match rows x dim"):
        pooler(table, kind, 6 + wrap, dim)  # before the fix: accepted, and any id >= 6 read past the table


def test_a_tokenizer_file_out_of_alignment_is_refused() -> None:
    # The smallest WordPiece: no pre-tokenizer, a vocabulary of only the root: every text is one unknown id 0.
    root_only = UNIT.pack(0, ROOT, -1) + UNIT.pack(0, FREE, -1) * 255
    strings = string_sections([b"##"])
    data = layout({MODEL: MODEL_RECORD.pack(1, 0, 0, 100, 0, 1, 0, 0, 0.0), VOCAB: root_only,
                   STRING_TABLE: strings["STRING_TABLE"], STRINGS: strings["STRINGS"]})
    memory = np.zeros(len(data) + 8, dtype=np.uint8)  # numpy aligns its buffers to at least 8 bytes
    memory[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    assert _core.Tokenizer(memory[: len(data)]).encode("the quick brown fox", -1) == [0]
    memory[1 : len(data) + 1] = np.frombuffer(data, dtype=np.uint8)
    with pytest.raises(ValueError, match="not 8-byte aligned in memory"):
        _core.Tokenizer(memory[1 : len(data) + 1])
