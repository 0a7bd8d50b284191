"""The bearer token: from a file or `$M2V_EDGE_SERVE_TOKEN` (never argv), compared in constant time, never shown."""

from __future__ import annotations

import hmac
import logging
import os
import stat
from pathlib import Path

from m2v_edge.errors import ServeError

TOKEN_ENV = "M2V_EDGE_SERVE_TOKEN"
logger = logging.getLogger(__name__)


class BearerToken:
    """The token clients must send as ``Authorization: Bearer <token>``; `str` and `repr` never show it."""

    __slots__ = ("_expected",)

    def __init__(self, value: str) -> None:
        if not value or any(char.isspace() or not char.isprintable() for char in value):
            raise ServeError("the serve token must be one word of printable characters, without spaces")
        self._expected = f"Bearer {value}".encode()

    def accepts(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries the token (compared in constant time)."""
        return authorization is not None and hmac.compare_digest(authorization, self._expected)

    def __repr__(self) -> str:
        return "BearerToken(***)"

    __str__ = __repr__


def read_serve_token(token_file: str | os.PathLike[str] | None = None) -> BearerToken | None:
    """The token from `token_file` (its first line) when given, else from `$M2V_EDGE_SERVE_TOKEN`; None when neither
    is set. Errors name the file, never the token."""
    if token_file is None:
        value = os.environ.get(TOKEN_ENV, "").strip()
        return BearerToken(value) if value else None
    path = Path(token_file)
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except FileNotFoundError:
        raise ServeError(f"token file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"cannot read token file {path}: {type(exc).__name__}") from None
    if not lines or not lines[0].strip():
        raise ServeError(f"token file {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("token file %s is readable by other users; chmod 600 it", path)
    return BearerToken(lines[0].strip())
