"""What a server is started with: the address, the token, the request limits, the outbox; checked before it binds."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from m2v_edge.errors import ServeError
from m2v_edge.serve.auth import TOKEN_ENV, BearerToken


@dataclass(frozen=True)
class Limits:
    """What one request may hold. A body over `max_body_bytes`, more than `max_texts` texts or records, or a text
    over `max_text_chars` characters is refused with 413 before anything is embedded. `ServeError` for a limit
    below 1."""

    max_body_bytes: int = 4 << 20
    max_texts: int = 2048
    """OpenAI's own limit of inputs per embeddings request."""
    max_text_chars: int = 32_768
    """Well past what the model reads: texts are cut to `max_length * median_token_length` characters anyway
    (3,072 for potion-base-8M); documents for `/documents` are stored whole, so they get more room than that."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_texts", "max_text_chars"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ServeError(f"{flag} ({name}) must be >= 1, got {getattr(self, name)}: give a positive limit")


@dataclass(frozen=True)
class ServeSettings:
    """A server's settings; `ServeError` for a port out of range, an address other than loopback without a token,
    or a kiosk id without an outbox (checked when they are made, before any model is loaded)."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: BearerToken | None = None
    """When set, every route but `/health` needs ``Authorization: Bearer <token>``."""
    outbox: Path | None = None
    """Enables `/search`, `/documents` and the search page."""
    limits: Limits = field(default_factory=Limits)
    group_requests: bool = True
    """Hand the requests that arrive together to the encoding thread in one go (see `m2v_edge.serve.encoding`)."""
    kiosk_id: str | None = None
    """The id an outbox created by the server gets, checked when it is opened as `m2v-edge ingest --kiosk-id` is
    (`m2v_edge.sync.kiosk`); an existing outbox must have it."""

    def __post_init__(self) -> None:
        if self.kiosk_id is not None and self.outbox is None:
            raise ServeError(f"--kiosk-id {self.kiosk_id} names the kiosk of an outbox: give --outbox FILE too")
        if not 0 <= self.port <= 65_535:
            raise ServeError(f"--port {self.port} is not a TCP port (0 to 65535; 0 picks a free one)")
        if self.token is None and not is_loopback(self.host):
            raise ServeError(
                f"--host {self.host} lets other machines reach the server, so it needs a bearer token: put one in "
                f"${TOKEN_ENV} or in a file given with --token-file (never on the command line)"
            )


def is_loopback(host: str) -> bool:
    """Whether `host` is `localhost` or an address of the loopback range (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address
