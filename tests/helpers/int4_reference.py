"""An independent NumPy statement of the int4 quantisation, and model2vec pooling a given table: the reference the
int4 graph must equal to float tolerance (tests/export/test_export_int4.py, test_export_dimensionality.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from helpers.tiny_models import for_model2vec

BLOCK = 64


def reference_int4(table: np.ndarray, block_size: int = BLOCK) -> np.ndarray:
    """The issue's quantisation written plainly, block by block: symmetric 4-bit codes in [-7, 7] and one float16
    scale per block of columns, the scale max|x| / d with the least squared error over d = 7.0, 7.1, ..., 10.0
    (the first d on ties), clamped to float16's range; blocks are ceil(dim / block_size) columns of one even width.
    Returns the dequantised float32 table (what the graph must pool)."""
    rows, dim = table.shape
    blocks = -(-dim // block_size)
    width = 2 * -(-dim // (2 * blocks))
    values = table.astype(np.float32)
    out = np.zeros((rows, dim), dtype=np.float32)
    for k in range(blocks):
        x = np.zeros((rows, width), dtype=np.float32)
        part = values[:, k * width : (k + 1) * width]
        x[:, : part.shape[1]] = part
        peak = np.abs(x).max(axis=1)
        best = np.full(rows, np.inf, dtype=np.float32)
        chosen = np.zeros_like(x)
        for step in range(31):
            scale = np.clip(peak / np.float32(7.0 + step / 10), 2.0**-24, 65504.0).astype(np.float16)
            scale = np.where(peak > 0, scale, 0).astype(np.float32)
            safe = np.where(scale > 0, scale, 1)[:, None]
            deq = np.clip(np.rint(x / safe), -7, 7) * scale[:, None]
            err = ((deq - x) ** 2).sum(axis=1)
            better = err < best
            best[better] = err[better]
            chosen[better] = deq[better]
        out[:, k * width : k * width + part.shape[1]] = chosen[:, : part.shape[1]]
    return out


def source_table(folder: Path) -> np.ndarray:
    """The table of a Model2Vec folder (any layout), as stored."""
    tensors = load_file(str(next(folder.rglob("model.safetensors"))))
    return tensors["embeddings"] if "embeddings" in tensors else tensors["embedding.weight"]


def model2vec_with_table(folder: Path, table: np.ndarray, texts: list[str]) -> np.ndarray:
    """model2vec's vectors with its table replaced by `table` (float32): model2vec's pooling of exactly these rows."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(folder)
    model.embedding = table
    return np.asarray(model.encode([for_model2vec(t) for t in texts]), dtype=np.float64)
