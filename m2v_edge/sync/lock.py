"""One sync per outbox at a time: an exclusive advisory lock, whatever path the outbox is reached by.

The lock is a `flock` on ``<real path of the outbox>.sync.lock``, where the real path has every symbolic link
resolved: the same file reached through a symlink, a relative path or another spelling takes the same lock. (SQLite
names its write-ahead log after the same real path; hard links to a SQLite database are unsupported by SQLite
itself.) The kernel releases the lock when the process ends in any way, SIGKILL included. Two locks taken in one
process on one outbox also exclude each other (each opens its own file description).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from m2v_edge.errors import OutboxError


def lock_path(outbox_path: str | os.PathLike[str]) -> Path:
    """The lock file of the outbox at `outbox_path`."""
    return Path(f"{os.path.realpath(outbox_path)}.sync.lock")


class SyncLock:
    """An exclusive advisory lock on an outbox's sync (`m2v-edge sync` and `reembed` take it); `OutboxError` when
    another holds it, with `refusal` as its message when given."""

    def __init__(self, outbox_path: str | os.PathLike[str], *, refusal: str | None = None) -> None:
        self.outbox = Path(outbox_path)
        self.path = lock_path(outbox_path)
        self.refusal = refusal or (
            f"another sync is already running on outbox {self.outbox} (or a reembed is): wait for it to end"
        )
        self._fd: int | None = None

    def __enter__(self) -> SyncLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutboxError(self.refusal) from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None
