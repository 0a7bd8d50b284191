"""Reading small /proc and /sys files under a (possibly fake) root, keeping a record of every attempt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ReadStatus = Literal["ok", "missing", "unreadable", "malformed", "unlimited"]


@dataclass(frozen=True)
class SourceRead:
    """One file detection looked at, and what came of it."""

    path: str
    """The path as seen on the device (relative to the detection root, starting with '/')."""
    status: ReadStatus
    detail: str
    """The value read (shortened), or why nothing usable was read."""


class ReadLog:
    """Collects `SourceRead` records and fallback notes while detection runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.reads: list[SourceRead] = []
        self.fallbacks: list[str] = []

    def device_path(self, path: Path) -> str:
        """`path` as it is named on the device: relative to the root, with a leading '/'."""
        try:
            return "/" + path.relative_to(self.root).as_posix().lstrip("/")
        except ValueError:
            return str(path)

    def note(self, path: Path, status: ReadStatus, detail: str) -> None:
        self.reads.append(SourceRead(self.device_path(path), status, detail))

    def fallback(self, message: str) -> None:
        self.fallbacks.append(message)

    def read_text(self, path: Path, *, record_missing: bool = True, limit: int = 1 << 20) -> str | None:
        """The file's text (NULs and surrounding white space kept), or None, noting why when it fails."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(limit)
        except FileNotFoundError:
            if record_missing:
                self.note(path, "missing", "not present")
            return None
        except IsADirectoryError:
            self.note(path, "unreadable", "is a directory, not a file")
            return None
        except NotADirectoryError:
            if record_missing:
                self.note(path, "missing", "a parent is not a folder")
            return None
        except OSError as exc:
            self.note(path, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
            return None
        return data.decode("utf-8", errors="replace")


def shorten(text: str, limit: int = 60) -> str:
    """One line, at most `limit` characters, for reports."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
