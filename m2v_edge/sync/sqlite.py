"""Low-level SQLite plumbing of the outbox: creating the file privately, connecting, WAL, schema, transactions."""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from m2v_edge.errors import OutboxError

APPLICATION_ID = 0x4D325645
"""`PRAGMA application_id` of an outbox ('M2VE')."""
SCHEMA_VERSION = 2
"""`PRAGMA user_version` of the outbox layout this module writes (1: before kiosk ids; upgraded on opening)."""
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 8192
"""Rows are about 1 kB (text, metadata and a float16 search copy): 8 kB pages waste less than SQLite's 4 kB."""
WAL_SIZE_LIMIT = 4 << 20
"""Bytes the write-ahead log is cut back to after a checkpoint (SQLite leaves it at its largest size otherwise)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE docs (
    key        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    text       BLOB NOT NULL,
    metadata   TEXT NOT NULL,
    search     BLOB,
    created    REAL NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'synced', 'deleted-pending', 'rejected')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    seq        INTEGER NOT NULL
);
CREATE INDEX docs_state_seq ON docs (state, seq);
CREATE TABLE exact (
    key    INTEGER PRIMARY KEY,
    vector BLOB NOT NULL
);
CREATE TABLE targets (
    uri        TEXT NOT NULL,
    collection TEXT NOT NULL,
    identity   TEXT NOT NULL,
    token      TEXT NOT NULL,
    synced     REAL NOT NULL,
    PRIMARY KEY (uri, collection)
);
CREATE TABLE reembed (
    key    INTEGER PRIMARY KEY,
    seq    INTEGER NOT NULL,
    vector BLOB NOT NULL,
    search BLOB NOT NULL
);
"""
"""The outbox layout (version 2); see `m2v_edge.sync.outbox` for what each column holds."""


class Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any exception; sqlite errors become `OutboxError`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, bump_seq: bool = False) -> None:
        self._conn = conn
        self._path = path
        self._bump = bump_seq

    def __enter__(self) -> int:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            if not self._bump:
                return 0
            self._conn.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key='seq'")
            return int(self._conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.rollback()
            raise OutboxError(f"cannot write outbox {self._path}: {exc}") from None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is not None:
            if self._conn.in_transaction:
                self._conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise OutboxError(f"cannot write outbox {self._path}: {exc}") from None
            return
        try:
            self._conn.commit()
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.rollback()
            raise OutboxError(f"cannot write outbox {self._path}: {exc}") from None


def create_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 when missing; True when this call created it."""
    if path.parent and not path.parent.is_dir():
        raise OutboxError(f"cannot create outbox {path}: folder {path.parent} does not exist")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.is_dir():
            raise OutboxError(f"outbox {path} is a folder, not an m2v-edge outbox file") from None
        return False
    os.fchmod(fd, 0o600)  # in case the umask was stricter than needed or looser than wanted
    os.close(fd)
    return True


def connect(path: Path) -> sqlite3.Connection:
    """A connection in manual-transaction mode that never creates the file."""
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot open outbox {path}: {exc}") from None
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    return conn


def is_empty_database(conn: sqlite3.Connection) -> bool:
    """True for a zero-length file (created by us, then interrupted before the schema was written)."""
    try:
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.DatabaseError:
        return False
    return tables == 0 and app_id == 0


def ensure_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL (a no-op when it already is), waiting out other connections for up to the busy timeout.

    SQLite answers a journal-mode change with "database is locked" at once, without its busy handler, when
    another connection is busy, so the wait is done here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            if mode == "wal":
                return
            raise OutboxError(f"cannot switch outbox {path} to WAL mode (SQLite kept {mode!r})")
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise OutboxError(f"cannot open outbox {path}: {exc}") from None
            time.sleep(0.01)


def initialise(conn: sqlite3.Connection, path: Path, meta: dict[str, str]) -> None:
    """Write the schema, `meta` and the identification pragmas in one transaction (a no-op when already there)."""
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on an empty file, before WAL
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    ensure_wal(conn, path)
    conn.execute("PRAGMA synchronous=FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            create_tables(conn)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.commit()
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        raise OutboxError(f"cannot initialise outbox {path}: {exc}") from None


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the version-2 tables (inside the caller's transaction) and set `user_version`."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


_F = TypeVar("_F", bound=Callable[..., Any])


def reads(method: _F) -> _F:
    """Turn sqlite errors raised while reading into `OutboxError` (a damaged file, a vanished disk...); for methods
    of objects with a `path`."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox {self.path}: {exc}") from None

    return wrapper  # type: ignore[return-value]
