"""Kiosk identity: the name under which one outbox's rows live in a collection shared by a fleet.

An outbox gets its kiosk id once, when it is created (`m2v-edge ingest --kiosk-id ID`), and keeps it. The default
comes from the machine: its host name, a dash and the first 8 hex digits of a hash of `/etc/machine-id` (the
systemd machine id, hashed so that it is not shown), e.g. ``kiosk-lobby-3f9a0c12``. Boards cloned from one SD card
image share a machine id until it is regenerated (``systemd-machine-id-setup``); give those ``--kiosk-id``.

Ids are 1 to 64 characters: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, so that they
can be written into Milvus filters and collection properties as they are. (A colon never occurs in a kiosk id, so
``<kiosk>:<doc_id>`` is a primary key no two kiosks can share.)
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

from m2v_edge.errors import OutboxError

KIOSK_ID_MAX = 64
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_KIOSK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]+")


def check_kiosk_id(kiosk_id: str) -> str:
    """`kiosk_id` when it is a valid kiosk id; `OutboxError` saying what is allowed otherwise."""
    if not isinstance(kiosk_id, str) or not _KIOSK_ID.match(kiosk_id):
        raise OutboxError(
            f"invalid kiosk id {kiosk_id!r}: use 1 to {KIOSK_ID_MAX} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return kiosk_id


def default_kiosk_id() -> str:
    """This machine's kiosk id: host name plus a hash of the machine id (host name alone when there is none)."""
    host = _NOT_ALLOWED.sub("-", socket.gethostname()).strip("-._")[:55] or "kiosk"
    machine = _machine_id()
    if machine is None:
        return host
    return f"{host}-{hashlib.sha256(b'm2v-edge kiosk id:' + machine.encode()).hexdigest()[:8]}"


def _machine_id() -> str | None:
    for path in MACHINE_ID_FILES:
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if value:
            return value
    return None
