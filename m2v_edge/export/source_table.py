"""The source model's tensors: the table read a block of rows at a time, the small tensors whole.

A Model2Vec table can be large (potion-multilingual-128M: 512 MB of float32). `SourceTable` never holds it: each
`rows` call maps the safetensors file, copies out one block of rows and unmaps it, so neither the table nor the
pages of the file it has read stay in the process (a mapping held open would count every page read into the
peak RSS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m2v_edge.errors import MissingExtraError, SourceModelError

NUMPY_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}
"""safetensors' dtype codes, by numpy's names (bfloat16 is ml_dtypes')."""
TABLE_DTYPES = ("float32", "float16", "float64", "bfloat16", "int8")


class SourceTable:
    """A 2-D table tensor of a safetensors file, read in blocks of rows; bfloat16 is read as float32, exactly.

    :param path: the safetensors file.
    :param name: the tensor.
    :param shape: its (rows, columns) in the file.
    :param stored_dtype: its dtype in the file, by numpy's name (`NUMPY_NAMES`).
    :param columns: read only the first `columns` columns (a truncated dimensionality); default all.
    """

    def __init__(self, path: Path, name: str, shape: tuple[int, int], stored_dtype: str, columns: int | None = None):
        self.path, self.name, self.stored_dtype = path, name, stored_dtype
        self.stored_shape = shape
        self.shape: tuple[int, int] = (shape[0], shape[1] if columns is None else columns)

    def truncated(self, columns: int) -> SourceTable:
        """The same table, its first `columns` columns only."""
        return SourceTable(self.path, self.name, self.stored_shape, self.stored_dtype, columns)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows `start` to `stop` (clipped to the table), [rows, columns], a copy."""
        from safetensors import safe_open

        stop = min(stop, self.shape[0])
        try:
            with safe_open(str(self.path), framework="numpy") as tensors:
                block = tensors.get_slice(self.name)[start:stop]
        except Exception as exc:  # safetensors' own untyped errors: the file changed while it was exported
            raise SourceModelError(f"cannot read {self.path} (did it change during the export?): {exc}") from None
        block = as_float32_if_bfloat16(block)
        return block if self.shape[1] == self.stored_shape[1] else np.ascontiguousarray(block[:, : self.shape[1]])


def read_tensors(path: Path, table_name: str) -> tuple[SourceTable | None, dict[str, np.ndarray]]:
    """The table `table_name` of a safetensors file (None if absent) and its other tensors, read whole (Model2Vec's
    `weights` and `mapping` are one value per token id). A file safetensors cannot read is a `SourceModelError`."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise MissingExtraError("export", "export") from None
    try:
        with safe_open(str(path), framework="numpy") as tensors:
            others = {name: as_float32_if_bfloat16(tensors.get_tensor(name))
                      for name in tensors.keys() if name != table_name}
            if table_name not in tensors.keys():
                return None, others
            table = tensors.get_slice(table_name)
            shape, code = tuple(table.get_shape()), table.get_dtype()
    except Exception as exc:  # safetensors raises its own untyped errors for corrupt files
        raise SourceModelError(f"cannot read {path}: {exc}") from None
    dtype = NUMPY_NAMES.get(code, code)
    if len(shape) != 2 or 0 in shape:
        raise SourceModelError(f"{path}: tensor {table_name!r} must be 2-D, got shape {shape}")
    if dtype not in TABLE_DTYPES:
        raise SourceModelError(
            f"{path}: table dtype {dtype} is not supported (float32, float16, float64, bfloat16 or int8)"
        )
    return SourceTable(path, table_name, (int(shape[0]), int(shape[1])), dtype), others


def as_float32_if_bfloat16(tensor: np.ndarray) -> np.ndarray:
    """A bfloat16 tensor as float32, exactly (bfloat16 is float32's upper 16 bits); any other tensor as it is.

    safetensors gives bfloat16 as ml_dtypes' `bfloat16`, a 2-byte kind-'V' dtype (its other 2-byte types are
    float16, int16 and uint16)."""
    if not (tensor.dtype.kind == "V" and tensor.dtype.itemsize == 2):
        return tensor
    return (tensor.view("<u2").astype(np.uint32) << 16).view(np.float32)
