"""Ingest: embed records and write them into the outbox, one transaction per batch.

A batch is embedded first and then written in a single SQLite transaction, so an ingest killed at any moment
leaves each batch wholly in the outbox or not at all; running the same ingest again finishes the job (ids that
were already written are simply replaced).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.records import Record, check_records, read_records, to_record

logger = logging.getLogger(__name__)
ZERO_VECTOR_LOGGER = "m2v_edge.runtime.zero_vectors"
"""The logger `EdgeEmbedder.encode` warns on about zero vectors (named, not imported: the runtime loads onnxruntime)."""
ZERO_SAMPLES = 20
"""Texts that gave zero vectors kept per ingest, to name their script in the warning."""

DEFAULT_BATCH_SIZE = 512

ProgressCallback = Callable[[int, int], None]
"""Called with (records written, records in total, 0 when unknown) once the records are checked, before the first
batch, and after each batch."""


class Embedder(Protocol):
    """What ingest needs from an embedder; `m2v_edge.runtime.EdgeEmbedder` is one."""

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@contextlib.contextmanager
def own_zero_vector_warnings() -> Iterator[None]:
    """Drop, in this thread, the one WARNING per `encode` call an `EdgeEmbedder` logs about texts that gave zero
    vectors: the caller counts them over all its calls and says it once (other threads keep theirs)."""
    zero_logger = logging.getLogger(ZERO_VECTOR_LOGGER)
    thread = threading.get_ident()

    def other_threads(record: logging.LogRecord) -> bool:
        return record.thread != thread

    zero_logger.addFilter(other_threads)
    try:
        yield
    finally:
        zero_logger.removeFilter(other_threads)


def model_name(embedder: Embedder) -> str:
    """The model's name as its user knows it: the bundle's source id, else the fingerprint."""
    manifest = getattr(embedder, "manifest", None)
    source = getattr(manifest, "source", None)
    return str(getattr(source, "id", None) or embedder.fingerprint)


class IngestInterrupted(KeyboardInterrupt):
    """An ingest stopped by Ctrl-C (or SIGTERM turned into one); `committed` rows are in the outbox, whole batches."""

    def __init__(self, committed: int) -> None:
        super().__init__(f"{committed} documents committed")
        self.committed = committed


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
    zero_vectors: int = 0
    """Texts that gave the zero vector (no token the model knows); they are stored, but no query finds them."""
    zero_vector_message: str | None = None
    """Why, and what to do (see `m2v_edge.runtime.zero_vectors`); None when every text had a vector."""


def ingest(
    outbox: Outbox,
    embedder: Embedder,
    records: Iterable[Record | Mapping[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    total: int = 0,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Embed `records` in batches of `batch_size` and write each batch in one transaction.

    Records (`Record`s or ``{"id", "text", "metadata"?}`` mappings) get the checks the file reader applies to lines
    (`m2v_edge.sync.records.check_record`). A `Sequence` is checked whole first: one bad record refuses the call
    and nothing is written. Other iterables are checked as they come: a bad record stops the ingest before its
    batch is written, and the batches before it stay. Records are written in order; within one call, a later
    record with an id already seen replaces the earlier. Texts that give zero vectors are counted and logged at
    WARNING once per call. Ctrl-C raises `IngestInterrupted`, which says how many documents were committed.
    """
    # imported here: m2v_edge.runtime's package import loads onnxruntime, which sync and status never need
    from m2v_edge.runtime.zero_vectors import zero_vector_message

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outbox.check_fingerprint(embedder.fingerprint, embedder.dim)
    stream: Iterable[Record] = (
        check_records(records) if isinstance(records, Sequence)
        else (to_record(item, f"record {number}") for number, item in enumerate(records, start=1))
    )
    start = time.perf_counter()
    first_seq = outbox.high_water()
    with own_zero_vector_warnings(), _counting_interrupts(outbox, first_seq):
        written = batches = zeros = 0
        zero_texts: list[str] = []
        if progress is not None:
            progress(0, total)
        batch: dict[str, Record] = {}
        for record in stream:
            batch.pop(record.id, None)  # keep input order for the winner
            batch[record.id] = record
            if len(batch) >= batch_size:
                zeros += _write_batch(outbox, embedder, list(batch.values()), zero_texts)
                written += len(batch)
                batches += 1
                batch = {}
                if progress is not None:
                    progress(written, total)
        if batch:
            zeros += _write_batch(outbox, embedder, list(batch.values()), zero_texts)
            written += len(batch)
            batches += 1
            if progress is not None:
                progress(written, total)
    message = zero_vector_message(zeros, written, model_name(embedder), zero_texts) if zeros else None
    if message:
        logger.warning("%s", message)
    return IngestReport(written, 0, 0, batches, time.perf_counter() - start, zeros, message)


def ingest_file(
    outbox_path: str | os.PathLike[str],
    embedder: Embedder,
    source: str | Path | IO[bytes],
    *,
    kiosk_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Validate a JSONL file (see `m2v_edge.sync.records`), then ingest it into the outbox at `outbox_path`.

    The whole file is checked before the outbox is created or touched: a bad file changes nothing. A new outbox
    gets `kiosk_id` (default: the machine's, `m2v_edge.sync.kiosk`); an existing one must have that id when given.
    """
    with read_records(source) as record_set:
        with Outbox.create(outbox_path, fingerprint=embedder.fingerprint, dim=embedder.dim,
                           kiosk_id=kiosk_id) as outbox:
            report = ingest(
                outbox, embedder, record_set, batch_size=batch_size, total=len(record_set), progress=progress
            )
        return dataclasses.replace(report, lines=record_set.lines, duplicates=record_set.duplicates)


@contextlib.contextmanager
def _counting_interrupts(outbox: Outbox, first_seq: int) -> Iterator[None]:
    """Turn KeyboardInterrupt into `IngestInterrupted` with the rows committed since `first_seq`, counted in the
    outbox: exact wherever the interrupt lands (a batch's transaction is committed or rolled back whole)."""
    try:
        yield
    except KeyboardInterrupt:
        raise IngestInterrupted(outbox.count_written_since(first_seq)) from None


def _write_batch(outbox: Outbox, embedder: Embedder, batch: list[Record], zero_texts: list[str]) -> int:
    """Embed and write one batch; returns how many of its texts gave zero vectors (a few kept in `zero_texts`)."""
    from m2v_edge.runtime.zero_vectors import zero_rows

    vectors = np.asarray(embedder.encode([record.text for record in batch]))
    if vectors.shape != (len(batch), outbox.dim):
        raise OutboxError(
            f"the embedder returned vectors of shape {vectors.shape} for {len(batch)} texts, expected dim {outbox.dim}"
        )
    outbox.put([(record.id, record.text, record.metadata) for record in batch], vectors.astype(np.float32))
    zeros = zero_rows(vectors)
    zero_texts.extend(batch[int(i)].text for i in zeros[: ZERO_SAMPLES - len(zero_texts)])
    return len(zeros)
