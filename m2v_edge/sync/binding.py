"""Which collection an outbox's sync states refer to, and the repair when the collection is not that one any more.

A row's state (`synced`) means "the collection has it" only for the collection the outbox last synced to, in the
state it left it. The outbox remembers, per target URI and collection name, the collection's identity and the sync
token it last wrote there (`m2v_edge.sync.milvus_schema`). A sync compares the collection with the outbox before
sending when it finds another identity (a new collection, one dropped and created again), another token (restored
from a backup, or written by another outbox claiming the same kiosk id), or that the last sync to it did not finish
(a crashing server may lose writes it acknowledged). It reads this kiosk's ids and digests from the collection and
then, in one outbox transaction, marks every live row the collection lacks or holds in another version as pending,
every row it holds as it is as synced, and records a tombstone for every id it holds that the outbox does not.
`m2v-edge sync --reconcile` runs the same repair on demand.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.rows import row_digest, unpack_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairReport:
    """What a comparison of the collection with the outbox found (and fixed in the outbox's states)."""

    reason: str
    """Why the collection was compared."""
    matching: int = 0
    """Live rows the collection holds as the outbox has them (now synced)."""
    missing: int = 0
    """Live rows the collection lacks (now pending)."""
    stale: int = 0
    """Live rows the collection holds in another version (now pending)."""
    extra: int = 0
    """Ids the collection holds but the outbox does not (now tombstones)."""
    resent: int = 0
    """Of the missing and stale rows, those the outbox had as synced: what the collection lost or changed."""

    @property
    def found_anything(self) -> bool:
        """Whether the collection held anything of this kiosk, or lost anything (not a first sync to a new one)."""
        return bool(self.matching or self.stale or self.extra or self.resent)


def remembered(outbox: Outbox, uri: str, collection: str) -> tuple[str, str] | None:
    """(identity, token) of the collection `uri`/`collection` as this outbox last left it, or None."""
    row = outbox.db.execute("SELECT identity, token FROM targets WHERE uri=? AND collection=?", (uri, collection))
    found = row.fetchone()
    return (found[0], found[1]) if found else None


def remember(outbox: Outbox, uri: str, collection: str, identity: str, token: str) -> None:
    """Record that `uri`/`collection` (identity `identity`) now carries this outbox's sync token `token`."""
    with outbox.transaction():
        outbox.db.execute(
            "INSERT OR REPLACE INTO targets (uri, collection, identity, token, synced) VALUES (?, ?, ?, ?, ?)",
            (uri, collection, identity, token, time.time()),
        )


def unsettle(outbox: Outbox, uri: str, collection: str) -> None:
    """Record, before a sync writes, that `uri`/`collection` may no longer be as last left: if the sync does not end
    (killed, given up), the next one compares the collection with the outbox (Milvus may lose what it acknowledged
    when it crashes)."""
    with outbox.transaction():
        outbox.db.execute("UPDATE targets SET token='' WHERE uri=? AND collection=?", (uri, collection))


def repair_reason(known: tuple[str, str] | None, identity: str, token: str | None) -> str | None:
    """Why the collection must be compared with the outbox before a sync, or None when it is as last left."""
    if known is None:
        return "this outbox has not synced to this collection before"
    if known[0] != identity:
        return "the collection is not the one this outbox synced to (dropped and created again?)"
    if known[1] == "":
        return "the last sync to this collection did not finish"
    if known[1] != token:
        return "the collection does not hold what this outbox last synced (restored from a backup?)"
    return None


def repair(outbox: Outbox, remote: dict[str, str], reason: str) -> RepairReport:
    """Set the outbox's states from what the collection holds (`remote`: document id -> digest), in one transaction."""
    matching = missing = stale = extra = resent = 0
    now = time.time()
    with outbox.write() as seq:
        rows = outbox.db.execute(
            "SELECT key, id, text, metadata, state FROM docs WHERE state IN ('pending', 'synced')"
        ).fetchall()
        local: set[str] = set()
        for key, doc_id, stored, metadata, state in rows:
            local.add(doc_id)
            digest = remote.get(doc_id)
            if digest is not None and digest == row_digest(outbox.fingerprint, doc_id, unpack_text(stored), metadata):
                matching += 1
                if state == "pending":
                    outbox.db.execute("UPDATE docs SET state='synced', attempts=0, last_error=NULL WHERE key=?", (key,))
                continue
            if digest is None:
                missing += 1
            else:
                stale += 1
            if state == "synced":
                resent += 1
                outbox.db.execute("UPDATE docs SET state='pending' WHERE key=?", (key,))
        known = {doc_id for (doc_id,) in
                 outbox.db.execute("SELECT id FROM docs WHERE state IN ('deleted-pending', 'rejected')")}
        for doc_id in remote.keys() - local - known:
            extra += 1
            outbox.db.execute(
                "INSERT INTO docs (id, text, metadata, search, created, state, attempts, seq)"
                " VALUES (?, '', '{}', NULL, ?, 'deleted-pending', 0, ?)",
                (doc_id, now, seq),
            )
    report = RepairReport(reason, matching, missing, stale, extra, resent)
    logger.info("compared collection and outbox (%s): %d as synced, %d missing, %d stale, %d extra", reason,
                matching, missing, stale, extra)
    return report
