"""Upgrading an outbox of layout 1 (before kiosk ids) to layout 2, in place and in one transaction.

Layout 1 kept a float32 vector and the fingerprint on every row, in one `docs` table. Its collections (Milvus schema
1) have no kiosk ids and are refused by this version, so nothing of it counts as synced any more: every live row
becomes pending, with its vector kept as the exact vector to send, and tombstones stay. Text is compressed and the
float16 search copy made as `Outbox.put` does. The page size and incremental auto-vacuum of new outboxes do not
apply to an upgraded file until it is vacuumed (`m2v-edge vacuum`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.rows import pack_text, search_copies
from m2v_edge.sync.sqlite import create_tables

logger = logging.getLogger(__name__)


def upgrade_from_v1(conn: sqlite3.Connection, path: Path, kiosk_id: str) -> None:
    """Rewrite a layout-1 outbox as layout 2 for kiosk `kiosk_id` (nothing changes if it fails half-way)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("PRAGMA user_version").fetchone()[0] != 1:  # another process upgraded it meanwhile
            conn.rollback()
            return
        dim = int(conn.execute("SELECT value FROM meta WHERE key='dim'").fetchone()[0])
        conn.execute("ALTER TABLE docs RENAME TO docs_v1")
        conn.execute("DROP INDEX IF EXISTS docs_state_seq")
        create_tables(conn)
        rows = conn.execute("SELECT id, text, metadata, vector, created, state, attempts, last_error, seq FROM docs_v1")
        live = 0
        for doc_id, text, metadata, blob, created, state, attempts, last_error, seq in rows.fetchall():
            if state == "deleted-pending" or blob is None:
                conn.execute(
                    "INSERT INTO docs (id, text, metadata, search, created, state, attempts, last_error, seq)"
                    " VALUES (?, '', '{}', NULL, ?, 'deleted-pending', ?, ?, ?)",
                    (doc_id, created, attempts, last_error, seq),
                )
                continue
            vector = np.frombuffer(blob, dtype="<f4").reshape(1, dim)
            key = conn.execute(
                "INSERT INTO docs (id, text, metadata, search, created, state, attempts, last_error, seq)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (doc_id, pack_text(text), metadata, search_copies(vector)[0].tobytes(), created, attempts, last_error,
                 seq),
            ).lastrowid
            conn.execute("INSERT INTO exact (key, vector) VALUES (?, ?)", (key, blob))
            live += 1
        conn.execute("DROP TABLE docs_v1")
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("kiosk_id", kiosk_id), ("purged", "0"), ("upgraded", str(time.time()))],
        )
        conn.commit()
    except (sqlite3.Error, ValueError, TypeError) as exc:
        if conn.in_transaction:
            conn.rollback()
        raise OutboxError(f"cannot upgrade outbox {path} to layout 2: {exc}") from None
    logger.warning(
        "upgraded outbox %s to layout 2 for kiosk %s: its %d documents will be sent again, to a collection of "
        "schema 2", path, kiosk_id, live,
    )
