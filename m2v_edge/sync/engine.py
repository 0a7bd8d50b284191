"""The sync loop: push an outbox's tombstones and pending rows to a Milvus collection, exactly once.

Each batch goes: read `(id, seq)` rows -> send (delete or upsert) -> server acknowledges -> mark those rows whose
`seq` is unchanged (see `m2v_edge.sync.outbox`). A crash before the mark means the batch is sent again, which is
harmless because both operations are idempotent by primary key. A failing or unreachable server is retried with
`RetryPolicy` (bounded exponential backoff with jitter); every failed attempt is recorded on the rows it concerned,
which stay pending. Only one sync may run per outbox at a time (an advisory lock on ``<outbox>.sync.lock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from m2v_edge.errors import MilvusSyncError, MilvusUnavailableError, OutboxError
from m2v_edge.sync.milvus import MilvusCollection
from m2v_edge.sync.outbox import Outbox, PendingRow, Tombstone
from m2v_edge.sync.retry import RetryPolicy, sleep

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_BATCH_BYTES = 4 << 20
_Row = TypeVar("_Row", PendingRow, Tombstone)

ProgressCallback = Callable[[int, int], None]
"""Called with (rows done, rows waiting when the pass started) after each acknowledged batch."""


class SyncInterrupted(MilvusSyncError):
    """The sync was asked to stop (the `stop` event was set); everything not acknowledged stays pending."""


@dataclass
class SyncReport:
    """What a sync did."""

    upserted: int = 0
    """Rows acknowledged by the server and marked synced."""
    deleted: int = 0
    """Tombstones acknowledged by the server and dropped."""
    superseded: int = 0
    """Rows acknowledged but changed locally meanwhile: they stay waiting and go again."""
    batches: int = 0
    failed_attempts: int = 0
    seconds: float = 0.0
    waiting: int = 0
    """Rows still waiting when the sync ended."""

    def add(self, other: SyncReport) -> None:
        """Accumulate another report's counts (for `watch`)."""
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.superseded += other.superseded
        self.batches += other.batches
        self.failed_attempts += other.failed_attempts
        self.seconds += other.seconds
        self.waiting = other.waiting


class SyncLock:
    """An exclusive advisory lock on ``<outbox>.sync.lock``, released when the process ends in any way."""

    def __init__(self, outbox_path: Path) -> None:
        self.path = Path(f"{outbox_path}.sync.lock")
        self._fd: int | None = None

    def __enter__(self) -> SyncLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            outbox = str(self.path)[: -len(".sync.lock")]
            raise OutboxError(f"another sync is already running on outbox {outbox}") from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Syncer:
    """Pushes one outbox to one collection. Create it, then call `run` (once) or `watch` (until stopped)."""

    def __init__(
        self,
        outbox: Outbox,
        collection: MilvusCollection,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.outbox = outbox
        self.collection = collection
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.retry = retry or RetryPolicy()
        self.stop = stop
        self.progress = progress
        self._ready = False

    # ------------------------------------------------------------- public

    def run(self) -> SyncReport:
        """Sync until nothing is waiting (rows written meanwhile are included); raise when retries run out."""
        report = SyncReport()
        start = time.perf_counter()
        try:
            # connect and check the collection first, even with nothing to send; failures are recorded on the
            # rows that would go first
            first: Sequence[PendingRow | Tombstone] = self.outbox.tombstones(
                limit=self.batch_size, up_to=self.outbox.high_water()
            ) or self.outbox.pending(limit=self.batch_size, max_bytes=self.batch_bytes, up_to=self.outbox.high_water())
            self._attempt(first, lambda: None, report)
            while True:
                before = report.upserted + report.deleted
                self._pass(report)
                report.waiting = self.outbox.count_waiting()
                if report.waiting == 0 or report.upserted + report.deleted == before:
                    break
        finally:
            report.seconds = time.perf_counter() - start
        return report

    def watch(self, *, interval: float = 2.0, on_pass: Callable[[SyncReport], None] | None = None) -> SyncReport:
        """Keep syncing as rows arrive until `stop` is set; unreachable-server spells are waited out, not fatal."""
        if self.stop is None:
            raise ValueError("watch needs a stop event")
        total = SyncReport()
        while not self.stop.is_set():
            try:
                if self.outbox.count_waiting():
                    report = self.run()
                    total.add(report)
                    if on_pass is not None:
                        on_pass(report)
            except SyncInterrupted:
                break
            except MilvusUnavailableError as exc:
                logger.warning("sync paused, will retry: %s", exc)
                self._disconnect()
            if sleep(interval, self.stop):
                break
        total.waiting = self.outbox.count_waiting()
        return total

    def close(self) -> None:
        """Disconnect from Milvus."""
        self._disconnect()

    # ------------------------------------------------------------- passes

    def _pass(self, report: SyncReport) -> None:
        high_water = self.outbox.high_water()
        total = self.outbox.count_waiting()
        done = 0
        after: tuple[int, str] | None = None
        while batch := self.outbox.tombstones(limit=self.batch_size, up_to=high_water, after=after):
            ids = [row.id for row in batch]
            self._attempt(batch, lambda ids=ids: self.collection.delete(ids), report)
            marked = self.outbox.mark_deleted(batch)
            report.deleted += marked
            report.superseded += len(batch) - marked
            report.batches += 1
            done += len(batch)
            after = (batch[-1].seq, batch[-1].id)
            self._progress(done, total)
        after = None
        fingerprint = self.outbox.fingerprint
        while batch := self.outbox.pending(
            limit=self.batch_size, max_bytes=self.batch_bytes, up_to=high_water, after=after
        ):
            self._attempt(batch, lambda batch=batch: self.collection.upsert(batch, fingerprint), report)
            marked = self.outbox.mark_synced(batch)
            report.upserted += marked
            report.superseded += len(batch) - marked
            report.batches += 1
            done += len(batch)
            after = (batch[-1].seq, batch[-1].id)
            self._progress(done, total)

    def _attempt(self, rows: Sequence[_Row], send: Callable[[], None], report: SyncReport) -> None:
        """Send one batch, retrying transient failures per the policy; record every failure on the rows."""
        for attempt in range(self.retry.max_attempts):
            if self.stop is not None and self.stop.is_set():
                raise SyncInterrupted("sync stopped; unsent rows stay pending")
            try:
                self._connect()
                send()
                return
            except MilvusUnavailableError as exc:
                report.failed_attempts += 1
                self.outbox.record_failure(rows, str(exc))
                self._disconnect()
                if attempt + 1 == self.retry.max_attempts:
                    raise MilvusUnavailableError(
                        f"{exc} (gave up after {self.retry.max_attempts} attempts; unsent rows stay pending)"
                    ) from None
                delay = self.retry.delay(attempt)
                logger.info("attempt %d failed, retrying in %.1fs: %s", attempt + 1, delay, exc)
                if sleep(delay, self.stop):
                    raise SyncInterrupted("sync stopped while waiting to retry; rows stay pending") from None
            except MilvusSyncError as exc:
                report.failed_attempts += 1
                self.outbox.record_failure(rows, str(exc))
                raise

    def _connect(self) -> None:
        if not self._ready:
            self.collection.connect()
            self.collection.ensure(dim=self.outbox.dim, fingerprint=self.outbox.fingerprint)
            self._ready = True

    def _disconnect(self) -> None:
        self._ready = False
        self.collection.close()

    def _progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def sync_outbox(
    outbox: Outbox,
    collection: MilvusCollection,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retry: RetryPolicy | None = None,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Push everything waiting in `outbox` to `collection` once, holding the outbox's sync lock."""
    with SyncLock(outbox.path):
        syncer = Syncer(outbox, collection, batch_size=batch_size, retry=retry, stop=stop, progress=progress)
        try:
            return syncer.run()
        finally:
            syncer.close()
