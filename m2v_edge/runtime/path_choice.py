"""Which tokenising path is faster on this machine for large chunks of ASCII text, measured while encoding.

The ASCII fast path (`AsciiWordPiece`) and tokenizers give the same ids, so the choice is one of speed only. The fast
path runs on one core (6.2-6.5x faster per core than tokenizers, measured on the Debian texts) while tokenizers spreads
a batch over every core: on 2 CPUs the fast path is 3.4x faster, but on a machine with many cores tokenizers can win.
So, where there are enough CPUs for that to be possible, the first large chunks go alternately down each path, timed,
and the faster path (characters per second) takes every large chunk after that. The race costs, once per loaded bundle,
`RACE_ROUNDS` chunks through the slower path; the ids are the same either way.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Literal

logger = logging.getLogger(__name__)

TokenPath = Literal["fast", "tokenizers"]

RACE_CHARS = 32_768
"""A chunk's ASCII texts must hold this many characters to be timed (or to take the measured winner); smaller chunks
always take the fast path, whose fixed cost per call is lower."""
RACE_ROUNDS = 2
"""Timed chunks per path before the choice is made."""
RACE_MIN_CPUS = 3
"""Below this many usable CPUs the fast path always wins (tokenizers would need about 6 to catch up): no race."""


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class PathChoice:
    """Times both paths on the first large chunks and then names the faster one. Thread-safe.

    The first large chunk goes down the fast path untimed (it fills the word cache and the CPU caches); the next
    ones alternate, tokenizers first, until each path has `RACE_ROUNDS` timed chunks.
    """

    def __init__(self, *, race: bool) -> None:
        """
        :param race: whether to measure; if not, the fast path is always chosen.
        """
        self.winner: TokenPath | None = None if race else "fast"
        """The chosen path, None while the race runs."""
        self._sent = 0
        self._chars: dict[TokenPath, int] = {"fast": 0, "tokenizers": 0}
        self._seconds: dict[TokenPath, float] = {"fast": 0.0, "tokenizers": 0.0}
        self._rounds: dict[TokenPath, int] = {"fast": 0, "tokenizers": 0}
        self._lock = threading.Lock()

    def choose(self, chars: int) -> tuple[TokenPath, bool]:
        """The path for a chunk whose ASCII texts hold `chars` characters, and whether to time it for `record`."""
        if chars < RACE_CHARS:
            return "fast", False
        if self.winner is not None:
            return self.winner, False
        with self._lock:
            sent, self._sent = self._sent, self._sent + 1
        if sent == 0 or sent > 2 * RACE_ROUNDS:  # the warm-up chunk; or chunks of other threads while timing ends
            return "fast", False
        return ("tokenizers" if sent % 2 else "fast"), True

    def record(self, path: TokenPath, chars: int, seconds: float) -> None:
        """One timed chunk; the winner is chosen once both paths have `RACE_ROUNDS` of them."""
        with self._lock:
            self._chars[path] += chars
            self._seconds[path] += seconds
            self._rounds[path] += 1
            if self.winner is None and min(self._rounds.values()) >= RACE_ROUNDS:
                rates = {p: self._chars[p] / max(self._seconds[p], 1e-9) for p in self._chars}
                self.winner = max(rates, key=rates.__getitem__)
                logger.info(
                    "tokenising large chunks with %s (fast path %.2f M characters/s, tokenizers %.2f M characters/s)",
                    "the fast path" if self.winner == "fast" else "tokenizers",
                    rates["fast"] / 1e6,
                    rates["tokenizers"] / 1e6,
                )

    def rates(self) -> dict[TokenPath, float]:
        """Measured characters per second of each path (0 where not measured)."""
        with self._lock:
            return {p: self._chars[p] / self._seconds[p] if self._seconds[p] else 0.0 for p in self._chars}
