"""`m2v-edge serve`: the device's embeddings over HTTP, for kiosk apps in any language, and a kiosk search page.

Routes: OpenAI's ``POST /v1/embeddings``, Hugging Face text-embeddings-inference's ``POST /embed``, ``GET /health``,
``GET /info``; with an outbox, ``POST /search`` (offline search), ``POST /documents`` (ingest) and the search page
``GET /``. Vectors are exactly `EdgeEmbedder.encode`'s. Built on starlette and uvicorn (the ``serve`` extra)::

    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.serve import ServeSettings, create_app, listen, run_server

    settings = ServeSettings(outbox=Path("kiosk.outbox"))
    app = create_app(EdgeEmbedder("bundle/"), settings)
    run_server(app, listen(settings.host, settings.port))   # until SIGTERM

The settings and the token (`ServeSettings`, `Limits`, `read_serve_token`) need nothing beyond the standard
library; the server's names load the web stack on first use, and say which extra to install when it is missing.
`import m2v_edge.runtime` never loads any of this.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from m2v_edge.errors import MissingExtraError

__all__ = [
    "TOKEN_ENV",
    "BearerToken",
    "Limits",
    "ServeSettings",
    "create_app",
    "listen",
    "read_serve_token",
    "run_server",
    "url_of",
]
_MODULES = {
    "TOKEN_ENV": "auth",
    "BearerToken": "auth",
    "read_serve_token": "auth",
    "Limits": "settings",
    "ServeSettings": "settings",
    "create_app": "app",
    "listen": "server",
    "run_server": "server",
    "url_of": "server",
}
WEB_STACK = ("starlette", "anyio", "uvicorn", "orjson")
"""What the `serve` extra installs and the server imports."""

if TYPE_CHECKING:
    from m2v_edge.serve.app import create_app
    from m2v_edge.serve.auth import TOKEN_ENV, BearerToken, read_serve_token
    from m2v_edge.serve.server import listen, run_server, url_of
    from m2v_edge.serve.settings import Limits, ServeSettings


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'm2v_edge.serve' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"m2v_edge.serve.{_MODULES[name]}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in WEB_STACK:
            raise
        raise MissingExtraError("serve", "m2v-edge serve") from None
    return getattr(module, name)
