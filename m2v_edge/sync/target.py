"""Where vectors go: parsing a target URI and reading the credentials for it.

A target is either a Milvus Lite database path (embedded, e.g. ``./kiosk-milvus.db``; pymilvus requires the
``.db`` suffix) or a server URL (``http://host:19530``, ``https://...``). Anything else with a scheme
(``tcp://``, ``grpc://``, ``s3://``...) is refused, as is a path without ``.db``.

The token comes from ``$M2V_EDGE_MILVUS_TOKEN`` or a token file. It is kept in a `Secret`, whose `repr` and `str`
never show it, so that it cannot leak through a log line or an exception message by accident.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from m2v_edge.errors import MilvusSyncError

TOKEN_ENV = "M2V_EDGE_MILVUS_TOKEN"
logger = logging.getLogger(__name__)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Secret:
    """A credential that never shows itself in `str`, `repr` or f-strings; `reveal()` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for handing to pymilvus only."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"


@dataclass(frozen=True)
class Target:
    """A parsed Milvus target."""

    uri: str
    """What pymilvus gets: an absolute ``.db`` path for Milvus Lite, or the server URL as given."""
    kind: str
    """``"lite"`` (embedded database path) or ``"server"``."""
    display: str = ""
    """The URI as safe to show (user info removed)."""
    token: Secret = field(default_factory=lambda: Secret(""), repr=False, compare=False)

    def __str__(self) -> str:
        return self.display or self.uri


def parse_target(uri: str, *, token: Secret | None = None) -> Target:
    """Classify and check a target URI; raise `MilvusSyncError` for anything unusable."""
    if not uri or not uri.strip():
        raise MilvusSyncError("empty Milvus target: give a Milvus Lite path ending in .db or an http(s):// URL")
    if _SCHEME.match(uri):
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise MilvusSyncError(
                f"unsupported Milvus target scheme '{scheme}://': use http://host:port, https://host:port "
                "or a Milvus Lite path ending in .db"
            )
        if not parts.hostname:
            raise MilvusSyncError(f"Milvus target {scheme}:// has no host name")
        try:
            parts.port  # noqa: B018 - validates the port number
        except ValueError:
            raise MilvusSyncError(f"Milvus target {parts.hostname} has an invalid port") from None
        if parts.username or parts.password:
            raise MilvusSyncError(
                "do not put credentials in the Milvus URL; use $M2V_EDGE_MILVUS_TOKEN or --token-file"
            )
        display = f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return Target(uri=uri, kind="server", display=display, token=token or Secret(""))
    path = Path(uri).expanduser()
    if path.suffix != ".db":
        raise MilvusSyncError(
            f"Milvus target {uri!r} is neither an http(s):// URL nor a Milvus Lite path ending in .db"
        )
    if not path.parent.is_dir():
        raise MilvusSyncError(f"cannot create Milvus Lite database {path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_dir():
        raise MilvusSyncError(f"{path} exists and is not a Milvus Lite database (Milvus Lite uses a folder)")
    absolute = str(path.resolve())
    return Target(uri=absolute, kind="lite", display=str(path), token=Secret(""))


def read_token(token_file: str | os.PathLike[str] | None = None) -> Secret:
    """The Milvus token: from `token_file` when given, else `$M2V_EDGE_MILVUS_TOKEN`, else empty.

    The file's first line is used, surrounding whitespace removed. Errors never include the token.
    """
    if token_file is not None:
        path = Path(token_file)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MilvusSyncError(f"token file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MilvusSyncError(f"cannot read token file {path}: {type(exc).__name__}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("token file %s is readable by other users; chmod 600 it", path)
        lines = text.strip().splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise MilvusSyncError(f"token file {path} is empty")
        return Secret(token)
    return Secret(os.environ.get(TOKEN_ENV, "").strip())


def scrub(message: str, secret: Secret) -> str:
    """`message` with every occurrence of the secret replaced by ``***``."""
    value = secret.reveal()
    return message.replace(value, "***") if value else message
