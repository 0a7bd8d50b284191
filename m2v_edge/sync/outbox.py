"""The outbox: a SQLite file that holds embedded documents until Milvus has acknowledged them.

One row per document id::

    id           TEXT PRIMARY KEY   the caller's id
    text         TEXT               the document text (kept in full)
    metadata     TEXT               a JSON object
    vector       BLOB               float32 little-endian, `dim` values; NULL for a tombstone of an unknown id
    fingerprint  TEXT               the model fingerprint the vector was made with
    created      REAL               Unix time the row was (re)written
    state        TEXT               'pending' | 'synced' | 'deleted-pending'
    attempts     INTEGER            failed pushes since the row last changed
    last_error   TEXT               the last push error, NULL when none
    seq          INTEGER            change number: every write transaction takes the next one

Exactly-once rests on `seq`. A sync reads `(id, seq)` pairs, pushes them, and after the server's acknowledgement
marks *only the rows whose `seq` is unchanged*: a row re-ingested or deleted while its push was in flight keeps its
new state and is pushed again. Upserts and deletes are idempotent by primary key, so a crash at any point costs a
resend, never a loss or a duplicate.

The file is created with mode 0600 and opened in WAL mode with `synchronous=FULL`, so a committed transaction
survives power loss. The database carries an application id and a schema version; a file that is not an m2v-edge
outbox, or one written with another model fingerprint, is refused before anything is written to it.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    Transaction,
    connect,
    create_file,
    ensure_wal,
    initialise,
    is_empty_database,
)

STATES = ("pending", "synced", "deleted-pending")



@dataclass(frozen=True)
class PendingRow:
    """A row waiting to be upserted, as read by a sync."""

    id: str
    seq: int
    text: str
    metadata: dict[str, object]
    vector: np.ndarray
    attempts: int

    @property
    def size(self) -> int:
        """Approximate bytes this row adds to an upsert request."""
        return len(self.id) + len(self.text.encode("utf-8")) + self.vector.nbytes + 64


@dataclass(frozen=True)
class Tombstone:
    """An id whose deletion must be propagated."""

    id: str
    seq: int


@dataclass(frozen=True)
class OutboxStatus:
    """Counts and facts about an outbox, for `m2v-edge status`."""

    path: str
    fingerprint: str
    dim: int
    pending: int
    synced: int
    deleted_pending: int
    failing: int
    """Rows (pending or tombstones) whose last push failed."""
    last_error: str | None
    oldest_pending: float | None
    """`created` time of the oldest row still waiting, None when nothing waits."""

    @property
    def total(self) -> int:
        """Every row, tombstones included."""
        return self.pending + self.synced + self.deleted_pending


@dataclass(frozen=True)
class DeleteResult:
    """What `Outbox.delete` did."""

    marked: int
    """Ids that had a row and now carry a tombstone."""
    unknown: int
    """Ids with no row: a tombstone was still recorded, since the collection may hold them from earlier."""


_F = TypeVar("_F", bound=Callable[..., Any])


def _reads(method: _F) -> _F:
    """Turn sqlite errors raised while reading into `OutboxError` (a damaged file, a vanished disk...)."""

    @functools.wraps(method)
    def wrapper(self: Outbox, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox {self.path}: {exc}") from None

    return wrapper  # type: ignore[return-value]


class Outbox:
    """An open outbox database. Use `Outbox.create` to make or reopen one for writing, `Outbox.open` otherwise.

    One `Outbox` belongs to one thread. Several processes may use the same file at once (SQLite locking);
    only one of them should sync at a time, which `m2v_edge.sync.engine` enforces with a lock file.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, fingerprint: str, dim: int) -> None:
        self._conn = conn
        self.path = path
        self.fingerprint = fingerprint
        self.dim = dim

    # ----------------------------------------------------------------- opening

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, fingerprint: str, dim: int) -> Outbox:
        """Open the outbox at `path` for writing vectors of `fingerprint`, creating it (mode 0600) when missing.

        An existing outbox must have been made with the same fingerprint and dim.
        """
        path = Path(path)
        if not fingerprint or dim <= 0:
            raise OutboxError(f"cannot create outbox {path}: invalid fingerprint {fingerprint!r} or dim {dim}")
        created = create_file(path)
        conn = connect(path)
        try:
            if created or is_empty_database(conn):
                initialise(conn, path, fingerprint, dim)
            outbox = cls._from_connection(conn, path)
        except BaseException:
            conn.close()
            raise
        outbox.check_fingerprint(fingerprint, dim)
        return outbox

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, fingerprint: str | None = None) -> Outbox:
        """Open an existing outbox; with `fingerprint`, refuse one written by another model."""
        path = Path(path)
        if not path.exists():
            raise OutboxError(f"outbox {path} does not exist; create it with 'm2v-edge ingest'")
        if path.is_dir():
            raise OutboxError(f"outbox {path} is a folder, not an m2v-edge outbox file")
        conn = connect(path)
        try:
            outbox = cls._from_connection(conn, path)
        except BaseException:
            conn.close()
            raise
        if fingerprint is not None:
            outbox.check_fingerprint(fingerprint, None)
        return outbox

    @classmethod
    def _from_connection(cls, conn: sqlite3.Connection, path: Path) -> Outbox:
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{path} is not an m2v-edge outbox ({exc})") from None
        if app_id != APPLICATION_ID:
            raise OutboxError(f"{path} is not an m2v-edge outbox (SQLite application id {app_id:#x})")
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"outbox {path} has layout {version}, this m2v-edge reads up to {SCHEMA_VERSION}: upgrade m2v-edge"
            )
        try:
            ensure_wal(conn, path)
            conn.execute("PRAGMA synchronous=FULL")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            fingerprint, dim = meta["fingerprint"], int(meta["dim"])
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise OutboxError(f"outbox {path} is damaged: {exc!r}") from None
        return cls(conn, path, fingerprint, dim)

    def check_fingerprint(self, fingerprint: str, dim: int | None) -> None:
        """Refuse to continue when this outbox holds vectors of another model."""
        if fingerprint != self.fingerprint or (dim is not None and dim != self.dim):
            raise OutboxError(
                f"outbox {self.path} holds vectors of model {self.fingerprint} (dim {self.dim}), not {fingerprint}: "
                "use the bundle it was made with, or another outbox file"
            )

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def put(self, rows: Sequence[tuple[str, str, dict[str, object]]], vectors: np.ndarray) -> int:
        """Write `(id, text, metadata)` rows with their vectors in one transaction; all become pending.

        An id already present is replaced (its vector, text and metadata) and made pending again.
        Returns the change number of the transaction.
        """
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(rows), self.dim):
            raise OutboxError(
                f"got vectors of shape {vectors.shape} for {len(rows)} rows; the outbox holds dim {self.dim}"
            )
        if not np.isfinite(vectors).all():
            raise OutboxError("refusing to store vectors holding NaN or infinity")
        blobs = np.ascontiguousarray(vectors, dtype="<f4")
        now = time.time()
        with self._write() as seq:
            self._conn.executemany(
                "INSERT OR REPLACE INTO docs (id, text, metadata, vector, fingerprint, created, state, attempts,"
                " last_error, seq) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, NULL, ?)",
                (
                    (doc_id, text, json.dumps(metadata, ensure_ascii=False), blobs[i].tobytes(), self.fingerprint,
                     now, seq)
                    for i, (doc_id, text, metadata) in enumerate(rows)
                ),
            )
        return seq

    def delete(self, ids: Iterable[str]) -> DeleteResult:
        """Record tombstones for `ids` in one transaction; the next sync deletes them from the collection."""
        marked = unknown = 0
        now = time.time()
        with self._write() as seq:
            for doc_id in dict.fromkeys(ids):
                cursor = self._conn.execute(
                    "UPDATE docs SET state='deleted-pending', seq=?, attempts=0, last_error=NULL WHERE id=?",
                    (seq, doc_id),
                )
                if cursor.rowcount:
                    marked += 1
                    continue
                unknown += 1
                self._conn.execute(
                    "INSERT INTO docs (id, text, metadata, vector, fingerprint, created, state, attempts, seq)"
                    " VALUES (?, '', '{}', NULL, ?, ?, 'deleted-pending', 0, ?)",
                    (doc_id, self.fingerprint, now, seq),
                )
        return DeleteResult(marked=marked, unknown=unknown)

    # ----------------------------------------------------------------- syncing

    @_reads
    def high_water(self) -> int:
        """The change number of the latest committed write."""
        return int(self._conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])

    @_reads
    def pending(
        self, *, limit: int, max_bytes: int, up_to: int, after: tuple[int, str] | None = None
    ) -> list[PendingRow]:
        """Pending rows with `seq <= up_to`, in (seq, id) order after `after`, at most `limit` rows / `max_bytes`."""
        query = _page("id, seq, text, metadata, vector, attempts", "pending", limit=limit, up_to=up_to, after=after)
        rows: list[PendingRow] = []
        total = 0
        for doc_id, seq, text, metadata, blob, attempts in self._conn.execute(*query):
            row = PendingRow(doc_id, seq, text, json.loads(metadata), self._decode(doc_id, blob), attempts)
            if rows and total + row.size > max_bytes:
                break
            rows.append(row)
            total += row.size
        return rows

    @_reads
    def tombstones(self, *, limit: int, up_to: int, after: tuple[int, str] | None = None) -> list[Tombstone]:
        """Tombstones with `seq <= up_to`, in (seq, id) order after `after`, at most `limit`."""
        query = _page("id, seq", "deleted-pending", limit=limit, up_to=up_to, after=after)
        return [Tombstone(doc_id, seq) for doc_id, seq in self._conn.execute(*query)]

    def mark_synced(self, rows: Iterable[PendingRow | Tombstone]) -> int:
        """After the server acknowledged an upsert: mark rows synced unless they changed meanwhile."""
        with self._transaction():
            cursor = self._conn.executemany(
                "UPDATE docs SET state='synced', attempts=0, last_error=NULL WHERE id=? AND seq=? AND state='pending'",
                ((row.id, row.seq) for row in rows),
            )
            return cursor.rowcount

    def mark_deleted(self, tombstones: Iterable[Tombstone]) -> int:
        """After the server acknowledged a delete: drop the tombstones unless the ids were re-ingested meanwhile."""
        with self._transaction():
            cursor = self._conn.executemany(
                "DELETE FROM docs WHERE id=? AND seq=? AND state='deleted-pending'",
                ((row.id, row.seq) for row in tombstones),
            )
            return cursor.rowcount

    def record_failure(self, rows: Iterable[PendingRow | Tombstone], error: str) -> None:
        """Count a failed push against rows (unless they changed meanwhile) and keep the error text."""
        with self._transaction():
            self._conn.executemany(
                "UPDATE docs SET attempts=attempts+1, last_error=? WHERE id=? AND seq=? AND state!='synced'",
                ((error, row.id, row.seq) for row in rows),
            )

    @_reads
    def count_waiting(self) -> int:
        """Rows that a sync still has to push (pending rows and tombstones)."""
        return int(self._conn.execute("SELECT COUNT(*) FROM docs WHERE state!='synced'").fetchone()[0])

    # ----------------------------------------------------------------- reading

    @_reads
    def status(self) -> OutboxStatus:
        """Counts by state, failing rows and the latest error."""
        counts = dict.fromkeys(STATES, 0)
        counts.update(self._conn.execute("SELECT state, COUNT(*) FROM docs GROUP BY state").fetchall())
        failing, oldest = self._conn.execute(
            "SELECT COUNT(last_error), MIN(created) FROM docs WHERE state!='synced'"
        ).fetchone()
        row = self._conn.execute(
            "SELECT last_error FROM docs WHERE last_error IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return OutboxStatus(
            path=str(self.path),
            fingerprint=self.fingerprint,
            dim=self.dim,
            pending=counts["pending"],
            synced=counts["synced"],
            deleted_pending=counts["deleted-pending"],
            failing=int(failing),
            last_error=row[0] if row else None,
            oldest_pending=oldest,
        )

    @_reads
    def states(self) -> dict[str, str]:
        """Every id with its state."""
        return dict(self._conn.execute("SELECT id, state FROM docs"))

    @_reads
    def vectors(self, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Stored vectors of live (not deleted) rows: all of them, or those of `ids`."""
        sql = "SELECT id, vector FROM docs WHERE state!='deleted-pending'"
        if ids is None:
            return {doc_id: self._decode(doc_id, blob) for doc_id, blob in self._conn.execute(sql)}
        result = {}
        for doc_id in ids:
            row = self._conn.execute(sql + " AND id=?", (doc_id,)).fetchone()
            if row is not None:
                result[doc_id] = self._decode(doc_id, row[1])
        return result

    # ----------------------------------------------------------------- internals

    def _decode(self, doc_id: str, blob: bytes | None) -> np.ndarray:
        if blob is None or len(blob) != 4 * self.dim:
            raise OutboxError(f"outbox {self.path} is damaged: row {doc_id!r} has no valid {self.dim}-dim vector")
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)

    def _transaction(self) -> Transaction:
        return Transaction(self._conn, self.path)

    def _write(self) -> Transaction:
        """A write transaction that takes the next change number (available as the `with` target)."""
        return Transaction(self._conn, self.path, bump_seq=True)


def _page(
    columns: str, state: str, *, limit: int, up_to: int, after: tuple[int, str] | None
) -> tuple[str, list[object]]:
    """One keyset page of rows in `state` with `seq <= up_to`, in (seq, id) order after `after`."""
    sql = f"SELECT {columns} FROM docs WHERE state=? AND seq<=?"
    params: list[object] = [state, up_to]
    if after is not None:
        sql += " AND (seq > ? OR (seq = ? AND id > ?))"
        params += [after[0], after[0], after[1]]
    sql += " ORDER BY seq, id LIMIT ?"
    params.append(limit)
    return sql, params
