"""The sync side of an outbox: the rows waiting to be pushed, and their states as Milvus acknowledges or refuses
them (see `m2v_edge.sync.outbox` for the columns and `m2v_edge.sync.engine` for how a sync uses this)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.rows import PendingRow, Tombstone, row_digest, unpack_text
from m2v_edge.sync.sqlite import Transaction, reads

WAITING = "state IN ('pending', 'deleted-pending')"
"""SQL: rows a sync still has to push."""


class SyncQueue:
    """What `Outbox` offers a sync; its transactions. (A base of `Outbox`: it uses the connection and model.)"""

    db: sqlite3.Connection
    path: Path
    fingerprint: str
    dim: int

    @reads
    def high_water(self) -> int:
        """The change number of the latest committed write."""
        return int(self.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])

    @reads
    def pending(
        self, *, limit: int, max_bytes: int, up_to: int, after: tuple[int, str] | None = None
    ) -> list[PendingRow]:
        """Pending rows with `seq <= up_to`, in (seq, id) order after `after`, at most `limit` rows / `max_bytes`."""
        query = _page("d.id, d.seq, d.text, d.metadata, e.vector, d.attempts", "pending", limit=limit, up_to=up_to,
                      after=after, join="LEFT JOIN exact e ON e.key = d.key")
        rows: list[PendingRow] = []
        total = 0
        for doc_id, seq, stored, metadata, blob, attempts in self.db.execute(*query):
            text = unpack_text(stored)
            size = len(doc_id) + len(text.encode("utf-8")) + len(metadata) + 4 * self.dim + 64
            if rows and total + size > max_bytes:
                break
            vector = None if blob is None else self._decode(doc_id, blob)
            digest = row_digest(self.fingerprint, doc_id, text, metadata)
            rows.append(PendingRow(doc_id, seq, text, json.loads(metadata), vector, attempts, digest, size))
            total += size
        return rows

    @reads
    def next_keys(self, limit: int) -> list[Tombstone]:
        """(id, seq) of the rows a sync pushes first, tombstones first: what a failure to connect is recorded on."""
        up_to = self.high_water()
        keys = self.tombstones(limit=limit, up_to=up_to)
        query = _page("d.id, d.seq", "pending", limit=limit, up_to=up_to, after=None)
        return keys or [Tombstone(doc_id, seq) for doc_id, seq in self.db.execute(*query)]

    @reads
    def tombstones(self, *, limit: int, up_to: int, after: tuple[int, str] | None = None) -> list[Tombstone]:
        """Tombstones with `seq <= up_to`, in (seq, id) order after `after`, at most `limit`."""
        query = _page("d.id, d.seq", "deleted-pending", limit=limit, up_to=up_to, after=after)
        return [Tombstone(doc_id, seq) for doc_id, seq in self.db.execute(*query)]

    def mark_synced(self, rows: Iterable[PendingRow | Tombstone]) -> int:
        """After the server acknowledged an upsert: mark rows synced unless they changed meanwhile.

        Their exact vectors stay until the sync ends (`drop_sent_vectors`): a server that crashes can lose writes it
        acknowledged, and the sync then sends them again."""
        with self.transaction():
            return self.db.executemany(
                "UPDATE docs SET state='synced', attempts=0, last_error=NULL WHERE id=? AND seq=? AND state='pending'",
                ((row.id, row.seq) for row in rows),
            ).rowcount

    def drop_sent_vectors(self) -> int:
        """Drop the exact vectors of synced rows (at the end of a sync); a later resend embeds their texts again."""
        with self.transaction():
            return self.db.execute(
                "DELETE FROM exact WHERE key IN (SELECT key FROM docs WHERE state='synced')"
            ).rowcount

    def mark_deleted(self, tombstones: Sequence[Tombstone]) -> int:
        """After the server acknowledged a delete: drop the tombstones unless the ids were re-ingested meanwhile."""
        with self.transaction():
            cursor = self.db.executemany(
                "DELETE FROM docs WHERE id=? AND seq=? AND state='deleted-pending'",
                ((row.id, row.seq) for row in tombstones),
            )
            if cursor.rowcount and tombstones:  # tells the offline-search index that rows went away
                self.db.execute(
                    "UPDATE meta SET value=CAST(MAX(CAST(value AS INTEGER), ?) AS TEXT) WHERE key='purged'",
                    (max(row.seq for row in tombstones),),
                )
            return cursor.rowcount

    def mark_rejected(self, rows: Iterable[PendingRow | Tombstone], error: str) -> int:
        """Quarantine rows the server refused for good (unless they changed meanwhile): later syncs skip them.

        They keep their exact vectors, for `retry_rejected`."""
        with self.transaction():
            return self.db.executemany(
                "UPDATE docs SET state='rejected', attempts=attempts+1, last_error=? WHERE id=? AND seq=?"
                f" AND {WAITING}",
                ((error, row.id, row.seq) for row in rows),
            ).rowcount

    def record_failure(self, rows: Iterable[PendingRow | Tombstone], error: str) -> None:
        """Count a failed push against rows (unless they changed meanwhile) and keep the error text."""
        with self.transaction():
            self.db.executemany(
                f"UPDATE docs SET attempts=attempts+1, last_error=? WHERE id=? AND seq=? AND {WAITING}",
                ((error, row.id, row.seq) for row in rows),
            )

    def retry_rejected(self) -> int:
        """Make every rejected row wait again (after fixing what the server refused); returns how many."""
        with self.write() as seq:
            return self.db.execute(
                "UPDATE docs SET state=CASE WHEN search IS NULL THEN 'deleted-pending' ELSE 'pending' END, attempts=0,"
                " seq=? WHERE state='rejected'",
                (seq,),
            ).rowcount

    @reads
    def count_unembedded(self) -> int:
        """Pending rows without an exact vector (dropped after an earlier sync): a sync embeds them again."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM docs d LEFT JOIN exact e ON e.key = d.key WHERE d.state='pending' AND e.key IS NULL"
        ).fetchone()[0])

    @reads
    def count_waiting(self) -> int:
        """Rows that a sync still has to push (pending rows and tombstones)."""
        return int(self.db.execute(f"SELECT COUNT(*) FROM docs WHERE {WAITING}").fetchone()[0])

    def _decode(self, doc_id: str, blob: bytes | None) -> np.ndarray:
        if blob is None or len(blob) != 4 * self.dim:
            raise OutboxError(f"outbox {self.path} is damaged: row {doc_id!r} has no valid {self.dim}-dim vector")
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)

    def transaction(self) -> Transaction:
        """A write transaction that takes no change number (for state changes that no reader needs to see)."""
        return Transaction(self.db, self.path)

    def write(self) -> Transaction:
        """A write transaction that takes the next change number (available as the `with` target)."""
        return Transaction(self.db, self.path, bump_seq=True)


def _page(
    columns: str, state: str, *, limit: int, up_to: int, after: tuple[int, str] | None, join: str = ""
) -> tuple[str, list[object]]:
    """One keyset page of rows in `state` with `seq <= up_to`, in (seq, id) order after `after`."""
    sql = f"SELECT {columns} FROM docs d {join} WHERE d.state=? AND d.seq<=?"
    params: list[object] = [state, up_to]
    if after is not None:
        sql += " AND (d.seq > ? OR (d.seq = ? AND d.id > ?))"
        params += [after[0], after[0], after[1]]
    sql += " ORDER BY d.seq, d.id LIMIT ?"
    params.append(limit)
    return sql, params
