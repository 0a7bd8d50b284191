"""Progress on stderr for long commands: a tqdm bar when tqdm is installed, else a counter redrawn in place.

tqdm is not a runtime dependency (a device may not have it); the `export`, `milvus` and `dev` extras bring it.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def show_progress(requested: bool | None) -> bool:
    """`--progress`/`--no-progress` when given, else on when stderr is a terminal."""
    return requested if requested is not None else sys.stderr.isatty()


class Progress:
    """`update(done, total)` as work advances, `close()` at the end; does nothing when disabled."""

    def __init__(self, label: str, enabled: bool, *, unit: str = "it", stream: TextIO | None = None) -> None:
        self.label = label
        self.enabled = enabled
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._drawn = False
        self._last = 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self._tqdm: Any = None
        else:
            self._tqdm = tqdm

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        """Report `done` units out of `total` (None when unknown), with an optional note on what runs now."""
        if not self.enabled:
            return
        if self._tqdm is not None:
            if self._bar is None:
                self._bar = self._tqdm(total=total, desc=self.label, unit=self.unit, file=self.stream)
            if total is not None and self._bar.total != total:
                self._bar.total = total
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(done - self._bar.n)
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done != total and not note:
            return
        self._last = now
        if total:
            filled = int(30 * done / total)
            line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {self.unit}"
        else:
            line = f"{self.label} {done} {self.unit}"
        self.stream.write(f"\r{line} {note}".rstrip())
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the bar's line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
