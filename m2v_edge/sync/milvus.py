"""The Milvus side of a sync: one collection of one target, its model guard, writes of a kiosk's rows, reads, search.

pymilvus is imported lazily, only here, so that `m2v_edge.runtime` and the outbox work without the `milvus` extra.
The collection's layout and checks are in `m2v_edge.sync.milvus_schema`.

Writes go by primary key, so sending a row twice is harmless. On Milvus servers before 2.4, `upsert` hashes the
wrong field into the partition (milvus-io/milvus#30607): the row lands outside its kiosk's partition and filters on
`kiosk_id` miss it. There, a write is a delete and an insert by primary key, which is what upsert does inside.

Every failure becomes one of the errors `m2v_edge.sync.milvus_errors` chooses; messages never contain the token.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from m2v_edge.errors import MilvusRowError, MilvusSyncError, MilvusUnavailableError, MissingExtraError
from m2v_edge.sync.milvus_errors import classify, describe
from m2v_edge.sync.milvus_schema import (
    F_DIGEST,
    F_DOC,
    F_FINGERPRINT,
    F_KIOSK,
    F_METADATA,
    F_PK,
    F_TEXT,
    F_VECTOR,
    METRIC,
    PROP_FINGERPRINT,
    PROP_IDENTITY,
    PROP_KIOSK,
    PROP_SCHEMA,
    SCHEMA_VERSION,
    CollectionInfo,
    build_schema,
    check_collection_name,
    cut_text,
    in_filter,
    kiosk_filter,
    primary_key,
    verify,
)
from m2v_edge.sync.rows import Hit, PendingRow
from m2v_edge.sync.target import Target, scrub

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
QUERY_WINDOW = 16_384
"""Milvus's largest query result (offset + limit)."""
_T = TypeVar("_T")


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise MissingExtraError("milvus", "syncing to Milvus") from None
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs failed calls itself, loudly
    return pymilvus


class MilvusCollection:
    """A connection to one collection of one Milvus target. Call `connect` (or use `with`) before anything else."""

    def __init__(
        self, target: Target, name: str, *, timeout: float = DEFAULT_TIMEOUT, must_exist: bool = False
    ) -> None:
        """`must_exist`: refuse to create a missing Milvus Lite database (for reading)."""
        self.target = target
        self.name = check_collection_name(name)
        self.timeout = timeout
        self.must_exist = must_exist
        self._client: Any = None
        self._upsert_routes_partitions = True
        self._lite_server = False
        self._pm = _pymilvus()

    # ------------------------------------------------------------- connection

    def connect(self) -> None:
        """Open the client (for Milvus Lite: start the embedded engine on the database folder)."""
        if self._client is not None:
            return
        if self.must_exist and self.target.kind == "lite" and not Path(self.target.uri).exists():
            raise MilvusSyncError(f"Milvus Lite database {self.target} does not exist; run 'm2v-edge sync' first")
        token = self.target.token.reveal()
        if self.target.kind == "lite":
            # the embedded engine serves pymilvus over an in-process gRPC server that logs, as errors, requests
            # it does not implement (pymilvus probes some); the client sees every real failure anyway
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

        def open_client() -> Any:
            return self._pm.MilvusClient(uri=self.target.uri, token=token, timeout=self.timeout, dedicated=True)

        try:
            self._client = self._call("connect", open_client)
        except MilvusSyncError as exc:
            if self.target.kind == "lite" and "Open local milvus failed" in str(exc):
                raise MilvusSyncError(
                    f"cannot open Milvus Lite database {self.target}: another process has it open, or it is damaged"
                ) from None
            raise
        try:
            client = self._client
            version = str(self._call("get_server_version", lambda: client.get_server_version(timeout=self.timeout)))
        except BaseException:
            self.close()
            raise
        self._upsert_routes_partitions = upsert_routes_partitions(version)
        self._lite_server = version.startswith("milvus_lite")

    def close(self) -> None:
        """Close the client; for Milvus Lite also stop the embedded engine, releasing the database lock."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken channel may fail; nothing to do about it
                pass
        if self.target.kind == "lite":
            try:
                from milvus_lite.server_manager import server_manager_instance
            except ImportError:
                return
            server_manager_instance.release_server(self.target.uri)

    def __enter__(self) -> MilvusCollection:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- schema

    def ensure(self, *, dim: int, fingerprint: str, create: bool = True) -> CollectionInfo:
        """Make sure the collection exists with this dim and fingerprint, is indexed and loaded; what it is.

        Creates it when missing (if `create`); refuses one made for another model or not by m2v-edge (schema 2).
        """
        client = self._require()
        if not self._call("has_collection", lambda: client.has_collection(self.name, timeout=self.timeout)):
            if not create:
                raise MilvusSyncError(f"collection {self.name!r} does not exist on {self.target}")
            try:
                self._create(dim, fingerprint)
            except MilvusSyncError:
                # another kiosk may have created it at the same moment: accept it if it matches
                if not self._call("has_collection", lambda: client.has_collection(self.name, timeout=self.timeout)):
                    raise
        info = self.describe(dim=dim, fingerprint=fingerprint)
        indexes = self._call("list_indexes", lambda: client.list_indexes(info.name, timeout=self.timeout))
        if not indexes:  # a crash between create_collection and create_index
            self._call(
                "create_index", lambda: client.create_index(info.name, self._index_params(), timeout=self.timeout)
            )
        self.load()
        return info

    def describe(
        self, *, name: str | None = None, dim: int | None = None, fingerprint: str | None = None
    ) -> CollectionInfo:
        """The identity and kiosk tokens of this collection (or of collection `name` on the same target); checks its
        schema, and its dim and model when given."""
        client = self._require()
        name = name or self.name
        info = self._call("describe_collection", lambda: client.describe_collection(name, timeout=self.timeout))
        return verify(info, f"collection {name!r} on {self.target}", dim, fingerprint)

    def _create(self, dim: int, fingerprint: str) -> None:
        client = self._require()
        schema = build_schema(self._pm, client, dim)
        properties = {PROP_FINGERPRINT: fingerprint, PROP_SCHEMA: SCHEMA_VERSION, PROP_IDENTITY: uuid.uuid4().hex}
        self._call(
            "create_collection",
            lambda: client.create_collection(self.name, schema=schema, index_params=self._index_params(),
                                             properties=properties, timeout=self.timeout),
        )
        logger.info("created collection %s on %s (dim %d, %s)", self.name, self.target, dim, fingerprint)

    def _index_params(self) -> Any:
        params = self._require().prepare_index_params()
        params.add_index(field_name=F_VECTOR, index_type="AUTOINDEX", metric_type=METRIC)
        return params

    def set_kiosk_token(self, kiosk_id: str, token: str) -> None:
        """Record `token` as kiosk `kiosk_id`'s sync token on the collection (a collection property), once what was
        written before it is kept: Milvus Lite holds acknowledged rows in memory until a flush (a server killed
        before it loses them, while the property survives), Milvus has them in its write-ahead log already."""
        client = self._require()
        if self._lite_server:
            self._call("flush", lambda: client.flush(self.name, timeout=self.timeout))
        self._call("alter_collection_properties", lambda: client.alter_collection_properties(
            self.name, {PROP_KIOSK + kiosk_id: token}, timeout=self.timeout))

    # ------------------------------------------------------------- writes

    def upsert(self, rows: Sequence[PendingRow], vectors: np.ndarray, *, kiosk_id: str, fingerprint: str) -> int:
        """Write kiosk `kiosk_id`'s rows with their exact `vectors`; returns once Milvus acknowledged every one.

        Returns how many texts were cut to Milvus's 65,535 bytes.
        """
        if not rows:
            return 0
        client = self._require()
        data = []
        shortened = 0
        for row, vector in zip(rows, vectors, strict=True):
            text = cut_text(row.text)
            shortened += text is not row.text
            data.append({F_PK: primary_key(kiosk_id, row.id), F_KIOSK: kiosk_id, F_DOC: row.id,
                         F_VECTOR: vector.tolist(), F_TEXT: text, F_METADATA: row.metadata,
                         F_FINGERPRINT: fingerprint, F_DIGEST: row.digest})
        if self._upsert_routes_partitions:
            result = self._call("upsert", lambda: client.upsert(self.name, data, timeout=self.timeout), rows=True)
            key = "upsert_count"
        else:
            self.delete([row.id for row in rows], kiosk_id=kiosk_id)
            result = self._call("insert", lambda: client.insert(self.name, data, timeout=self.timeout), rows=True)
            key = "insert_count"
        count = _count(result, key)
        if count is not None and count != len(rows):
            raise MilvusUnavailableError(f"Milvus acknowledged {count} of {len(rows)} written rows")
        return shortened

    def delete(self, doc_ids: Sequence[str], *, kiosk_id: str) -> None:
        """Delete kiosk `kiosk_id`'s rows of `doc_ids` (absent ones are ignored); returns once acknowledged."""
        if not doc_ids:
            return
        client = self._require()
        expression = in_filter(F_PK, [primary_key(kiosk_id, doc_id) for doc_id in doc_ids])
        self._call("delete", lambda: client.delete(self.name, filter=expression, timeout=self.timeout), rows=True)

    # ------------------------------------------------------------- reads

    def load(self) -> None:
        """Load the collection for reading (needed after a server or Milvus Lite restart)."""
        client = self._require()
        self._call("load_collection", lambda: client.load_collection(self.name, timeout=self.timeout))

    def search(self, vector: np.ndarray, k: int = 10, *, kiosk: str | None = None) -> list[Hit]:
        """The `k` nearest rows to `vector` by cosine similarity (of kiosk `kiosk` only, when given)."""
        client = self._require()
        result = self._call(
            "search",
            lambda: client.search(
                self.name,
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                limit=k,
                filter=kiosk_filter(kiosk) if kiosk is not None else "",
                output_fields=[F_DOC, F_KIOSK, F_TEXT, F_METADATA],
                search_params={"metric_type": METRIC},
                consistency_level="Strong",
                timeout=self.timeout,
            ),
        )
        hits = []
        for hit in result[0] if result else []:
            entity = hit.get("entity", {})
            hits.append(Hit(str(entity.get(F_DOC, "")), float(hit["distance"]), entity.get(F_TEXT, ""),
                            entity.get(F_METADATA) or {}, str(entity.get(F_KIOSK, ""))))
        return hits

    def read(self, fields: Sequence[str], *, kiosk_id: str | None = None, window: int = QUERY_WINDOW,
             twice: set[str] | None = None) -> list[dict[str, Any]]:
        """Every row (of kiosk `kiosk_id` only, when given) with `fields` and its primary key, read with Strong
        consistency. A primary key found twice is added to `twice` when given, else raised as `MilvusSyncError`.

        Milvus returns at most `QUERY_WINDOW` rows per query and pymilvus's query iterator loses rows on Milvus
        2.3, so the primary keys are read by range: a range that fills a query is split at the median key it
        returned, until every range fits in one query.
        """
        client = self._require()
        fields = list(dict.fromkeys([F_PK, *fields]))
        found: dict[str, dict[str, Any]] = {}
        ranges: list[tuple[str | None, str | None]] = [(None, None)]
        while ranges:
            low, high = ranges.pop()
            clauses = [kiosk_filter(kiosk_id)] if kiosk_id is not None else []
            clauses += [f"{F_PK} > {json.dumps(low)}"] if low is not None else []
            clauses += [f"{F_PK} <= {json.dumps(high)}"] if high is not None else []
            expression = " and ".join(clauses)
            rows = self._call("query", lambda expression=expression: client.query(
                self.name, filter=expression, output_fields=fields, limit=window, consistency_level="Strong",
                timeout=self.timeout))
            keys = sorted(str(row[F_PK]) for row in rows)
            repeated = {key for key, after in zip(keys, keys[1:]) if key == after}
            if repeated and twice is None:
                raise self._duplicate(min(repeated))
            if repeated and twice is not None:
                twice.update(repeated)
            if len(rows) < window:
                found.update((str(row[F_PK]), row) for row in rows)
            else:
                middle = keys[len(keys) // 2]
                ranges += [(low, middle), (middle, high)]
        return list(found.values())

    def _duplicate(self, key: str) -> MilvusSyncError:
        """The error for a primary key the collection holds twice (see `kiosk_digests`)."""
        kiosk = key.split(":", 1)[0]
        return MilvusSyncError(
            f"collection {self.name!r} holds two rows with primary key {key!r}: run 'm2v-edge sync --reconcile' on "
            f"kiosk {kiosk!r} (it writes the document again, which leaves one row), and give every kiosk its own "
            "--kiosk-id (Milvus before 2.4 keeps both rows when two kiosks that share an id write one key at once)"
        )

    def kiosk_digests(self, kiosk_id: str) -> dict[str, str]:
        """Kiosk `kiosk_id`'s document ids in the collection, each with the digest of what was sent; "" (matching
        nothing, so the document is written again, which leaves one row) for one whose primary key Milvus holds
        twice: after a Milvus Lite server was killed during an upsert, or two kiosks sharing an id on Milvus < 2.4."""
        twice: set[str] = set()
        rows = self.read([F_DOC, F_DIGEST], kiosk_id=kiosk_id, twice=twice)
        return {str(row[F_DOC]): "" if str(row[F_PK]) in twice else str(row[F_DIGEST]) for row in rows}

    def fetch_vectors(self, *, kiosk_id: str | None = None) -> dict[tuple[str, str], np.ndarray]:
        """Every (kiosk id, document id) with its vector (for verification); raises when one appears twice."""
        rows = self.read([F_KIOSK, F_DOC, F_VECTOR], kiosk_id=kiosk_id, window=4096)
        vectors = {(str(row[F_KIOSK]), str(row[F_DOC])): np.asarray(row[F_VECTOR], dtype=np.float32) for row in rows}
        if len(vectors) != len(rows):
            raise MilvusSyncError(f"collection {self.name!r} holds two rows of one kiosk and document id")
        return vectors

    def count(self, *, kiosk_id: str | None = None) -> int:
        """Rows in the collection (of kiosk `kiosk_id` only, when given), read with Strong consistency."""
        client = self._require()
        expression = kiosk_filter(kiosk_id) if kiosk_id is not None else ""
        rows = self._call(
            "count",
            lambda: client.query(self.name, filter=expression, output_fields=["count(*)"], consistency_level="Strong",
                                 timeout=self.timeout),
        )
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------- aliases

    def alias_target(self, alias: str) -> str | None:
        """The collection `alias` points at, or None when there is no such alias."""
        client = self._require()
        check_collection_name(alias)
        aliases = self._call("list_aliases", lambda: client.list_aliases(timeout=self.timeout))
        names = aliases.get("aliases", []) if isinstance(aliases, dict) else list(aliases or [])
        if alias not in names:
            return None
        described = self._call("describe_alias", lambda: client.describe_alias(alias, timeout=self.timeout))
        return str(described.get("collection_name") or "") or None

    def point_alias(self, alias: str) -> None:
        """Point `alias` at this collection (creating the alias when missing): readers switch at once."""
        client = self._require()
        if self.alias_target(alias) is None:
            self._call("create_alias", lambda: client.create_alias(self.name, alias, timeout=self.timeout))
        else:
            self._call("alter_alias", lambda: client.alter_alias(self.name, alias, timeout=self.timeout))

    # ------------------------------------------------------------- internals

    def _require(self) -> Any:
        if self._client is None:
            raise MilvusSyncError("not connected to Milvus (call connect() first)")
        return self._client

    def _call(self, operation: str, func: Callable[[], _T], *, rows: bool = False) -> _T:
        """Run a pymilvus call, turning its exceptions into ours with the token scrubbed out.

        `rows`: the call writes rows, so a refusal of their content is a `MilvusRowError`.
        """
        try:
            return func()
        except MilvusSyncError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymilvus and grpc raise many unrelated types
            message = scrub(describe(exc), self.target.token)
            text = f"Milvus {operation} on {self.target} failed: {message}"
            kind, certain = classify(self._pm, exc, rows)
            if kind is MilvusRowError:
                raise MilvusRowError(text, certain=certain) from None
            raise kind(text) from None


def upsert_routes_partitions(version: str) -> bool:
    """Whether `upsert` on a server of this version puts rows into their partition key's partition (Milvus Lite,
    Milvus 2.4 and later; see milvus-io/milvus#30607)."""
    if version.startswith("milvus_lite"):
        return True
    match = re.match(r"v?(\d+)\.(\d+)", version)
    return match is not None and (int(match[1]), int(match[2])) >= (2, 4)


def _count(result: Any, key: str) -> int | None:
    """pymilvus answers writes with a dict ({'upsert_count': n, ...}); None when it gives no count."""
    if isinstance(result, dict) and key in result:
        return int(result[key])
    getter = getattr(result, "get", None)
    if getter is not None:
        value = getter(key)
        return int(value) if value is not None else None
    return None
