"""What the outbox hands out (rows to send, tombstones, status) and how it packs texts and vectors on disk."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

COMPRESS_FROM = 64
"""Texts of at least this many UTF-8 bytes are stored zlib-compressed when that is smaller (English: about 0.6x)."""


@dataclass(frozen=True)
class PendingRow:
    """A row waiting to be upserted, as read by a sync."""

    id: str
    seq: int
    text: str
    metadata: dict[str, object]
    vector: np.ndarray | None
    """The exact float32 vector; None when it was dropped after an earlier sync (the sync embeds the text again)."""
    attempts: int
    digest: str
    """`row_digest` of the row: what the collection's `digest` field holds once this row is there."""
    size: int
    """Approximate bytes this row adds to an upsert request."""


@dataclass(frozen=True)
class Tombstone:
    """An id whose deletion must be propagated."""

    id: str
    seq: int


@dataclass(frozen=True)
class RejectedRow:
    """A row the server refused for good; it stays out of syncs until it is ingested again."""

    id: str
    error: str


@dataclass(frozen=True)
class DeleteResult:
    """What `Outbox.delete` did."""

    marked: int
    """Ids that had a row and now carry a tombstone."""
    unknown: int
    """Ids with no row: a tombstone was still recorded, since the collection may hold them from earlier."""


@dataclass(frozen=True)
class OutboxStatus:
    """Counts and facts about an outbox, for `m2v-edge status`."""

    path: str
    kiosk_id: str
    fingerprint: str
    dim: int
    pending: int
    synced: int
    deleted_pending: int
    rejected: int
    """Rows the server refused for good (see `Outbox.rejected`)."""
    failing: int
    """Rows (pending or tombstones) whose last push failed."""
    last_error: str | None
    oldest_pending: float | None
    """`created` time of the oldest row still waiting, None when nothing waits."""
    file_bytes: int
    """Size on disk: the database file and its write-ahead log."""
    free_bytes: int
    """Unused pages inside the file, which `m2v-edge vacuum` gives back."""
    targets: tuple[tuple[str, str, float], ...] = ()
    """(target, collection, Unix time of the last sync) for every collection this outbox synced to."""

    @property
    def total(self) -> int:
        """Every row, tombstones included."""
        return self.pending + self.synced + self.deleted_pending + self.rejected


def pack_text(text: str) -> str | bytes:
    """What the outbox stores for `text`: the text itself, or its zlib-compressed UTF-8 when that is smaller."""
    data = text.encode("utf-8")
    if len(data) >= COMPRESS_FROM:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            return packed
    return text


def unpack_text(stored: str | bytes) -> str:
    """The text `pack_text` stored."""
    return stored if isinstance(stored, str) else zlib.decompress(stored).decode("utf-8")


def search_copies(vectors: np.ndarray) -> np.ndarray:
    """Offline-search copies of [n, dim] vectors: L2-normalised float16 (cosine needs only the direction)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype("<f2")


def row_digest(fingerprint: str, doc_id: str, text: str, metadata_json: str) -> str:
    """A 128-bit digest of what a row sends (model, id, text, metadata), to find stale rows in a collection."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (fingerprint, doc_id, text, metadata_json):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    """One search result, from Milvus (`search`) or from an outbox (`search_outbox`)."""

    doc_id: str
    """The document's id, as ingested."""
    score: float
    """Cosine similarity."""
    text: str
    metadata: dict[str, Any]
    kiosk_id: str
    """The kiosk whose document it is."""

    @property
    def id(self) -> str:
        """Same as `doc_id`."""
        return self.doc_id
