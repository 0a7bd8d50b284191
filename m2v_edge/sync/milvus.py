"""The Milvus side of a sync: the collection schema, its model-fingerprint guard, upsert/delete batches, search.

pymilvus is imported lazily, only here, so that `m2v_edge.runtime` and the outbox work without the `milvus` extra.

Collection layout (created when missing)::

    id           VARCHAR(512), primary key, no auto id
    vector       FLOAT_VECTOR(dim), COSINE index (AUTOINDEX)
    text         VARCHAR(65535)   the document text, cut to 65,535 UTF-8 bytes (the outbox keeps it whole)
    metadata     JSON
    fingerprint  VARCHAR(128)     the model fingerprint of the row's vector

The collection's properties carry ``m2v_edge.fingerprint`` and ``m2v_edge.schema``. An existing collection is used
only when its vector dim and fingerprint equal the outbox's; otherwise `MilvusSyncError` explains the mismatch.

Errors: every failure becomes `MilvusUnavailableError` (worth retrying: connection refused, timeouts, server
restarting) or `MilvusSyncError` (it will not get better by itself). Messages never contain the token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from m2v_edge.errors import MilvusSyncError, MilvusUnavailableError, MissingExtraError
from m2v_edge.sync.outbox import PendingRow
from m2v_edge.sync.records import MAX_ID_BYTES
from m2v_edge.sync.target import Target, scrub

logger = logging.getLogger(__name__)

F_ID, F_VECTOR, F_TEXT, F_METADATA, F_FINGERPRINT = "id", "vector", "text", "metadata", "fingerprint"
TEXT_MAX_BYTES = 65_535
FINGERPRINT_MAX = 128
PROP_FINGERPRINT = "m2v_edge.fingerprint"
PROP_SCHEMA = "m2v_edge.schema"
SCHEMA_VERSION = "1"
METRIC = "COSINE"
DEFAULT_TIMEOUT = 15.0
QUERY_WINDOW = 16_384
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    score: float
    """Cosine similarity."""
    text: str
    metadata: dict[str, Any]


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise MissingExtraError("milvus", "syncing to Milvus") from None
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs failed calls itself, loudly
    return pymilvus


def check_collection_name(name: str) -> str:
    """Milvus's rule for collection names: a letter or underscore, then letters, digits, underscores."""
    if not _NAME.match(name):
        raise MilvusSyncError(
            f"invalid collection name {name!r}: use letters, digits and underscores, starting with a letter or _"
        )
    return name


def cut_text(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def id_filter(ids: Sequence[str]) -> str:
    """A Milvus filter expression selecting `ids`, with each id quoted safely (ids hold no control characters)."""
    return f"{F_ID} in [" + ", ".join(json.dumps(doc_id, ensure_ascii=False) for doc_id in ids) + "]"


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

    def ensure(self, *, dim: int, fingerprint: str, create: bool = True) -> None:
        """Make sure the collection exists with this dim and fingerprint, is indexed and loaded.

        Creates it when missing (if `create`); refuses one made for another model or not by m2v-edge.
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
        self._verify(dim, fingerprint)
        indexes = self._call("list_indexes", lambda: client.list_indexes(self.name, timeout=self.timeout))
        if not indexes:  # a crash between create_collection and create_index
            self._call(
                "create_index", lambda: client.create_index(self.name, self._index_params(), timeout=self.timeout)
            )
        self._call("load_collection", lambda: client.load_collection(self.name, timeout=self.timeout))

    def _create(self, dim: int, fingerprint: str) -> None:
        pm = self._pm
        client = self._require()
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="m2v-edge vectors")
        schema.add_field(F_ID, pm.DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field(F_VECTOR, pm.DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(F_TEXT, pm.DataType.VARCHAR, max_length=TEXT_MAX_BYTES)
        schema.add_field(F_METADATA, pm.DataType.JSON)
        schema.add_field(F_FINGERPRINT, pm.DataType.VARCHAR, max_length=FINGERPRINT_MAX)
        self._call(
            "create_collection",
            lambda: client.create_collection(
                self.name,
                schema=schema,
                index_params=self._index_params(),
                properties={PROP_FINGERPRINT: fingerprint, PROP_SCHEMA: SCHEMA_VERSION},
                timeout=self.timeout,
            ),
        )
        logger.info("created collection %s on %s (dim %d, %s)", self.name, self.target, dim, fingerprint)

    def _index_params(self) -> Any:
        params = self._require().prepare_index_params()
        params.add_index(field_name=F_VECTOR, index_type="AUTOINDEX", metric_type=METRIC)
        return params

    def _verify(self, dim: int, fingerprint: str) -> None:
        client = self._require()
        info = self._call("describe_collection", lambda: client.describe_collection(self.name, timeout=self.timeout))
        fields = {field["name"]: field for field in info.get("fields", [])}
        properties = info.get("properties") or {}
        where = f"collection {self.name!r} on {self.target}"
        theirs = properties.get(PROP_FINGERPRINT)
        if theirs is None or set(fields) != {F_ID, F_VECTOR, F_TEXT, F_METADATA, F_FINGERPRINT}:
            raise MilvusSyncError(f"{where} was not created by m2v-edge (no model fingerprint); use another name")
        their_dim = int(fields[F_VECTOR].get("params", {}).get("dim", -1))
        if their_dim != dim:
            raise MilvusSyncError(
                f"{where} holds {their_dim}-dim vectors but the outbox's model gives {dim}: use another collection"
            )
        if theirs != fingerprint:
            raise MilvusSyncError(
                f"{where} holds vectors of model {theirs}, not {fingerprint}: use another collection "
                "(vectors of different models must not be mixed)"
            )

    # ------------------------------------------------------------- writes

    def upsert(self, rows: Sequence[PendingRow], fingerprint: str) -> None:
        """Upsert rows; returns only once the server has acknowledged every one of them."""
        if not rows:
            return
        client = self._require()
        data = [
            {
                F_ID: row.id,
                F_VECTOR: row.vector.tolist(),
                F_TEXT: cut_text(row.text),
                F_METADATA: row.metadata,
                F_FINGERPRINT: fingerprint,
            }
            for row in rows
        ]
        result = self._call("upsert", lambda: client.upsert(self.name, data, timeout=self.timeout))
        count = _count(result, "upsert_count")
        if count is not None and count != len(rows):
            raise MilvusUnavailableError(f"Milvus acknowledged {count} of {len(rows)} upserted rows")

    def delete(self, ids: Sequence[str]) -> None:
        """Delete ids (absent ones are ignored by Milvus); returns once the server has acknowledged."""
        if not ids:
            return
        client = self._require()
        self._call("delete", lambda: client.delete(self.name, filter=id_filter(ids), timeout=self.timeout))

    # ------------------------------------------------------------- reads

    def load(self) -> None:
        """Load the collection for reading (needed after a server or Milvus Lite restart)."""
        client = self._require()
        self._call("load_collection", lambda: client.load_collection(self.name, timeout=self.timeout))

    def fingerprint(self) -> str | None:
        """The model fingerprint recorded on the collection, or None when it has none."""
        client = self._require()
        info = self._call("describe_collection", lambda: client.describe_collection(self.name, timeout=self.timeout))
        return (info.get("properties") or {}).get(PROP_FINGERPRINT)

    def search(self, vector: np.ndarray, k: int = 10) -> list[Hit]:
        """The `k` nearest rows to `vector` by cosine similarity, reading everything acknowledged so far."""
        client = self._require()
        result = self._call(
            "search",
            lambda: client.search(
                self.name,
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                limit=k,
                output_fields=[F_TEXT, F_METADATA],
                search_params={"metric_type": METRIC},
                consistency_level="Strong",
                timeout=self.timeout,
            ),
        )
        hits = []
        for hit in result[0] if result else []:
            entity = hit.get("entity", {})
            hits.append(
                Hit(str(hit["id"]), float(hit["distance"]), entity.get(F_TEXT, ""), entity.get(F_METADATA) or {})
            )
        return hits

    def fetch_vectors(self, *, chunk: int = 1000) -> dict[str, np.ndarray]:
        """Every id in the collection with its vector, read with Strong consistency (for verification).

        Limited to `QUERY_WINDOW` rows, Milvus's largest query result; raises beyond that, and when an id
        appears twice. (pymilvus's query iterator is not used: on Milvus 2.3 it can miss recent deletes.)
        """
        client = self._require()
        rows = self._call(
            "query",
            lambda: client.query(self.name, filter=f'{F_ID} != ""', output_fields=[F_ID], limit=QUERY_WINDOW,
                                 consistency_level="Strong", timeout=self.timeout),
        )
        if len(rows) >= QUERY_WINDOW:
            raise MilvusSyncError(f"collection {self.name!r} has too many rows ({len(rows)}+) to read back at once")
        ids = [str(row[F_ID]) for row in rows]
        if len(set(ids)) != len(ids):
            raise MilvusSyncError(f"collection {self.name!r} returned an id twice")
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            found = self._call(
                "query",
                lambda part=part: client.query(self.name, filter=id_filter(part), output_fields=[F_ID, F_VECTOR],
                                               consistency_level="Strong", timeout=self.timeout),
            )
            for row in found:
                out[str(row[F_ID])] = np.asarray(row[F_VECTOR], dtype=np.float32)
        if set(out) != set(ids):
            raise MilvusSyncError(f"collection {self.name!r} changed while being read back")
        return out

    def count(self) -> int:
        """Rows in the collection, read with Strong consistency."""
        client = self._require()
        rows = self._call(
            "count",
            lambda: client.query(self.name, filter="", output_fields=["count(*)"], consistency_level="Strong",
                                 timeout=self.timeout),
        )
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------- internals

    def _require(self) -> Any:
        if self._client is None:
            raise MilvusSyncError("not connected to Milvus (call connect() first)")
        return self._client

    def _call(self, operation: str, func: Callable[[], _T]) -> _T:
        """Run a pymilvus call, turning its exceptions into ours with the token scrubbed out."""
        try:
            return func()
        except MilvusSyncError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymilvus and grpc raise many unrelated types
            message = scrub(_describe(exc), self.target.token)
            text = f"Milvus {operation} on {self.target} failed: {message}"
            if _is_transient(self._pm, exc):
                raise MilvusUnavailableError(text) from None
            raise MilvusSyncError(text) from None


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    message = " ".join(str(message).split())
    return message if len(message) <= 300 else message[:297] + "..."


def _is_transient(pm: Any, exc: BaseException) -> bool:
    """Whether retrying the same request later may succeed."""
    permanent = (pm.exceptions.ParamError, pm.exceptions.DataTypeNotMatchException, pm.exceptions.DataNotMatchException,
                 pm.exceptions.ConnectionConfigException, pm.exceptions.PrimaryKeyException)
    if isinstance(exc, permanent):
        return False
    if isinstance(exc, pm.exceptions.MilvusException):
        if getattr(exc, "is_input_error", False):
            return False
        message = _describe(exc).lower()
        if any(word in message for word in ("unauthenticated", "permission denied", "authentication", "privilege")):
            return False
    return True


def _count(result: Any, key: str) -> int | None:
    """pymilvus answers writes with a dict ({'upsert_count': n, ...}); None when it gives no count."""
    if isinstance(result, dict) and key in result:
        return int(result[key])
    getter = getattr(result, "get", None)
    if getter is not None:
        value = getter(key)
        return int(value) if value is not None else None
    return None
