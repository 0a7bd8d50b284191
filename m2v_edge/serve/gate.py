"""ASGI middleware in front of every route: the bearer token check, the count of requests in flight, and one INFO
line per request (client, method, path, status, milliseconds; never a body, a query string or a header)."""

from __future__ import annotations

import logging
import time
from typing import Any

from m2v_edge.serve.auth import BearerToken
from m2v_edge.serve.replies import RequestError, error_reply

logger = logging.getLogger("m2v_edge.serve.requests")
OPEN = frozenset({("GET", "/health"), ("HEAD", "/health"), ("GET", "/"), ("HEAD", "/")})
"""Reachable without the token: the health check, and the search page (static; its searches send the token)."""

ASGIApp = Any


class Gate:
    """Wraps the application: refuses requests without the token (401), counts and logs the others."""

    def __init__(self, token: BearerToken | None, app: ASGIApp = None) -> None:
        self.app = app
        """The application behind the gate (set once it is built)."""
        self.token = token
        self.in_flight = 0
        """Requests being handled now."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the log says when the application fails before it replies

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.in_flight += 1
        try:
            if (self.token is not None and (scope["method"], scope["path"]) not in OPEN
                    and not self.token.accepts(_authorization(scope))):
                refusal = RequestError(
                    401, "Authorization", "send the server's token as 'Authorization: Bearer <token>'",
                    {"WWW-Authenticate": "Bearer"},
                )
                await error_reply(scope["path"], refusal)(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            self.in_flight -= 1
            client = scope.get("client") or ("-", 0)
            path = scope.get("raw_path") or scope["path"].encode()  # as sent, percent-encoded: one line, always
            logger.info('%s:%s "%s %s" %d %.1f ms', client[0], client[1], scope["method"], path.decode("latin-1"),
                        status, (time.perf_counter() - start) * 1000)


def _authorization(scope: dict[str, Any]) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value
    return None
