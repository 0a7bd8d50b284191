"""The sync loop: push an outbox's tombstones and pending rows to a Milvus collection, exactly once.

Each batch goes: read `(id, seq)` rows -> send (delete or write) -> server acknowledges -> mark those rows whose `seq`
is unchanged (see `m2v_edge.sync.outbox`). A crash before the mark means the batch is sent again, which is harmless
because both operations go by primary key. A failing or unreachable server is retried with `RetryPolicy` (bounded
exponential backoff with jitter); every failed attempt is recorded on the rows it concerned, which stay pending.

When Milvus refuses a batch for what its rows hold, the batch is split in halves, and those again, until the rows it
refuses are found; they are quarantined (state `rejected`, with the server's error) and the others go through
(`m2v_edge.sync.quarantine`). A server that refuses everything is retried, not emptied.

Before the first batch, the collection is checked against what the outbox last left there (`m2v_edge.sync.binding`)
and repaired when it is not the same, or when the last sync to it did not finish; so it is on reconnecting after a
connection lost after writes (a Milvus Lite server killed while writing loses writes it had acknowledged). Rows keep
their exact vectors until the sync ends; rows that must be sent again after that are embedded again with the
`embedder` (the outbox's bundle). Only one sync runs per outbox at a time: `run` and `watch` hold the outbox's
`SyncLock`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from m2v_edge.errors import MilvusRowError, MilvusSyncError, MilvusUnavailableError, OutboxError
from m2v_edge.sync.binding import RepairReport, remember, remembered, repair, repair_reason, unsettle
from m2v_edge.sync.ingest import Embedder, own_zero_vector_warnings
from m2v_edge.sync.lock import SyncLock
from m2v_edge.sync.milvus import MilvusCollection
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.quarantine import isolate
from m2v_edge.sync.retry import RetryPolicy, sleep
from m2v_edge.sync.rows import PendingRow, Tombstone

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_BATCH_BYTES = 4 << 20
WATCH_CHECK_EVERY = 60.0
"""Seconds after which `watch` looks at the collection even with nothing to send (to notice one recreated)."""

ProgressCallback = Callable[[int, int], None]
"""Called with (rows done, rows waiting when the pass started) after each acknowledged batch."""
RetryCallback = Callable[[int, int, float, Exception], None]
"""Called after a failed attempt with (attempt number from 1, attempts allowed, seconds until the next, error)."""


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
    rejected: int = 0
    """Rows the server refused for good, now quarantined (`Outbox.rejected`)."""
    retried: int = 0
    """Rows refused earlier made to wait again before sending (`retry_rejected`)."""
    shortened: int = 0
    """Texts cut to Milvus's 65,535 bytes (the outbox keeps them whole)."""
    embedded_again: int = 0
    """Rows embedded again because their exact vectors had been dropped after an earlier sync."""
    batches: int = 0
    failed_attempts: int = 0
    seconds: float = 0.0
    waiting: int = 0
    """Rows still waiting when the sync ended."""
    repairs: list[RepairReport] = field(default_factory=list)
    """Comparisons of the collection with the outbox made before sending."""

    def add(self, other: SyncReport) -> None:
        """Accumulate another report's counts (for `watch`)."""
        for name in ("upserted", "deleted", "superseded", "rejected", "retried", "shortened", "embedded_again",
                     "batches", "failed_attempts", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.repairs.extend(other.repairs)
        self.waiting = other.waiting


class Syncer:
    """Pushes one outbox to one collection. Create it, then call `run` (once) or `watch` (until stopped).

    :param embedder: the outbox's model, to embed again rows whose exact vectors were dropped (needed only then).
    :param reconcile: compare the collection with the outbox (and repair) before the next sync, even when it is
        the collection the outbox last left.
    :param on_retry: told about every failed attempt before the wait (default: logged at INFO).
    :param retry_rejected: make the rows the server refused for good wait again (`Outbox.retry_rejected`), once the
        sync holds the outbox's lock, before its first pass.
    """

    def __init__(
        self,
        outbox: Outbox,
        collection: MilvusCollection,
        *,
        embedder: Embedder | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
        on_retry: RetryCallback | None = None,
        reconcile: bool = False,
        retry_rejected: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if embedder is not None:
            outbox.check_fingerprint(embedder.fingerprint, embedder.dim)
        self.outbox = outbox
        self.collection = collection
        self.embedder = embedder
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.retry = retry or RetryPolicy()
        self.stop = stop
        self.progress = progress
        self.on_retry = on_retry
        self.reconcile = reconcile
        self.retry_rejected = retry_rejected
        self._lock = SyncLock(outbox.path)
        self._identity: str | None = None
        self._changed = False
        """The collection changed (writes, a repair) since the kiosk's sync token was last written."""
        self._unsettled = False
        """The outbox notes that a sync to this collection is under way (see `binding.unsettle`)."""

    # ------------------------------------------------------------- public

    def run(self) -> SyncReport:
        """Sync until nothing is waiting (rows written meanwhile are included); raise when retries run out."""
        report = SyncReport()
        self._run(report)
        return report

    def _run(self, report: SyncReport) -> None:
        """`run`, counting into `report` as it goes: a sync that fails half-way leaves what it did there."""
        start = time.perf_counter()
        with self._locked():
            if self.retry_rejected:  # under the lock: another sync may be marking rows rejected
                report.retried, self.retry_rejected = self.outbox.retry_rejected(), False
            try:
                # connect and check the collection first, even with nothing to send; failures are recorded on the
                # rows that would go first
                first = self.outbox.next_keys(self.batch_size)
                self._retrying(lambda: first, lambda: None, report)
                while True:
                    before = report.upserted + report.deleted + report.rejected
                    self._pass(report)
                    report.waiting = self.outbox.count_waiting()
                    if report.waiting == 0 or report.upserted + report.deleted + report.rejected == before:
                        break
                if self._changed:
                    self._retrying(lambda: (), self._write_token, report)
            finally:
                report.seconds = time.perf_counter() - start
            self.outbox.drop_sent_vectors()
            self.outbox.reclaim()

    def watch(self, *, interval: float = 2.0, on_pass: Callable[[SyncReport], None] | None = None) -> SyncReport:
        """Keep syncing as rows arrive until `stop` is set; unreachable-server spells are waited out, not fatal.

        `on_pass` gets the report of each pass that did something; the returned total also counts passes that
        failed half-way."""
        if self.stop is None:
            raise ValueError("watch needs a stop event")
        total = SyncReport()
        last_look = -WATCH_CHECK_EVERY
        with self._locked():
            while not self.stop.is_set():
                try:
                    if self.outbox.count_waiting() or time.monotonic() - last_look >= WATCH_CHECK_EVERY:
                        self._identity = None  # look at the collection again: recreated? restored? restarted?
                        report = SyncReport()
                        try:
                            self._run(report)
                        finally:
                            total.add(report)
                        last_look = time.monotonic()
                        if on_pass is not None and (report.batches or report.repairs):
                            on_pass(report)
                except SyncInterrupted:
                    break
                except MilvusUnavailableError as exc:
                    logger.warning("sync paused: %s; trying again in %gs", exc, interval)
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
            after = (batch[-1].seq, batch[-1].id)
            self._deliver(batch, self._send_deletes, "deleted", report)
            done += len(batch)
            self._progress(done, total)
        after = None
        while rows := self.outbox.pending(
            limit=self.batch_size, max_bytes=self.batch_bytes, up_to=high_water, after=after
        ):
            after = (rows[-1].seq, rows[-1].id)
            vectors = self._vectors(rows, report)
            self._deliver(rows, lambda part, vectors=vectors: self._send_upserts(part, vectors, report), "upserted",
                          report)
            done += len(rows)
            self._progress(done, total)

    def _send_deletes(self, part: Sequence[Any]) -> None:
        self.collection.delete([row.id for row in part], kiosk_id=self.outbox.kiosk_id)

    def _send_upserts(self, part: Sequence[Any], vectors: dict[str, np.ndarray], report: SyncReport) -> None:
        stacked = np.stack([vectors[row.id] for row in part])
        report.shortened += self.collection.upsert(part, stacked, kiosk_id=self.outbox.kiosk_id,
                                                   fingerprint=self.outbox.fingerprint)

    def _vectors(self, rows: Sequence[PendingRow], report: SyncReport) -> dict[str, np.ndarray]:
        """The exact vector of each row: stored, or embedded again from the text when it was dropped."""
        vectors = {row.id: row.vector for row in rows if row.vector is not None}
        again = [row for row in rows if row.vector is None]
        if again:
            if self.embedder is None:
                raise OutboxError(
                    f"{self.outbox.count_unembedded()} rows of outbox {self.outbox.path} must be sent again (to a new "
                    "or repaired collection), and their exact vectors were dropped after an earlier sync: give the "
                    "bundle the outbox was made with (sync --bundle) so that they are embedded again"
                )
            with own_zero_vector_warnings():  # said when they were ingested
                embedded = np.asarray(self.embedder.encode([row.text for row in again]), dtype=np.float32)
            vectors.update((row.id, embedded[i]) for i, row in enumerate(again))
            report.embedded_again += len(again)
        return vectors

    # ------------------------------------------------------------- delivery

    def _deliver(self, batch: Sequence[Any], send: Callable[[Sequence[Any]], None], kind: str,
                 report: SyncReport) -> None:
        """Send one batch until Milvus took it, retrying per the policy and quarantining rows it refuses for good."""
        unsent = list(batch)

        def acknowledged(part: Sequence[Any]) -> None:
            marked = self.outbox.mark_synced(part) if kind == "upserted" else self.outbox.mark_deleted(part)
            setattr(report, kind, getattr(report, kind) + marked)
            report.superseded += len(part) - marked
            self._changed = True
            done = {id(row) for row in part}
            unsent[:] = [row for row in unsent if id(row) not in done]

        def refused(row: Any, error: MilvusRowError) -> None:
            report.rejected += self.outbox.mark_rejected([row], str(error))
            unsent[:] = [other for other in unsent if other is not row]
            logger.warning("Milvus refuses row %r for good; quarantined (m2v-edge status lists it): %s", row.id, error)

        if not self._unsettled:  # before the first write: a sync that does not end leaves a repair to the next
            unsettle(self.outbox, self.collection.target.uri, self.collection.name)
            self._unsettled = True
        self._retrying(lambda: unsent, lambda: isolate(list(unsent), send, acknowledged, refused, self._probe),
                       report)
        report.batches += 1

    def _probe(self) -> None:
        """A write that changes nothing (a delete of a primary key no row has): does Milvus take writes now?"""
        self.collection.delete([""], kiosk_id=self.outbox.kiosk_id)

    def _retrying(self, rows: Callable[[], Sequence[PendingRow | Tombstone]], action: Callable[[], None],
                  report: SyncReport) -> None:
        """Connect if needed and run `action`, retrying transient failures per the policy; record every failure."""
        started = time.monotonic()
        for attempt in range(self.retry.max_attempts):
            if self.stop is not None and self.stop.is_set():
                raise SyncInterrupted("sync stopped; unsent rows stay pending")
            try:
                self._connect(report)
                action()
                return
            except MilvusUnavailableError as exc:
                report.failed_attempts += 1
                self.outbox.record_failure(rows(), str(exc))
                self._disconnect()
                if attempt + 1 == self.retry.max_attempts:
                    raise MilvusUnavailableError(
                        f"{exc} ({self.retry.max_attempts} attempts failed over {time.monotonic() - started:.0f}s; "
                        "unsent rows stay pending)"
                    ) from None
                delay = self.retry.delay(attempt)
                if self.on_retry is not None:
                    self.on_retry(attempt + 1, self.retry.max_attempts, delay, exc)
                else:
                    logger.info("attempt %d failed, retrying in %.1fs: %s", attempt + 1, delay, exc)
                if sleep(delay, self.stop):
                    raise SyncInterrupted("sync stopped while waiting to retry; rows stay pending") from None
            except MilvusSyncError as exc:
                report.failed_attempts += 1
                self.outbox.record_failure(rows(), str(exc))
                raise

    # ------------------------------------------------------------- the collection

    def _connect(self, report: SyncReport) -> None:
        if self._identity is not None:
            return
        self.collection.connect()
        info = self.collection.ensure(dim=self.outbox.dim, fingerprint=self.outbox.fingerprint)
        where = (self.collection.target.uri, self.collection.name)
        token = info.kiosk_tokens.get(self.outbox.kiosk_id)
        reason = "asked for" if self.reconcile else repair_reason(remembered(self.outbox, *where), info.identity,
                                                                   token)
        if reason is not None:
            remote = self.collection.kiosk_digests(self.outbox.kiosk_id)
            report.repairs.append(repair(self.outbox, remote, reason))
            self.reconcile = False
            self._changed = True
        self._identity = info.identity

    def _write_token(self) -> None:
        """Record on the collection and in the outbox that the collection now holds what the outbox synced."""
        token = uuid.uuid4().hex
        assert self._identity is not None
        self.collection.set_kiosk_token(self.outbox.kiosk_id, token)
        remember(self.outbox, self.collection.target.uri, self.collection.name, self._identity, token)
        self._changed = self._unsettled = False

    def _disconnect(self) -> None:
        self._identity = None
        self.collection.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock.held:
            yield
            return
        with self._lock:
            self.outbox.check_model_unchanged()  # a reembed may have run between the outbox's opening and now
            yield

    def _progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def sync_outbox(
    outbox: Outbox,
    collection: MilvusCollection,
    *,
    embedder: Embedder | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retry: RetryPolicy | None = None,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
    reconcile: bool = False,
) -> SyncReport:
    """Push everything waiting in `outbox` to `collection` once (see `Syncer`)."""
    syncer = Syncer(outbox, collection, embedder=embedder, batch_size=batch_size, retry=retry, stop=stop,
                    progress=progress, reconcile=reconcile)
    try:
        return syncer.run()
    finally:
        syncer.close()
