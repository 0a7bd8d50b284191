"""Offline kiosks: a durable SQLite outbox of embedded documents, synced exactly once to Milvus.

Typical use (the `m2v-edge ingest / sync / status / search / delete` commands do exactly this)::

    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.sync import (MilvusCollection, Outbox, ingest_file, parse_target, read_token, search,
                               sync_outbox)

    embedder = EdgeEmbedder("bundle/")
    ingest_file("kiosk.outbox", embedder, "docs.jsonl")          # works offline
    with Outbox.open("kiosk.outbox") as outbox, \\
            MilvusCollection(parse_target("http://milvus:19530", token=read_token()), "docs") as collection:
        report = sync_outbox(outbox, collection)                   # when the network is there
    with MilvusCollection(parse_target("http://milvus:19530", token=read_token()), "docs") as collection:
        hits = search(collection, embedder, "a text editor", k=5)

Guarantees: an ingest batch is one transaction (all or nothing); a row becomes synced only after Milvus
acknowledged it, and only if it did not change meanwhile; upserts and deletes are idempotent, so a crash or a
lost acknowledgement leads to a resend, never to a loss or a duplicate. Outboxes and collections are bound to one
model fingerprint; mixing is refused. pymilvus (the `milvus` extra) is needed only by `MilvusCollection`.
"""

from m2v_edge.sync.engine import Syncer, SyncInterrupted, SyncLock, SyncReport, sync_outbox
from m2v_edge.sync.ingest import Embedder, IngestReport, ingest, ingest_file
from m2v_edge.sync.milvus import Hit, MilvusCollection
from m2v_edge.sync.outbox import DeleteResult, Outbox, OutboxStatus
from m2v_edge.sync.records import Record, RecordSet, read_records
from m2v_edge.sync.retry import RetryPolicy
from m2v_edge.sync.search import search
from m2v_edge.sync.target import TOKEN_ENV, Secret, Target, parse_target, read_token

__all__ = [
    "TOKEN_ENV",
    "DeleteResult",
    "Embedder",
    "Hit",
    "IngestReport",
    "MilvusCollection",
    "Outbox",
    "OutboxStatus",
    "Record",
    "RecordSet",
    "RetryPolicy",
    "Secret",
    "SyncInterrupted",
    "SyncLock",
    "SyncReport",
    "Syncer",
    "Target",
    "ingest",
    "ingest_file",
    "parse_target",
    "read_records",
    "read_token",
    "search",
    "sync_outbox",
]
