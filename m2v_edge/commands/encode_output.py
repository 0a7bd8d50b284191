"""What `m2v-edge encode` writes: JSON Lines or .npy, block by block, into a file that appears only when complete."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

JSONL_ROWS = 256
"""Vectors turned into Python floats at a time for JSONL output: bounds the memory of that step (~2 MB)."""

Block = tuple[list[dict[str, Any]] | None, np.ndarray]
"""Consecutive vectors, with the fields each row's JSONL input line carries (None for plain-text input)."""


def check_output(path: Path) -> None:
    """Refuse an `--output` that cannot be written before any work is done."""
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"--output {path}: folder {path.parent} does not exist")


@contextmanager
def atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    """A file written under a temporary name beside `path`, renamed to it only when writing succeeded: an
    interrupted or failed run never leaves a half-written file that looks complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def opened_output(output: str, *, binary: bool) -> Iterator[IO[Any]]:
    """stdout for `-`, else `atomic(output)`."""
    if output == "-":
        yield sys.stdout
        return
    with atomic(Path(output), "wb" if binary else "w") as handle:
        yield handle


def write_jsonl(out: IO[str], blocks: Iterator[Block]) -> int:
    """One line per vector, `JSONL_ROWS` vectors at a time, of 7-decimal floats: a JSON array for plain-text input,
    or for JSONL input an object with the input line's `id` and `metadata` (when it has them) and the `vector`."""
    count = 0
    for carried, vectors in blocks:
        for start in range(0, len(vectors), JSONL_ROWS):
            rows = np.round(vectors[start : start + JSONL_ROWS].astype(np.float64), 7).tolist()
            if carried is None:
                lines = [json.dumps(row) for row in rows]
            else:
                fields = carried[start : start + JSONL_ROWS]
                lines = [json.dumps({**extra, "vector": row}, ensure_ascii=False) for extra, row in zip(fields, rows)]
            out.write("".join(f"{line}\n" for line in lines))
            count += len(rows)
    return count


def write_npy(handle: IO[bytes], blocks: Iterator[Block], dim: int) -> int:
    """Write an .npy file incrementally; the fixed-size header is rewritten with the final count at the end."""
    handle.write(_npy_header(0, dim))
    count = 0
    for _, vectors in blocks:
        handle.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        count += len(vectors)
    handle.seek(0)
    handle.write(_npy_header(count, dim))
    return count


def _npy_header(count: int, dim: int) -> bytes:
    """An .npy version 1.0 header of a fixed 128 bytes for a float32 [count, dim] array."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count}, {dim}), }}"
    body = text.ljust(128 - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")
