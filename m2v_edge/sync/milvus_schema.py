"""The layout of an m2v-edge collection (schema 2) and the checks an existing collection must pass.

Fields::

    pk           VARCHAR(577), primary key   "<kiosk_id>:<doc_id>": no two kiosks can share one, whatever their ids
    kiosk_id     VARCHAR(64), partition key  the kiosk that owns the row (filter: kiosk_id == "...")
    doc_id       VARCHAR(512)                the caller's document id
    vector       FLOAT_VECTOR(dim)           COSINE index (AUTOINDEX)
    text         VARCHAR(65535)              the document text, cut to 65,535 UTF-8 bytes (the outbox keeps it whole)
    metadata     JSON
    fingerprint  VARCHAR(128)                the model fingerprint of the row's vector
    digest       VARCHAR(32)                 digest of what the kiosk sent (model, id, text, metadata): finds stale rows

Collection properties: ``m2v_edge.schema`` (2), ``m2v_edge.fingerprint`` (the model), ``m2v_edge.collection`` (a
random id set when m2v-edge creates the collection: a dropped and recreated collection gets a new one) and, for
each kiosk that synced to it, ``m2v_edge.kiosk.<kiosk_id>``: a token the kiosk writes after each sync and also
keeps in its outbox. A collection whose token is not the one the outbox remembers (new, recreated, restored from a
backup) is compared with the outbox and repaired before the next sync (`m2v_edge.sync.binding`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from m2v_edge.errors import MilvusSyncError
from m2v_edge.sync.kiosk import KIOSK_ID_MAX
from m2v_edge.sync.records import MAX_ID_BYTES

F_PK, F_KIOSK, F_DOC, F_VECTOR = "pk", "kiosk_id", "doc_id", "vector"
F_TEXT, F_METADATA, F_FINGERPRINT, F_DIGEST = "text", "metadata", "fingerprint", "digest"
FIELDS = frozenset({F_PK, F_KIOSK, F_DOC, F_VECTOR, F_TEXT, F_METADATA, F_FINGERPRINT, F_DIGEST})
PK_MAX = KIOSK_ID_MAX + 1 + MAX_ID_BYTES
TEXT_MAX_BYTES = 65_535
FINGERPRINT_MAX = 128
DIGEST_LENGTH = 32
SCHEMA_VERSION = "2"
PROP_SCHEMA = "m2v_edge.schema"
PROP_FINGERPRINT = "m2v_edge.fingerprint"
PROP_IDENTITY = "m2v_edge.collection"
PROP_KIOSK = "m2v_edge.kiosk."
METRIC = "COSINE"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


@dataclass(frozen=True)
class CollectionInfo:
    """What a sync needs to know about the collection it writes to."""

    name: str
    """The collection's own name (the name given may be an alias of it)."""
    identity: str
    """m2v-edge's id of the collection, with Milvus's collection id when the server has one."""
    kiosk_tokens: dict[str, str] = field(default_factory=dict)
    """The sync token of every kiosk that synced to it."""


def check_collection_name(name: str) -> str:
    """Milvus's rule for collection (and alias) names: a letter or underscore, then letters, digits, underscores."""
    if not _NAME.match(name):
        raise MilvusSyncError(
            f"invalid collection name {name!r}: use letters, digits and underscores, starting with a letter or _"
        )
    return name


def primary_key(kiosk_id: str, doc_id: str) -> str:
    """The row's primary key: kiosk ids hold no colon, so no two (kiosk, document) pairs share one."""
    return f"{kiosk_id}:{doc_id}"


def in_filter(field_name: str, values: Sequence[str]) -> str:
    """A Milvus filter selecting `values` of a string field, each quoted safely (ids hold no control characters)."""
    return f"{field_name} in [" + ", ".join(json.dumps(value, ensure_ascii=False) for value in values) + "]"


def kiosk_filter(kiosk_id: str) -> str:
    """A Milvus filter selecting one kiosk's rows."""
    return f"{F_KIOSK} == {json.dumps(kiosk_id)}"


def cut_text(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def build_schema(pm: Any, client: Any, dim: int) -> Any:
    """The collection schema (pymilvus object) for vectors of `dim`."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="m2v-edge vectors")
    schema.add_field(F_PK, pm.DataType.VARCHAR, is_primary=True, max_length=PK_MAX)
    schema.add_field(F_KIOSK, pm.DataType.VARCHAR, max_length=KIOSK_ID_MAX, is_partition_key=True)
    schema.add_field(F_DOC, pm.DataType.VARCHAR, max_length=MAX_ID_BYTES)
    schema.add_field(F_VECTOR, pm.DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(F_TEXT, pm.DataType.VARCHAR, max_length=TEXT_MAX_BYTES)
    schema.add_field(F_METADATA, pm.DataType.JSON)
    schema.add_field(F_FINGERPRINT, pm.DataType.VARCHAR, max_length=FINGERPRINT_MAX)
    schema.add_field(F_DIGEST, pm.DataType.VARCHAR, max_length=DIGEST_LENGTH)
    return schema


def verify(info: dict[str, Any], where: str, dim: int | None, fingerprint: str | None) -> CollectionInfo:
    """Check `describe_collection`'s answer: an m2v-edge collection of schema 2, and of `dim` and the model
    `fingerprint` when they are given; what a sync needs to know about it."""
    fields = {item["name"]: item for item in info.get("fields", [])}
    properties = info.get("properties") or {}
    theirs = properties.get(PROP_FINGERPRINT)
    if theirs is None:
        raise MilvusSyncError(f"{where} was not created by m2v-edge (no model fingerprint); use another name")
    schema = properties.get(PROP_SCHEMA, "1")
    if schema != SCHEMA_VERSION or set(fields) != FIELDS:
        raise MilvusSyncError(
            f"{where} has m2v-edge schema {schema}, without kiosk ids; this m2v-edge writes schema {SCHEMA_VERSION}: "
            "sync into a new collection (--collection NEW), move readers to it with 'm2v-edge alias', and drop the "
            "old one once nothing reads it"
        )
    their_dim = int(fields[F_VECTOR].get("params", {}).get("dim", -1))
    if dim is not None and their_dim != dim:
        raise MilvusSyncError(
            f"{where} holds {their_dim}-dim vectors but the outbox's model gives {dim}: use another collection"
        )
    if fingerprint is not None and theirs != fingerprint:
        raise MilvusSyncError(
            f"{where} holds vectors of model {theirs}, not {fingerprint}: use another collection "
            "(vectors of different models must not be mixed)"
        )
    identity = properties.get(PROP_IDENTITY, "")
    if info.get("collection_id"):
        identity += f"/{info['collection_id']}"
    tokens = {key[len(PROP_KIOSK):]: value for key, value in properties.items() if key.startswith(PROP_KIOSK)}
    return CollectionInfo(name=info.get("collection_name") or "", identity=identity, kiosk_tokens=tokens)
