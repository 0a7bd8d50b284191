"""A variant's arrays read straight from its data file (bundle format 3), without onnxruntime: numpy and the
standard library only.

`VariantTable` maps `model.<variant>.data` read-only, as the manifest lays it out, and gives the vectors the pooling
graph would sum for given token ids: the mapping applied, the table row dequantised, the token weight applied, unknown
tokens left out. These are model2vec's `encode_as_sequence` vectors for the variant; their mean (then L2-normalised
when `normalize`) is the graph's output. Every page is shared with onnxruntime's mapping of the same file and with
other processes using the bundle.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from m2v_edge.bundle import Manifest, verify_data
from m2v_edge.errors import BundleError


class VariantTable:
    """The arrays of one variant of a bundle, memory-mapped from its data file.

    The file is verified first (`m2v_edge.bundle.verify_data`: inside the bundle, size, sha256 once per file state,
    the layout inside the file, the mapping inside the table), so no offset the manifest gives can read outside it.

    :param bundle_dir: the bundle folder.
    :param manifest: its manifest (`m2v_edge.bundle.read_manifest`).
    :param variant: `fp32`, `fp16`, `int8` or `int4`; the bundle must be of format 3.
    """

    def __init__(self, bundle_dir: str | Path, manifest: Manifest, variant: str) -> None:
        if variant not in manifest.variants:
            raise BundleError(f"bundle {bundle_dir} has no variant {variant!r} (it has {', '.join(manifest.variants)})")
        entry = manifest.tables.get(variant)
        if entry is None or not entry.arrays:
            raise BundleError(
                f"bundle {bundle_dir} is of format {manifest.format_version}, whose graphs keep arrays inside them: "
                "re-export it with this m2v-edge ('m2v-edge export') to read its vectors without onnxruntime"
            )
        path = verify_data(Path(bundle_dir), manifest, variant)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != entry.size:
                raise BundleError(f"bundle file {path} changed while it was opened; copy the bundle again")
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.variant = variant
        self.dim: int = manifest.dim
        self.vocab_size: int = manifest.vocab_size
        self.unk_id: int | None = manifest.unk_id
        """Ids left out of `token_vectors`, as model2vec's tokenize leaves them out (None: none)."""
        self.normalize: bool = manifest.normalize
        """Whether the mean of a text's vectors is L2-normalised."""
        self.block_size: int | None = entry.int4.block_size if entry.int4 is not None else None
        arrays = {}
        for name, array in entry.arrays.items():
            dtype = np.dtype(array.dtype).newbyteorder("<")
            count = array.length // dtype.itemsize
            arrays[name] = np.frombuffer(self._map, dtype=dtype, count=count, offset=array.offset).reshape(array.shape)
        self._table, self._scales = arrays["table"], arrays.get("scales")
        self._mapping, self._weights = arrays.get("mapping"), arrays.get("weights")

    @property
    def arrays(self) -> dict[str, np.ndarray | None]:
        """The mapped arrays, read-only: `table` (int4: packed bytes), `scales`, `mapping`, `weights` (None where the
        variant has none)."""
        return {"table": self._table, "scales": self._scales, "mapping": self._mapping, "weights": self._weights}

    def token_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The float32 vectors [n, dim] the graph sums for these token ids, in order, with `unk_id` left out.

        :param ids: token ids of one text, from the bundle's tokenizer (`add_special_tokens=False`).
        :raises ValueError: an id outside the vocabulary.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"token ids must be a sequence of integers, got {ids.dtype} of shape {ids.shape}")
        ids = ids.astype(np.int64, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size}), got {ids.min()} to {ids.max()}")
        if self.unk_id is not None:
            ids = ids[ids != self.unk_id]
        rows = self._mapping[ids] if self._mapping is not None else ids
        vectors = self._dequantized(rows)
        if self._weights is not None:
            vectors *= self._weights[ids][:, None]
        return vectors

    def _dequantized(self, rows: np.ndarray) -> np.ndarray:
        """Table rows as float32 [n, dim]."""
        if self.block_size is not None:
            assert self._scales is not None
            return dequantize_int4(self._table[rows], self._scales[rows], self.block_size, self.dim)
        vectors = self._table[rows].astype(np.float32)
        if self._scales is not None:
            vectors *= self._scales[rows][:, None]
        return vectors


def dequantize_int4(packed: np.ndarray, scales: np.ndarray, block_size: int, dim: int) -> np.ndarray:
    """The float32 values [rows, dim] of int4 rows packed as `m2v_edge.bundle.layout.INT4_PACKING` says: packed bytes
    [rows, blocks * block_size / 2] and float16 scales [rows, blocks]."""
    rows, blocks = scales.shape
    by_block = packed.reshape(rows, blocks, block_size // 2)
    codes = np.concatenate([by_block & 0x0F, by_block >> 4], axis=2).astype(np.float32) - 8
    values = codes * scales.astype(np.float32)[..., None]
    return values.reshape(rows, blocks * block_size)[:, :dim]
