"""Offline kiosks: a durable SQLite outbox of embedded documents, synced exactly once to Milvus, searchable offline.

Typical use (the `m2v-edge ingest / sync / status / search / delete / reembed / vacuum / alias` commands do exactly
this)::

    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.sync import (MilvusCollection, Outbox, ingest, ingest_file, parse_target, read_token, search,
                               search_outbox, sync_outbox)

    embedder = EdgeEmbedder("bundle/")
    ingest_file("kiosk.outbox", embedder, "docs.jsonl", kiosk_id="lobby-1")   # works offline
    with Outbox.open("kiosk.outbox") as outbox:
        ingest(outbox, embedder, [{"id": "faq-7", "text": "Opening hours: ..."}])  # records from memory
        hits = search_outbox(outbox, embedder, "when do you open", k=5)           # offline, no Milvus
        with MilvusCollection(parse_target("http://milvus:19530", token=read_token()), "docs") as collection:
            report = sync_outbox(outbox, collection, embedder=embedder)           # when the network is there
    with MilvusCollection(parse_target("http://milvus:19530", token=read_token()), "docs") as collection:
        hits = search(collection, embedder, "a text editor", k=5, kiosk="lobby-1")

Guarantees: an ingest batch is one transaction (all or nothing); a row becomes synced only after Milvus
acknowledged it, and only if it did not change meanwhile; writes and deletes go by primary key (kiosk id and
document id), so a crash or a lost acknowledgement leads to a resend, never to a loss, a duplicate or another
kiosk's row touched. A collection that is new, recreated or restored is compared with the outbox and repaired
before a sync; rows Milvus refuses for good are set aside (`rejected`) without stopping the others. Outboxes and
collections are bound to one model fingerprint; mixing is refused (`reembed` moves an outbox to a new model).
pymilvus (the `milvus` extra) is needed only by `MilvusCollection`.
"""

from m2v_edge.sync.binding import RepairReport
from m2v_edge.sync.engine import Syncer, SyncInterrupted, SyncReport, sync_outbox
from m2v_edge.sync.ingest import Embedder, IngestInterrupted, IngestReport, ingest, ingest_file
from m2v_edge.sync.kiosk import default_kiosk_id
from m2v_edge.sync.lock import SyncLock
from m2v_edge.sync.milvus import MilvusCollection
from m2v_edge.sync.outbox import Outbox
from m2v_edge.sync.records import Record, RecordSet, check_records, read_records
from m2v_edge.sync.retry import RetryPolicy
from m2v_edge.sync.rows import DeleteResult, Hit, OutboxStatus, RejectedRow
from m2v_edge.sync.search import search, search_outbox
from m2v_edge.sync.target import TOKEN_ENV, Secret, Target, parse_target, read_token

__all__ = [
    "TOKEN_ENV",
    "DeleteResult",
    "Embedder",
    "Hit",
    "IngestInterrupted",
    "IngestReport",
    "MilvusCollection",
    "Outbox",
    "OutboxStatus",
    "Record",
    "RecordSet",
    "RejectedRow",
    "RepairReport",
    "RetryPolicy",
    "Secret",
    "SyncInterrupted",
    "SyncLock",
    "SyncReport",
    "Syncer",
    "Target",
    "check_records",
    "default_kiosk_id",
    "ingest",
    "ingest_file",
    "parse_target",
    "read_records",
    "read_token",
    "search",
    "search_outbox",
    "sync_outbox",
]
