"""The outbox: a SQLite file that holds one kiosk's documents, and their vectors until Milvus has acknowledged them.

One row per document id in `docs` (layout version 2, see `m2v_edge.sync.sqlite`)::

    key          INTEGER PRIMARY KEY  row number (stable across VACUUM)
    id           TEXT UNIQUE          the caller's document id
    text         TEXT or BLOB         the document text, kept in full (zlib-compressed when that is smaller)
    metadata     TEXT                 a JSON object
    search       BLOB                 float16 copy of the L2-normalised vector, for offline search; NULL for a tombstone
    created      REAL                 Unix time the row was (re)written
    state        TEXT                 'pending' | 'synced' | 'deleted-pending' | 'rejected'
    attempts     INTEGER              failed pushes since the row last changed
    last_error   TEXT                 the last push error, NULL when none
    seq          INTEGER              change number: every write transaction takes the next one

`exact` holds the float32 vector of each row waiting to be sent (the exact vector Milvus gets). It is dropped at the
end of the sync that Milvus acknowledged the row in: a row sent again later (a new collection, a repair) is embedded
again from its text, which needs the bundle. This keeps a synced outbox under 2x the size of its JSONL input.
`meta` holds the model fingerprint and dim, the kiosk id and the change counter; `targets` what was synced where
(`m2v_edge.sync.binding`).

Exactly-once rests on `seq`. A sync reads `(id, seq)` pairs, pushes them, and after the server's acknowledgement
marks *only the rows whose `seq` is unchanged*: a row re-ingested or deleted while its push was in flight keeps its
new state and is pushed again. Upserts and deletes are idempotent by primary key, so a crash at any point costs a
resend, never a loss or a duplicate.

The file is created with mode 0600 and opened in WAL mode with `synchronous=FULL`, so a committed transaction
survives power loss. The database carries an application id and a layout version (version 1 files are upgraded
when opened); a file that is not an m2v-edge outbox, or one written with another model fingerprint, is refused
before anything is written to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.kiosk import check_kiosk_id, default_kiosk_id
from m2v_edge.sync.outbox_queue import WAITING, SyncQueue
from m2v_edge.sync.records import check_id, check_record
from m2v_edge.sync.rows import DeleteResult, OutboxStatus, RejectedRow, pack_text, search_copies, unpack_text
from m2v_edge.sync.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    connect,
    create_file,
    ensure_wal,
    initialise,
    is_empty_database,
    reads,
)
from m2v_edge.sync.upgrade import upgrade_from_v1

STATES = ("pending", "synced", "deleted-pending", "rejected")


class Outbox(SyncQueue):
    """An open outbox database. Use `Outbox.create` to make or reopen one for writing, `Outbox.open` otherwise.

    One `Outbox` belongs to one thread. Several processes may use the same file at once (SQLite locking); only
    one of them syncs at a time, which `m2v_edge.sync.engine` enforces with a lock.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, meta: dict[str, str]) -> None:
        self.db = conn
        """The SQLite connection, for the modules of `m2v_edge.sync` only."""
        self.path = path
        self.fingerprint = meta["fingerprint"]
        self.dim = int(meta["dim"])
        self.kiosk_id = meta["kiosk_id"]

    # ----------------------------------------------------------------- opening

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, fingerprint: str, dim: int, kiosk_id: str | None = None
    ) -> Outbox:
        """Open the outbox at `path` for writing vectors of `fingerprint`, creating it (mode 0600) when missing.

        A new outbox takes `kiosk_id` (default: `m2v_edge.sync.kiosk.default_kiosk_id`). An existing one must
        have been made with the same fingerprint and dim, and with `kiosk_id` when it is given.
        """
        path = Path(path)
        if not fingerprint or dim <= 0:
            raise OutboxError(f"cannot create outbox {path}: invalid fingerprint {fingerprint!r} or dim {dim}")
        if kiosk_id is not None:
            check_kiosk_id(kiosk_id)
        created = create_file(path)
        conn = connect(path)
        try:
            if created or is_empty_database(conn):
                meta = {"fingerprint": fingerprint, "dim": str(dim), "seq": "0", "purged": "0",
                        "created": str(time.time()), "kiosk_id": kiosk_id or default_kiosk_id()}
                initialise(conn, path, meta)
            outbox = cls._from_connection(conn, path, kiosk_id)
        except BaseException:
            conn.close()
            raise
        try:
            outbox.check_fingerprint(fingerprint, dim)
            if kiosk_id is not None and kiosk_id != outbox.kiosk_id:
                raise OutboxError(
                    f"outbox {path} belongs to kiosk {outbox.kiosk_id!r}, not {kiosk_id!r}: a kiosk id is set once, "
                    "when the outbox is created; leave out --kiosk-id or use another outbox file"
                )
        except BaseException:
            outbox.close()
            raise
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
            outbox = cls._from_connection(conn, path, None)
        except BaseException:
            conn.close()
            raise
        if fingerprint is not None:
            try:
                outbox.check_fingerprint(fingerprint, None)
            except BaseException:
                outbox.close()
                raise
        return outbox

    @classmethod
    def _from_connection(cls, conn: sqlite3.Connection, path: Path, kiosk_id: str | None) -> Outbox:
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
            if version < SCHEMA_VERSION:
                upgrade_from_v1(conn, path, kiosk_id or default_kiosk_id())
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            return cls(conn, path, meta)
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise OutboxError(f"outbox {path} is damaged: {exc!r}") from None

    def check_fingerprint(self, fingerprint: str, dim: int | None) -> None:
        """Refuse to continue when this outbox holds vectors of another model."""
        if fingerprint != self.fingerprint or (dim is not None and dim != self.dim):
            raise OutboxError(
                f"outbox {self.path} holds vectors of model {self.fingerprint} (dim {self.dim}), not {fingerprint}: "
                "use the bundle it was made with, or another outbox file ('m2v-edge reembed' moves it to a new model)"
            )

    @reads
    def check_model_unchanged(self) -> None:
        """Refuse to go on when another process moved the outbox to another model ('m2v-edge reembed') since this
        handle was opened. Call it inside the transaction or read snapshot whose rows it vouches for."""
        stored = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('fingerprint', 'dim')"))
        if stored.get("fingerprint") != self.fingerprint or stored.get("dim") != str(self.dim):
            raise OutboxError(
                f"outbox {self.path} was moved to model {stored.get('fingerprint')} (dim {stored.get('dim')}) by "
                f"'m2v-edge reembed' after it was opened here with model {self.fingerprint} (dim {self.dim}): "
                "restart m2v-edge serve, ingest or sync with the new model's bundle"
            )

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def put(self, rows: Sequence[tuple[str, str, dict[str, object]]], vectors: np.ndarray) -> int:
        """Write `(id, text, metadata)` rows with their vectors in one transaction; all become pending.

        Rows get the checks the JSONL reader applies (`m2v_edge.sync.records.check_record`). An id already present
        is replaced (its vector, text and metadata) and made pending again. Returns the transaction's change number.
        `OutboxError` when the outbox was moved to another model since it was opened (`check_model_unchanged`).
        """
        records = [check_record(*row, f"row {number}") for number, row in enumerate(rows, start=1)]
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape != (len(records), self.dim):
            raise OutboxError(
                f"got vectors of shape {vectors.shape} for {len(records)} rows; the outbox holds dim {self.dim}"
            )
        if not np.isfinite(vectors).all():
            raise OutboxError("refusing to store vectors holding NaN or infinity")
        exact = np.ascontiguousarray(vectors, dtype="<f4")
        search = search_copies(exact)
        now = time.time()
        with self.write() as seq:
            self.check_model_unchanged()  # the vectors were made with the model this handle was opened for
            self.db.executemany(
                "INSERT INTO docs (id, text, metadata, search, created, state, attempts, last_error, seq)"
                " VALUES (?, ?, ?, ?, ?, 'pending', 0, NULL, ?) ON CONFLICT (id) DO UPDATE SET text=excluded.text,"
                " metadata=excluded.metadata, search=excluded.search, created=excluded.created, state='pending',"
                " attempts=0, last_error=NULL, seq=excluded.seq",
                ((record.id, pack_text(record.text), json.dumps(record.metadata, ensure_ascii=False),
                  search[i].tobytes(), now, seq) for i, record in enumerate(records)),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO exact (key, vector) SELECT key, ? FROM docs WHERE id=?",
                ((exact[i].tobytes(), record.id) for i, record in enumerate(records)),
            )
        return seq

    def delete(self, ids: Iterable[str]) -> DeleteResult:
        """Record tombstones for `ids` in one transaction; the next sync deletes them from the collection."""
        wanted = [check_id(doc_id, f"id {number}") for number, doc_id in enumerate(dict.fromkeys(ids), start=1)]
        marked = unknown = 0
        now = time.time()
        with self.write() as seq:
            for doc_id in wanted:
                self.db.execute("DELETE FROM exact WHERE key=(SELECT key FROM docs WHERE id=?)", (doc_id,))
                cursor = self.db.execute(
                    "UPDATE docs SET state='deleted-pending', seq=?, attempts=0, last_error=NULL, text='',"
                    " metadata='{}', search=NULL WHERE id=?",
                    (seq, doc_id),
                )
                if cursor.rowcount:
                    marked += 1
                    continue
                unknown += 1
                self.db.execute(
                    "INSERT INTO docs (id, text, metadata, search, created, state, attempts, seq)"
                    " VALUES (?, '', '{}', NULL, ?, 'deleted-pending', 0, ?)",
                    (doc_id, now, seq),
                )
        return DeleteResult(marked=marked, unknown=unknown)

    # ----------------------------------------------------------------- reading

    @reads
    def status(self) -> OutboxStatus:
        """Counts by state, failing rows, the latest error, the file's size and the targets synced to."""
        counts = dict.fromkeys(STATES, 0)
        counts.update(self.db.execute("SELECT state, COUNT(*) FROM docs GROUP BY state").fetchall())
        failing, oldest = self.db.execute(
            f"SELECT COUNT(last_error), MIN(created) FROM docs WHERE {WAITING}"
        ).fetchone()
        row = self.db.execute(
            f"SELECT last_error FROM docs WHERE last_error IS NOT NULL AND {WAITING} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        targets = tuple(self.db.execute("SELECT uri, collection, synced FROM targets ORDER BY synced DESC"))
        return OutboxStatus(
            path=str(self.path),
            kiosk_id=self.kiosk_id,
            fingerprint=self.fingerprint,
            dim=self.dim,
            pending=counts["pending"],
            synced=counts["synced"],
            deleted_pending=counts["deleted-pending"],
            rejected=counts["rejected"],
            failing=int(failing),
            last_error=row[0] if row else None,
            oldest_pending=oldest,
            file_bytes=self.file_bytes(),
            free_bytes=free,
            targets=targets,
        )

    def file_bytes(self) -> int:
        """Bytes on disk of the database file and its write-ahead log."""
        wal = Path(f"{self.path}-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    @reads
    def count_written_since(self, seq: int) -> int:
        """Rows whose latest write has a change number above `seq` (what a write since `high_water()` was `seq` did)."""
        return int(self.db.execute("SELECT COUNT(*) FROM docs WHERE seq > ?", (seq,)).fetchone()[0])

    @reads
    def rejected(self, limit: int | None = None) -> list[RejectedRow]:
        """Rows the server refused for good, latest first, with the server's error."""
        sql = "SELECT id, last_error FROM docs WHERE state='rejected' ORDER BY seq DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [RejectedRow(doc_id, error or "") for doc_id, error in self.db.execute(sql)]

    @reads
    def states(self) -> dict[str, str]:
        """Every id with its state."""
        return dict(self.db.execute("SELECT id, state FROM docs"))

    @reads
    def vectors(self, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Offline-search copies (L2-normalised, float16 precision, as float32) of live rows: all, or those of `ids`.

        (The exact vectors live only until Milvus acknowledged them; `pending` hands them out.)
        """
        sql = "SELECT id, search FROM docs WHERE search IS NOT NULL"
        if ids is None:
            return {doc_id: self._decode_search(blob) for doc_id, blob in self.db.execute(sql)}
        result = {}
        for doc_id in ids:
            row = self.db.execute(sql + " AND id=?", (doc_id,)).fetchone()
            if row is not None:
                result[doc_id] = self._decode_search(row[1])
        return result

    @reads
    def documents(self, ids: Iterable[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Text and metadata of the live rows among `ids`."""
        result = {}
        for doc_id in ids:
            row = self.db.execute("SELECT text, metadata FROM docs WHERE id=? AND search IS NOT NULL",
                                  (doc_id,)).fetchone()
            if row is not None:
                result[doc_id] = (unpack_text(row[0]), json.loads(row[1]))
        return result

    # ----------------------------------------------------------------- space

    def vacuum(self) -> tuple[int, int]:
        """Rewrite the file without unused space (SQLite VACUUM) and empty the write-ahead log.

        Returns the size on disk before and after. Waits for other writers; readers may keep reading.
        """
        before = self.file_bytes()
        try:
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot vacuum outbox {self.path}: {exc}") from None
        return before, self.file_bytes()

    def reclaim(self, *, at_least: float = 0.25) -> None:
        """Give free pages back to the file system when they are more than `at_least` of the file (cheap: SQLite's
        incremental vacuum moves pages only from the end of the file)."""
        try:
            pages, free = (self.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "freelist_count"))
            if pages and free / pages > at_least:
                # executescript steps the pragma to the end; execute() would free one page per call
                self.db.executescript("PRAGMA incremental_vacuum;")
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot reclaim space in outbox {self.path}: {exc}") from None

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _decode_search(blob: bytes) -> np.ndarray:
        return np.frombuffer(blob, dtype="<f2").astype(np.float32)
