"""Moving an outbox to a new model: every stored text embedded again, switched over in one transaction.

The new vectors are written batch by batch into the `reembed` table, beside the old ones, each with the change
number of the row it was made from; the target model is recorded in `meta`. A reembed killed at any moment leaves
the outbox on the old model, as readers and syncs keep seeing it, and running it again (same model) continues where
it stopped. Rows written meanwhile (their change number moved) are embedded again. When every live row has its new
vector, one transaction swaps them in: vectors, search copies, the model fingerprint and dim, and every live row
made pending, so that the next sync sends all of them, to a collection of the new model (a collection refuses
vectors of another model). Tombstones stay as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.ingest import Embedder
from m2v_edge.sync.lock import SyncLock
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.rows import search_copies, unpack_text

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 512
_TODO = (
    "SELECT d.key, d.seq, d.text FROM docs d LEFT JOIN reembed r ON r.key = d.key"
    " WHERE d.search IS NOT NULL AND (r.key IS NULL OR r.seq != d.seq) ORDER BY d.key LIMIT ?"
)
"""Live rows without a new vector made from their current version."""


@dataclass(frozen=True)
class ReembedReport:
    """What a reembed did."""

    documents: int
    """Live rows now on the new model."""
    resumed: int
    """Of those, rows embedded by an earlier, interrupted run."""
    old_fingerprint: str
    new_fingerprint: str
    seconds: float


def reembed(
    outbox: Outbox,
    embedder: Embedder,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> ReembedReport:
    """Embed every live row of `outbox` again with `embedder` (a new model) and switch the outbox over to it.

    `progress` is called with (rows with a new vector, live rows) before the first batch and after each. Holds the
    outbox's `SyncLock` throughout: `OutboxError` when a sync holds it (a sync would send rows of both models).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if embedder.fingerprint == outbox.fingerprint:
        raise OutboxError(
            f"outbox {outbox.path} already holds vectors of model {embedder.fingerprint}: nothing to re-embed"
        )
    refusal = (f"cannot re-embed outbox {outbox.path} while a sync is running on it: stop the sync service first "
               "(m2v-edge sync --watch), then run the reembed again")
    with SyncLock(outbox.path, refusal=refusal):
        outbox.check_model_unchanged()
        return _reembed(outbox, embedder, batch_size, progress)


def _reembed(
    outbox: Outbox, embedder: Embedder, batch_size: int, progress: Callable[[int, int], None] | None
) -> ReembedReport:
    """`reembed`, under the sync lock."""
    old, new = outbox.fingerprint, embedder.fingerprint
    start = time.perf_counter()
    db = outbox.db
    with outbox.transaction():
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('reembed_fingerprint', 'reembed_dim')"))
        if meta.get("reembed_fingerprint") != new or meta.get("reembed_dim") != str(embedder.dim):
            db.execute("DELETE FROM reembed")
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           [("reembed_fingerprint", new), ("reembed_dim", str(embedder.dim))])
    total = int(db.execute("SELECT COUNT(*) FROM docs WHERE search IS NOT NULL").fetchone()[0])
    resumed = int(db.execute(
        "SELECT COUNT(*) FROM reembed r JOIN docs d ON d.key = r.key WHERE r.seq = d.seq AND d.search IS NOT NULL"
    ).fetchone()[0])
    done = resumed
    if progress is not None:
        progress(done, total)
    while rows := db.execute(_TODO, (batch_size,)).fetchall():
        with outbox.transaction():
            _store(outbox, embedder, rows)
        done = min(total, done + len(rows))
        if progress is not None:
            progress(done, total)
    with outbox.write() as seq:
        while rows := db.execute(_TODO, (batch_size,)).fetchall():  # written since the loop above looked
            _store(outbox, embedder, rows)
        count = db.execute(
            "UPDATE docs SET search = (SELECT r.search FROM reembed r WHERE r.key = docs.key), state = 'pending',"
            " attempts = 0, last_error = NULL, seq = ? WHERE search IS NOT NULL",
            (seq,),
        ).rowcount
        db.execute("DELETE FROM exact")
        db.execute("INSERT INTO exact (key, vector) SELECT r.key, r.vector FROM reembed r JOIN docs d ON d.key = r.key"
                   " WHERE d.search IS NOT NULL")
        db.execute("DELETE FROM reembed")
        db.execute("DELETE FROM meta WHERE key IN ('reembed_fingerprint', 'reembed_dim')")
        db.executemany("UPDATE meta SET value = ? WHERE key = ?", [(new, "fingerprint"), (str(embedder.dim), "dim")])
    outbox.fingerprint, outbox.dim = new, embedder.dim
    logger.info("outbox %s moved from model %s to %s: %d documents", outbox.path, old, new, count)
    return ReembedReport(count, resumed, old, new, time.perf_counter() - start)


def _store(outbox: Outbox, embedder: Embedder, rows: list[tuple[int, int, str | bytes]]) -> None:
    """Embed `rows` (key, seq, stored text) and keep their new vectors (inside the caller's transaction)."""
    vectors = np.asarray(embedder.encode([unpack_text(stored) for _, _, stored in rows]), dtype="<f4")
    if vectors.shape != (len(rows), embedder.dim) or not np.isfinite(vectors).all():
        raise OutboxError(f"the new model returned unusable vectors of shape {vectors.shape} for {len(rows)} texts")
    search = search_copies(vectors)
    outbox.db.executemany(
        "INSERT OR REPLACE INTO reembed (key, seq, vector, search) VALUES (?, ?, ?, ?)",
        ((key, seq, vectors[i].tobytes(), search[i].tobytes()) for i, (key, seq, _) in enumerate(rows)),
    )
