"""The HTTP library the installed huggingface_hub is built on, for tests that fake what the Hub raises.

huggingface_hub 0.x uses requests, 1.x httpx and 2.x httpx2 (httpx's API under another name); m2v-edge accepts any
of them (`huggingface_hub>=0.20`), so the tests raise the errors of whichever one is installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from huggingface_hub.errors import HfHubHTTPError


def client() -> ModuleType:
    """httpx2, httpx or requests: the module of the HTTP error class huggingface_hub's own errors derive from."""
    base = next(cls for cls in HfHubHTTPError.__bases__ if cls is not OSError)
    return importlib.import_module(base.__module__.split(".")[0])


def connection_error(kind: str) -> Exception:
    """What the library raises with no network: `kind` is "connect" (refused, unreachable) or "read-timeout"."""
    http = client()
    if http.__name__ == "requests":
        return {"connect": http.ConnectionError, "read-timeout": http.ReadTimeout}[kind]("no network")
    return {"connect": http.ConnectError, "read-timeout": http.ReadTimeout}[kind]("[Errno 101] Network is unreachable")


def response(status: int, url: str) -> object:
    """An HTTP response object of the library, as huggingface_hub's errors carry."""
    http = client()
    if http.__name__ == "requests":
        reply = http.Response()
        reply.status_code, reply.url = status, url
        return reply
    return http.Response(status, request=http.Request("GET", url))
