"""Writing a data file (bundle format 3): arrays one after another, each at a multiple of `DATA_ALIGNMENT`, the file
hashed while it is written, so that no large array is held whole or read back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from m2v_edge.bundle import DATA_ALIGNMENT, ArrayEntry


class DataFileWriter:
    """Writes `path`: `add` an array whole, or `begin` one and `write` it a block of rows at a time; `close` gives
    each array's `ArrayEntry`, and the file's sha256 and size. Arrays are stored little-endian and C-ordered, with
    zero bytes before each to align its start; nothing follows the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "wb")  # noqa: SIM115 (closed by close)
        self._digest = hashlib.sha256()
        self._size = 0
        self.arrays: dict[str, ArrayEntry] = {}
        self._open: tuple[str, np.dtype, tuple[int, ...], int] | None = None  # name, dtype, shape, offset

    def begin(self, name: str, dtype: np.dtype | str, shape: tuple[int, ...]) -> None:
        """Start array `name` of this dtype and shape: `write` its rows, in order, next."""
        assert self._open is None, "end the previous array first"
        self._put(memoryview(b"\0" * (-self._size % DATA_ALIGNMENT)))
        self._open = (name, np.dtype(dtype).newbyteorder("<"), tuple(int(n) for n in shape), self._size)

    def write(self, rows: np.ndarray) -> None:
        """The next rows of the array begun."""
        assert self._open is not None, "begin an array first"
        self._put(memoryview(np.ascontiguousarray(rows, dtype=self._open[1])).cast("B"))

    def end(self) -> ArrayEntry:
        """Finish the array begun: every byte its shape takes was written."""
        assert self._open is not None, "begin an array first"
        name, dtype, shape, offset = self._open
        length = self._size - offset
        count = int(np.prod(shape, dtype=np.int64))
        assert length == count * dtype.itemsize, f"{name}: wrote {length} bytes, its shape takes {count * dtype.itemsize}"
        self.arrays[name] = ArrayEntry(dtype=dtype.name, shape=shape, offset=offset, length=length)
        self._open = None
        return self.arrays[name]

    def add(self, name: str, values: np.ndarray) -> ArrayEntry:
        """Write a whole array."""
        self.begin(name, values.dtype, values.shape)
        self.write(values)
        return self.end()

    def close(self) -> tuple[str, int]:
        """Close the file; its sha256 and size."""
        assert self._open is None, "end the last array first"
        self._handle.close()
        return self._digest.hexdigest(), self._size

    def __enter__(self) -> DataFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def _put(self, data: memoryview) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self._size += data.nbytes
