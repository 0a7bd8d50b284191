"""The exceptions m2v-edge raises. Every error a user can cause is an `M2VEdgeError`.

Library code raises these; only `m2v_edge.cli` turns them into exit codes and one-line messages.
"""

from __future__ import annotations


class M2VEdgeError(Exception):
    """Base class of every m2v-edge error."""


class BundleError(M2VEdgeError):
    """A bundle folder is missing, incomplete, tampered with or of an unsupported format."""


class SourceModelError(M2VEdgeError):
    """A Model2Vec source (local folder or Hub id) cannot be read or is inconsistent."""


class ExportError(M2VEdgeError):
    """An export was asked for with arguments that cannot be honoured."""


class MissingExtraError(M2VEdgeError):
    """An optional dependency group (`pip install m2v-edge[extra]`) is needed but not installed."""

    def __init__(self, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'm2v-edge[{extra}]'")
        self.extra = extra


class ProfileError(M2VEdgeError):
    """A device profile is unknown, unreadable or holds invalid values."""


class OutboxError(M2VEdgeError):
    """An outbox database is unreadable, foreign, or written by another model."""


class MilvusSyncError(M2VEdgeError):
    """Milvus refused or could not take part in a sync."""


class InputRecordsError(M2VEdgeError):
    """A records file given to `ingest` is malformed (bad JSON, missing or mistyped fields); nothing was written."""


class MilvusUnavailableError(MilvusSyncError):
    """Milvus could not be reached or kept failing until the retry budget ran out; rows stay pending."""


class ServeError(M2VEdgeError):
    """`m2v-edge serve` cannot start as asked (an exposed address without a token, an unreadable token file)."""


class ZeroVectorQueryError(M2VEdgeError):
    """A search query embeds to the zero vector (the model knows none of its tokens): no hit would mean anything."""


class MilvusRowError(MilvusSyncError):
    """Milvus refused the rows of a write for what they hold (not for the connection or the collection).

    `certain` is True when Milvus or pymilvus said so explicitly (an input error); otherwise the sync finds out
    which rows it refuses by sending smaller parts of the batch.
    """

    def __init__(self, message: str, *, certain: bool = False) -> None:
        super().__init__(message)
        self.certain = certain
