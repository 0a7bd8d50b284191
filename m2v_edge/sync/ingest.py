"""Ingest: embed records and write them into the outbox, one transaction per batch.

A batch is embedded first and then written in a single SQLite transaction, so an ingest killed at any moment
leaves each batch wholly in the outbox or not at all; running the same ingest again finishes the job (ids that
were already written are simply replaced).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.records import Record, read_records

DEFAULT_BATCH_SIZE = 512

ProgressCallback = Callable[[int, int], None]
"""Called with (records done, records in total) after each batch."""


class Embedder(Protocol):
    """What ingest needs from an embedder; `m2v_edge.runtime.EdgeEmbedder` is one."""

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did."""

    written: int
    """Rows written (each now pending)."""
    lines: int
    """Non-blank input lines (0 when records did not come from a file)."""
    duplicates: int
    """Input lines superseded by a later line with the same id."""
    batches: int
    seconds: float


def ingest(
    outbox: Outbox,
    embedder: Embedder,
    records: Iterable[Record],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    total: int = 0,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Embed `records` in batches of `batch_size` and write each batch in one transaction.

    Records are written in order; within one call, a later record with an id already seen replaces the earlier.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outbox.check_fingerprint(embedder.fingerprint, embedder.dim)
    start = time.perf_counter()
    written = batches = 0
    batch: dict[str, Record] = {}
    for record in records:
        batch.pop(record.id, None)  # keep file order for the winner
        batch[record.id] = record
        if len(batch) >= batch_size:
            written += _write_batch(outbox, embedder, list(batch.values()))
            batches += 1
            batch = {}
            if progress is not None:
                progress(written, total)
    if batch:
        written += _write_batch(outbox, embedder, list(batch.values()))
        batches += 1
        if progress is not None:
            progress(written, total)
    return IngestReport(written, 0, 0, batches, time.perf_counter() - start)


def ingest_file(
    outbox_path: str | os.PathLike[str],
    embedder: Embedder,
    source: str | Path | IO[bytes],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Validate a JSONL file (see `m2v_edge.sync.records`), then ingest it into the outbox at `outbox_path`.

    The whole file is checked before the outbox is created or touched: a bad file changes nothing.
    """
    with read_records(source) as record_set:
        with Outbox.create(outbox_path, fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
            report = ingest(
                outbox, embedder, record_set, batch_size=batch_size, total=len(record_set), progress=progress
            )
        return IngestReport(
            written=report.written,
            lines=record_set.lines,
            duplicates=record_set.duplicates,
            batches=report.batches,
            seconds=report.seconds,
        )


def _write_batch(outbox: Outbox, embedder: Embedder, batch: list[Record]) -> int:
    vectors = np.asarray(embedder.encode([record.text for record in batch]))
    if vectors.shape != (len(batch), outbox.dim):
        raise OutboxError(
            f"the embedder returned vectors of shape {vectors.shape} for {len(batch)} texts, expected dim {outbox.dim}"
        )
    outbox.put([(record.id, record.text, record.metadata) for record in batch], vectors.astype(np.float32))
    return len(batch)
