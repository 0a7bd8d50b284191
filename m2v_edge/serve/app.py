"""`create_app`: the ASGI application of `m2v-edge serve`, errors turned into JSON replies that name the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from m2v_edge.errors import OutboxError
from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.serve.api import Api
from m2v_edge.serve.encoding import EncodingThread
from m2v_edge.serve.gate import Gate
from m2v_edge.serve.outbox_thread import OutboxThread
from m2v_edge.serve.replies import RequestError, error_reply
from m2v_edge.serve.settings import ServeSettings


def create_app(embedder: EdgeEmbedder, settings: ServeSettings) -> Gate:
    """The application serving `embedder` (and `settings.outbox`, opened here: `OutboxError` when it holds another
    model's vectors). Its lifespan's end stops the encoding and outbox threads once their work is done."""
    encoding = EncodingThread(embedder, group_requests=settings.group_requests)
    outbox = None if settings.outbox is None else OutboxThread(settings.outbox, embedder, kiosk_id=settings.kiosk_id)
    gate = Gate(settings.token)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await encoding.close()
            if outbox is not None:
                await outbox.close()

    api = Api(embedder, settings, encoding, outbox, lambda: gate.in_flight)
    gate.app = Starlette(
        routes=api.routes(),
        lifespan=lifespan,
        exception_handlers={RequestError: _refused, HTTPException: _http_error, Exception: _failed},
    )
    return gate


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_reply(request.url.path, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals: no such route (404), a method the route does not take (405)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = RequestError(405, "method", f"{request.method} {request.url.path} is not allowed; use {allowed}",
                             exc.headers)
    elif exc.status_code == 404:
        error = RequestError(404, "path", f"no route {request.url.path}: the routes are /v1/embeddings, /embed, "
                             "/health, /info, and with --outbox /search, /documents and /")
    else:
        error = RequestError(exc.status_code, None, str(exc.detail), exc.headers)
    return error_reply(request.url.path, error)


async def _failed(request: Request, exc: Exception) -> Response:
    """Anything else: 503 when the outbox cannot be used now, else 500; the details go to the log, not the client."""
    if isinstance(exc, OutboxError):
        return error_reply(request.url.path, RequestError(503, None, f"the outbox cannot be used now: {exc}"))
    return error_reply(request.url.path, RequestError(500, None, "internal error; the server's log has the details"))
