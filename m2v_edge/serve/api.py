"""The routes: OpenAI's `/v1/embeddings`, TEI's `/embed`, `/health`, `/info`, and with an outbox `/search`,
`/documents` and the search page `/`."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from m2v_edge import __version__
from m2v_edge.errors import InputRecordsError, ZeroVectorQueryError
from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.serve.encoding import EncodingThread
from m2v_edge.serve.outbox_thread import OutboxThread
from m2v_edge.serve.payloads import (
    documents_request,
    embed_request,
    embeddings_request,
    read_json,
    search_request,
)
from m2v_edge.serve.replies import RequestError, json_reply
from m2v_edge.serve.settings import ServeSettings
from m2v_edge.sync import check_records

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'",
    "Cache-Control": "no-cache",
}
"""The page loads nothing from anywhere; its script talks to this server only."""


class Api:
    """The handlers of one server."""

    def __init__(
        self,
        embedder: EdgeEmbedder,
        settings: ServeSettings,
        encoding: EncodingThread,
        outbox: OutboxThread | None,
        in_flight: Callable[[], int],
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.encoding = encoding
        self.outbox = outbox
        self.in_flight = in_flight
        self.model = embedder.manifest.source.id
        self.page = resources.files("m2v_edge.serve").joinpath("search_page.html").read_text(encoding="utf-8")

    def routes(self) -> list[Route]:
        """Every route; `/search`, `/documents` and the page answer 404 with a hint when there is no outbox."""
        with_outbox = self.outbox is not None
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/info", self.info, methods=["GET"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/embed", self.embed, methods=["POST"]),
            Route("/search", self.search if with_outbox else self.no_outbox, methods=["POST"]),
            Route("/documents", self.documents if with_outbox else self.no_outbox, methods=["POST"]),
            Route("/", self.root, methods=["GET", "POST"]),
        ]

    async def root(self, request: Request) -> Response:
        """GET: the search page (with an outbox). POST: `/embed`, as TEI answers at its root (the URL that
        `huggingface_hub.InferenceClient(base_url=...)` posts to)."""
        if request.method == "POST":
            return await self.embed(request)
        return await (self.search_page(request) if self.outbox is not None else self.no_outbox(request))

    async def health(self, request: Request) -> Response:
        """Up and answering; `in_flight` counts the requests being handled, this one included; `zero_vector_texts`
        the texts embedded to zero vectors since the start (the model knows none of their tokens)."""
        return json_reply({"status": "ok", "in_flight": self.in_flight(),
                           "zero_vector_texts": self.encoding.zero_vector_texts})

    async def info(self, request: Request) -> Response:
        """What is served: model source, fingerprint, dim, variant, profile, version, outbox, limits."""
        embedder = self.embedder
        outbox = None if self.outbox is None else {"path": str(self.outbox.path), "kiosk_id": self.outbox.kiosk_id}
        return json_reply({
            "model": self.model,
            "source": dataclasses.asdict(embedder.manifest.source),
            "fingerprint": embedder.fingerprint,
            "dim": embedder.dim,
            "variant": embedder.variant,
            "profile": embedder.profile.name,
            "tokenizing": embedder.tokenizing,
            "max_length": embedder.manifest.max_length,
            "normalize": embedder.manifest.normalize,
            "version": __version__,
            "outbox": outbox,
            "limits": dataclasses.asdict(self.settings.limits),
        })

    async def embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings API: `data[i].embedding` (floats or base64 float32), `model`, `usage`."""
        asked = embeddings_request(await read_json(request, self.settings.limits), self.settings.limits,
                                   self.embedder.dim)
        encoded = await self.encoding.encode(asked.texts, count_tokens=True)
        if asked.base64:
            rows: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode() for row in encoded.vectors]
        else:
            rows = list(encoded.vectors.astype(np.float64))
        tokens = sum(encoded.token_counts or ())
        return json_reply({
            "object": "list",
            "data": [{"object": "embedding", "index": index, "embedding": row} for index, row in enumerate(rows)],
            "model": self.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    async def embed(self, request: Request) -> Response:
        """TEI's embed API: ``[[float, ...], ...]``, one vector per input."""
        asked = embed_request(await read_json(request, self.settings.limits), self.settings.limits,
                              self.embedder.manifest)
        encoded = await self.encoding.encode(asked.texts, normalize=asked.normalize)
        return json_reply(encoded.vectors.astype(np.float64))

    async def search(self, request: Request) -> Response:
        """The outbox's documents nearest to the query: ``{"hits": [{"id", "kiosk_id", "score", "text",
        "metadata"}]}``, best first."""
        assert self.outbox is not None
        asked = search_request(await read_json(request, self.settings.limits), self.settings.limits)
        try:
            hits = await self.outbox.search(asked.query, k=asked.k, kiosk=asked.kiosk)
        except ZeroVectorQueryError as exc:
            raise RequestError(422, "query", str(exc)) from None
        return json_reply({"hits": [
            {"id": hit.doc_id, "kiosk_id": hit.kiosk_id, "score": hit.score, "text": hit.text, "metadata": hit.metadata}
            for hit in hits
        ]})

    async def documents(self, request: Request) -> Response:
        """Ingest records into the outbox, checked as `m2v-edge ingest` checks lines; all or nothing."""
        assert self.outbox is not None
        records = documents_request(await read_json(request, self.settings.limits), self.settings.limits)
        try:
            checked = check_records(records)
        except InputRecordsError as exc:
            raise RequestError(422, "body", str(exc)) from None
        report = await self.outbox.ingest(checked)
        return json_reply({
            "written": report.written,
            "kiosk_id": self.outbox.kiosk_id,
            "zero_vectors": report.zero_vectors,
            "warning": report.zero_vector_message,
        })

    async def search_page(self, request: Request) -> Response:
        """The kiosk search page: one HTML file, nothing loaded from elsewhere."""
        return HTMLResponse(self.page, headers=PAGE_HEADERS)

    async def no_outbox(self, request: Request) -> Response:
        """`/search`, `/documents` and the page of a server started without an outbox."""
        raise RequestError(404, "path", f"{request.url.path} needs an outbox: start m2v-edge serve with --outbox FILE")
