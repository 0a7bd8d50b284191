"""The layout of a variant's data file `model.<variant>.data` (format 3): its arrays at recorded offsets.

A `TableFile` is the manifest entry of a variant's data file: every array its pooling graph reads (`ARRAY_NAMES`),
each described by an `ArrayEntry` (dtype, shape, offset, length) and starting at a multiple of `DATA_ALIGNMENT`, so
that each can be memory-mapped (by onnxruntime, which reads them as ONNX external data, or by numpy), plus how an
int4 table is packed: what a reader needs to pool without the graph (`m2v_edge.runtime.table`).
`check_table_file` refuses any layout no exporter writes, including offsets and lengths that leave the file, before
anything maps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m2v_edge.bundle.files import FileEntry

DATA_ALIGNMENT = 4096
"""Every array starts at a multiple of this many bytes (the page size), as memory-mapping needs."""
DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int64": 8}
"""The array dtypes a data file may hold (little-endian), and their sizes."""
ARRAY_NAMES = ("table", "scales", "mapping", "weights")
"""The arrays of a variant's data file, in file order: the token table, its int8/int4 scales, the token id -> table
row mapping, the per-token-id weights."""
TABLE_DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8", "int4": "uint8"}
SCALE_DTYPES = {"int8": "float32", "int4": "float16"}
"""int8: one float32 scale per row; int4: one float16 scale per row and block of columns."""
INT4_PACKING = "half-blocks"
"""The only int4 packing: per row, blocks of `block_size` columns; byte j of block k holds code j in its low nibble
and code block_size/2 + j in its high nibble, each nibble being q + 8 for q in [-7, 7]."""


@dataclass(frozen=True)
class ArrayEntry:
    """Where an array lies in its data file: dtype (little-endian), shape, byte offset and byte length."""

    dtype: str
    shape: tuple[int, ...]
    offset: int
    length: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArrayEntry:
        """Parse a manifest entry (the values are checked by `check_table_file`)."""
        return cls(dtype=data["dtype"], shape=tuple(data["shape"]), offset=data["offset"], length=data["length"])


@dataclass(frozen=True)
class Int4Packing:
    """How a variant's int4 table is packed: `block_size` columns per scale, codes packed as `packing` says."""

    block_size: int
    packing: str = INT4_PACKING


@dataclass(frozen=True)
class TableFile(FileEntry):
    """A variant's data file: its arrays (format 3; empty in format 2, whose data file is the bare table), and for
    int4 how the table is packed."""

    arrays: dict[str, ArrayEntry] = field(default_factory=dict)
    int4: Int4Packing | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableFile:
        """Parse a manifest entry of format 2 (file, sha256, size) or 3 (with arrays and int4)."""
        int4 = data.get("int4")
        return cls(
            file=data["file"],
            sha256=data["sha256"],
            size=data["size"],
            arrays={name: ArrayEntry.from_dict(entry) for name, entry in data.get("arrays", {}).items()},
            int4=None if int4 is None else Int4Packing(**int4),
        )


def check_table_file(variant: str, entry: TableFile, *, dim: int, vocab_size: int) -> None:
    """Raise ValueError unless `entry` lays out exactly the arrays a `variant` graph of this `dim` and `vocab_size`
    reads, each inside the file (by the manifest's size; `verify_file` holds the file to that size), aligned and
    not overlapping. The mapping's values are checked against the table's rows when the file is verified."""
    where = f"tables.{variant}"
    unknown = sorted(set(entry.arrays) - set(ARRAY_NAMES))
    if unknown or "table" not in entry.arrays:
        raise ValueError(f"{where} must list a 'table' and only arrays of {ARRAY_NAMES}, got {sorted(entry.arrays)}")
    for name, array in entry.arrays.items():
        _check_array(f"{where}.{name}", array, entry.size)
    spans = sorted((array.offset, array.offset + array.length, name) for name, array in entry.arrays.items())
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"{where}: arrays {first!r} and {second!r} overlap")
    table = entry.arrays["table"]
    _expect(f"{where}.table", table, TABLE_DTYPES[variant], None)
    if len(table.shape) != 2:
        raise ValueError(f"{where}.table must have 2 dimensions, got shape {list(table.shape)}")
    rows = table.shape[0]
    scales = entry.arrays.get("scales")
    if variant in SCALE_DTYPES and scales is None:
        raise ValueError(f"{where} has no 'scales', which {variant} needs")
    if variant not in SCALE_DTYPES and scales is not None:
        raise ValueError(f"{where} has 'scales', which {variant} does not use")
    if variant == "int4":
        _check_int4(where, entry, dim)
    else:
        if entry.int4 is not None:
            raise ValueError(f"{where} has an int4 packing, but {variant} is not int4")
        _expect(f"{where}.table", table, TABLE_DTYPES[variant], (rows, dim))
        if scales is not None:
            _expect(f"{where}.scales", scales, SCALE_DTYPES[variant], (rows,))
    mapping, weights = entry.arrays.get("mapping"), entry.arrays.get("weights")
    if mapping is not None:
        _expect(f"{where}.mapping", mapping, "int64", (vocab_size,))
    elif rows < vocab_size:
        raise ValueError(f"{where}.table has {rows} rows, fewer than the {vocab_size} token ids, and no mapping: "
                         "the table does not fit the vocabulary")
    if weights is not None:
        _expect(f"{where}.weights", weights, "float32", (vocab_size,))


def _check_int4(where: str, entry: TableFile, dim: int) -> None:
    """int4: a known packing, `blocks` scales per row, and blocks * block_size columns covering `dim` (the last block
    may be padded)."""
    packing = entry.int4
    if packing is None or not _is_count(packing.block_size) or packing.block_size % 2:
        raise ValueError(f"{where}.int4 must give an even block_size, got {packing!r}")
    if packing.packing != INT4_PACKING:
        raise ValueError(f"{where}.int4 uses packing {packing.packing!r}, unknown to this m2v-edge (upgrade m2v-edge)")
    table, scales = entry.arrays["table"], entry.arrays["scales"]
    if len(scales.shape) != 2:
        raise ValueError(f"{where}.scales must have 2 dimensions (rows, blocks), got shape {list(scales.shape)}")
    rows, blocks, block = table.shape[0], scales.shape[1], packing.block_size
    _expect(f"{where}.scales", scales, "float16", (rows, blocks))
    _expect(f"{where}.table", table, "uint8", (rows, blocks * block // 2))
    if not (blocks - 1) * block < dim <= blocks * block:
        raise ValueError(f"{where}: {blocks} blocks of {block} columns do not fit dim {dim}")


def _check_array(where: str, array: ArrayEntry, file_size: int) -> None:
    if array.dtype not in DTYPE_BYTES:
        raise ValueError(f"{where} has dtype {array.dtype!r}, not one of {sorted(DTYPE_BYTES)}")
    if not array.shape or not all(_is_count(n) for n in array.shape):
        raise ValueError(f"{where} must have a shape of positive whole numbers, got {list(array.shape)}")
    count = 1
    for n in array.shape:
        count *= n
    if not _is_count(array.length) or array.length != count * DTYPE_BYTES[array.dtype]:
        raise ValueError(f"{where} has length {array.length!r}; a {array.dtype} array of shape {list(array.shape)} "
                         f"takes {count * DTYPE_BYTES[array.dtype]} bytes")
    if not _is_count(array.offset + 1) or array.offset % DATA_ALIGNMENT:
        raise ValueError(f"{where} has offset {array.offset!r}, not a multiple of {DATA_ALIGNMENT}")
    if array.offset + array.length > file_size:
        raise ValueError(f"{where} ends at byte {array.offset + array.length}, past the end of its "
                         f"{file_size}-byte file")


def _expect(where: str, array: ArrayEntry, dtype: str, shape: tuple[int, ...] | None) -> None:
    if array.dtype != dtype or (shape is not None and array.shape != shape):
        wanted = dtype if shape is None else f"{dtype} {list(shape)}"
        raise ValueError(f"{where} is {array.dtype} {list(array.shape)}, expected {wanted}")


def _is_count(value: Any) -> bool:
    """A positive int, bools refused."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
