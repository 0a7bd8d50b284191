"""Replies: JSON bodies written by orjson, and error bodies in the shape each API's clients read.

Floats are written as the shortest text that reads back to the same double (what Python's `repr` gives); vectors
are float32 widened to float64 first, so a client that parses the JSON gets the float32 values exactly, bit for bit.

Error bodies always name the field at fault:

- `/v1/...` (OpenAI): ``{"error": {"message", "type", "param", "code"}, "message"}``: OpenAI's error object, which
  the `openai` package reads, and the top-level ``message`` of text-embeddings-inference's OpenAI route, which
  pymilvus's `TEIEmbeddingFunction` reads.
- every other route (TEI and m2v-edge's own): ``{"error": message, "error_type", "field"}``, TEI's shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

ERROR_TYPES = {400: "invalid_json", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 422: "validation", 500: "internal", 503: "unavailable"}


class RequestError(Exception):
    """A request the server refuses: `status`, the `field` at fault (a JSON path such as ``input[3]``, or
    ``Authorization``; None for a failure of the server's own) and why."""

    def __init__(self, status: int, field: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.headers = headers


def server_stopping() -> RequestError:
    """The 503 of a request that arrives while the server stops (its threads take no more work)."""
    return RequestError(503, None, "the server is stopping; send the request again once it is back")


def json_reply(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`content` as JSON; numpy arrays are written as nested lists."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_reply(path: str, error: RequestError) -> Response:
    """The error body for a request to `path`, in that API's shape."""
    error_type = ERROR_TYPES.get(error.status, "error")
    if path.startswith("/v1/"):
        body: dict[str, Any] = {
            "error": {"message": error.message, "type": error_type, "param": error.field, "code": error.status},
            "message": error.message,
        }
    else:
        body = {"error": error.message, "error_type": error_type, "field": error.field}
    return json_reply(body, error.status, error.headers)
