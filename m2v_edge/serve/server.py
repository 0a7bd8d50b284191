"""Running the application under uvicorn: the listening socket, the start-up line, the graceful stop.

On SIGTERM (or Ctrl-C) the server stops accepting connections, finishes the requests in flight (for up to
`GRACEFUL_SECONDS`), stops its threads and returns. uvicorn's own access log is off: `m2v_edge.serve.gate` writes one
line per request instead.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from m2v_edge.errors import ServeError

GRACEFUL_SECONDS = 30
"""How long a stop waits for requests in flight (systemd's default stop timeout is 90 s)."""
logger = logging.getLogger("m2v_edge.serve")


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (port 0: a free one); `ServeError` saying why it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; is another server using it? choose another --port" if exc.errno == 98 else ""
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``http://host:port/`` a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run_server(app: Any, sock: socket.socket, *, on_ready: Callable[[], None] | None = None) -> None:
    """Serve `app` on `sock` until SIGTERM or SIGINT, then stop gracefully and return.

    :param on_ready: called once the server accepts connections.
    """
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=False, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _Server(config, on_ready)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the signal it stopped for once it has stopped; it has been handled
        pass
    finally:
        sock.close()
    logger.info("stopped")


class _Server(uvicorn.Server):
    """uvicorn's server, with a hook for the moment it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()
