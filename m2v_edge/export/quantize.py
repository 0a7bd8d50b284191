"""Table precisions for the bundle variants: fp32, fp16 and per-row symmetric int8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FP16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class StoredTable:
    """A table as a variant stores it: values, plus per-row float32 scales for int8."""

    values: np.ndarray
    scales: np.ndarray | None = None


def quantize_table(table: np.ndarray, variant: str) -> StoredTable:
    """Convert a source table (float32/16/64 or int8) to the storage of `variant`."""
    if variant == "fp32":
        return StoredTable(table.astype(np.float32))
    if variant == "fp16":
        return StoredTable(np.clip(table.astype(np.float32), -_FP16_MAX, _FP16_MAX).astype(np.float16))
    if variant == "int8":
        return _int8_per_row(table)
    raise ValueError(f"unknown variant {variant!r}")


def _int8_per_row(table: np.ndarray) -> StoredTable:
    """Symmetric per-row int8: row ~= values * scale, with max |row| mapped to 127.

    An int8 source table is kept as it is (scale 1): its raw integers are what model2vec averages.
    """
    if table.dtype == np.int8:
        return StoredTable(table.copy(), np.ones(table.shape[0], dtype=np.float32))
    rows = table.astype(np.float32)
    peak = np.abs(rows).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    values = np.clip(np.rint(rows / scales[:, None]), -127, 127).astype(np.int8)
    return StoredTable(values, scales)
