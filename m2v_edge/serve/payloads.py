"""Request bodies: read within the size limit, parsed, and checked field by field into what each route needs.

A body that is not JSON gets 400; a field of the wrong type, a missing field or a value out of range gets 422; a
body, a list of texts or a text over the limits gets 413. Each `RequestError` names the field (``input[2]``).
Fields an API defines but m2v-edge has no use for (OpenAI's ``user``, TEI's ``truncate``) are accepted and
ignored, as are unknown fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from m2v_edge.bundle import Manifest
from m2v_edge.serve.replies import RequestError
from m2v_edge.serve.settings import Limits

MAX_HITS = 1000
"""Largest `k` a search may ask for."""


@dataclass(frozen=True)
class EmbeddingsRequest:
    """`POST /v1/embeddings`, OpenAI's API."""

    texts: list[str]
    base64: bool
    """``encoding_format: "base64"``: each vector as the base64 of its little-endian float32 bytes."""


@dataclass(frozen=True)
class EmbedRequest:
    """`POST /embed`, TEI's API."""

    texts: list[str]
    normalize: bool | None


@dataclass(frozen=True)
class SearchRequest:
    """`POST /search`."""

    query: str
    k: int
    kiosk: str | None


async def read_json(request: Request, limits: Limits) -> Any:
    """The request's body parsed as JSON, read only as far as `limits.max_body_bytes` allows."""
    too_large = RequestError(
        413, "body", f"the body is larger than this server takes ({limits.max_body_bytes} bytes, --max-body-bytes)"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:  # nobody reads the reply; the log line says 400
        raise RequestError(400, "body", "the client hung up before the whole body arrived") from None
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "body", f"the body is not valid JSON: {exc}") from None


def embeddings_request(body: Any, limits: Limits, dim: int) -> EmbeddingsRequest:
    """Check an OpenAI embeddings body: ``input`` (required), ``encoding_format``, ``model``, ``dimensions``."""
    fields = _object(body)
    texts = _texts(fields, "input", limits)
    encoding = fields.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise RequestError(
            422, "encoding_format", f"encoding_format must be \"float\" or \"base64\", got {_shown(encoding)}"
        )
    model = fields.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(422, "model", f"model must be a string, got {_kind(model)}")
    dimensions = fields.get("dimensions")
    if dimensions is not None and (not _is_int(dimensions) or dimensions != dim):
        raise RequestError(
            422, "dimensions", f"dimensions must be this model's {dim} (Model2Vec vectors cannot be shortened), "
            f"got {_shown(dimensions)}"
        )
    return EmbeddingsRequest(texts, encoding == "base64")


def embed_request(body: Any, limits: Limits, manifest: Manifest) -> EmbedRequest:
    """Check a TEI embed body: ``inputs`` (required) and ``normalize``."""
    fields = _object(body)
    texts = _texts(fields, "inputs", limits)
    normalize = fields.get("normalize")
    if normalize is not None and not isinstance(normalize, bool):
        raise RequestError(422, "normalize", f"normalize must be true or false, got {_kind(normalize)}")
    if normalize is False and manifest.normalize:
        raise RequestError(
            422, "normalize", "normalize: false is not available: this model's vectors are normalised in its graph "
            "(export it with --no-normalize for raw mean vectors)"
        )
    return EmbedRequest(texts, normalize)


def search_request(body: Any, limits: Limits) -> SearchRequest:
    """Check a search body: ``query`` (required), ``k`` (default 10), ``kiosk``."""
    fields = _object(body)
    if "query" not in fields:
        raise RequestError(422, "query", "query is missing: send {\"query\": \"...\"}")
    query = fields["query"]
    if not isinstance(query, str):
        raise RequestError(422, "query", f"query must be a string, got {_kind(query)}")
    _check_length(query, "query", limits)
    k = fields.get("k", 10)
    if not _is_int(k) or not 1 <= k <= MAX_HITS:
        raise RequestError(422, "k", f"k must be a whole number from 1 to {MAX_HITS}, got {_shown(k)}")
    kiosk = fields.get("kiosk")
    if kiosk is not None and not isinstance(kiosk, str):
        raise RequestError(422, "kiosk", f"kiosk must be a string, got {_kind(kiosk)}")
    return SearchRequest(query, k, kiosk)


def documents_request(body: Any, limits: Limits) -> list[Any]:
    """The records of a documents body: one ``{"id", "text", "metadata"?}`` object or a list of them. Their fields
    are checked by `m2v_edge.sync.check_records`, as `m2v-edge ingest` checks lines."""
    records = [body] if isinstance(body, dict) else body
    if not isinstance(records, list) or not records:
        raise RequestError(
            422, "body", "send a record {\"id\", \"text\", \"metadata\"?} or a non-empty list of them, got "
            + _kind(body)
        )
    if len(records) > limits.max_texts:
        raise RequestError(413, "body", f"{len(records)} records; this server takes at most {limits.max_texts} per "
                           "request (--max-texts)")
    for index, record in enumerate(records):
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            _check_length(record["text"], f"[{index}].text", limits)
    return records


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(422, "body", f"the body must be a JSON object, got {_kind(body)}")
    return body


def _texts(fields: dict[str, Any], name: str, limits: Limits) -> list[str]:
    """``fields[name]``: one text or a non-empty list of texts, within the limits."""
    if name not in fields:
        raise RequestError(422, name, f"{name} is missing: send {{\"{name}\": \"text\"}} or a list of texts")
    value = fields[name]
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise RequestError(422, name, f"{name} must be a string or a non-empty list of strings, got {_kind(value)}")
    if len(texts) > limits.max_texts:
        raise RequestError(
            413, name, f"{name} holds {len(texts)} texts; this server takes at most {limits.max_texts} (--max-texts)"
        )
    for index, text in enumerate(texts):
        where = name if isinstance(value, str) else f"{name}[{index}]"
        if not isinstance(text, str):
            token_ids = _is_int(text) or isinstance(text, list)
            hint = " (token id arrays are not supported: send the texts)" if token_ids else ""
            raise RequestError(422, where, f"{where} must be a string, got {_kind(text)}{hint}")
        _check_length(text, where, limits)
    return texts


def _check_length(text: str, where: str, limits: Limits) -> None:
    if len(text) > limits.max_text_chars:
        raise RequestError(
            413, where, f"{where} has {len(text)} characters; this server takes at most {limits.max_text_chars} "
            "(--max-text-chars)"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """A JSON value's type as a person reads it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _shown(value: Any) -> str:
    """A short JSON rendering of a rejected value."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."
