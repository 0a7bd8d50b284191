"""The native core's Pooler (m2v_edge/_native/pool.c) refuses arrays that disagree with the sizes it is given,
before it reads a row: here, sizes whose product wraps around 2**64 (found by fuzz/fuzz_pool.c)."""

from __future__ import annotations

import numpy as np
import pytest

_core = pytest.importorskip("m2v_edge._core", reason="the native core is not built in this installation")

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
