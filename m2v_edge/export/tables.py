"""Each variant's data file, written from the source table in one pass over its rows.

The source is read a block of rows at a time (`SourceTable.rows`); worker threads quantise each block to every
variant (numpy releases the GIL) while this thread writes the results, in order, into the data files, hashing them
as they are written. At most `BLOCKS_AHEAD` blocks per worker are in memory: a 512 MB table is exported in tens of
MB. After the tables come the scales, the mapping and the weights (`m2v_edge.bundle.layout.ARRAY_NAMES`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import numpy as np

from m2v_edge.bundle import Int4Packing, TableFile, table_file
from m2v_edge.bundle.layout import TABLE_DTYPES
from m2v_edge.export.data_file import DataFileWriter
from m2v_edge.export.quantize import StoredTable, int4_layout, quantize_table
from m2v_edge.export.source_table import SourceTable

BLOCK_VALUES = 1 << 20
"""Table values per block of rows (4 MiB of float32)."""
BLOCKS_AHEAD = 1
"""Blocks per worker quantised ahead of the writing."""
MAX_WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")


def write_data_files(
    table: SourceTable,
    folder: Path,
    variants: Iterable[str],
    *,
    mapping: np.ndarray | None,
    weights: np.ndarray | None,
) -> dict[str, TableFile]:
    """Write `model.<variant>.data` for each variant into `folder`; return their manifest entries (with layouts)."""
    variants = tuple(variants)
    rows, dim = table.shape
    step = max(1, BLOCK_VALUES // dim)
    scales: dict[str, list[np.ndarray]] = {variant: [] for variant in variants}
    workers = _workers()
    with ExitStack() as stack:
        writers = {v: stack.enter_context(DataFileWriter(folder / table_file(v))) for v in variants}
        for variant, writer in writers.items():
            writer.begin("table", TABLE_DTYPES[variant], _table_shape(variant, rows, dim))
        pool = stack.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="m2v-edge-export"))

        def quantize(start: int) -> dict[str, StoredTable]:
            block = table.rows(start, start + step)
            return {variant: quantize_table(block, variant) for variant in variants}

        for stored in _in_order(pool, quantize, range(0, rows, step), ahead=BLOCKS_AHEAD * workers):
            for variant, part in stored.items():
                writers[variant].write(part.values)
                if part.scales is not None:
                    scales[variant].append(part.scales)
        files = {}
        for variant, writer in writers.items():
            writer.end()
            if scales[variant]:
                writer.add("scales", np.concatenate(scales[variant]))
            if mapping is not None:
                writer.add("mapping", mapping.astype(np.int64))
            if weights is not None:
                writer.add("weights", weights.astype(np.float32))
            sha256, size = writer.close()
            int4 = Int4Packing(int4_layout(dim)[1]) if variant == "int4" else None
            files[variant] = TableFile(table_file(variant), sha256, size, arrays=dict(writer.arrays), int4=int4)
    return files


def _table_shape(variant: str, rows: int, dim: int) -> tuple[int, int]:
    """The stored table's shape: [rows, dim], or for int4 [rows, blocks * block / 2] bytes."""
    if variant != "int4":
        return rows, dim
    blocks, block = int4_layout(dim)
    return rows, blocks * block // 2


def _workers() -> int:
    """The CPUs this process may run on, at most `MAX_WORKERS`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WORKERS, cpus or 1))


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *, ahead: int) -> Iterator[R]:
    """`pool.map(fn, items)` with at most `ahead` results waiting, so memory stays bounded however fast the pool."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
