"""Bounded exponential backoff with jitter, for talking to a Milvus that comes and goes."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing Milvus call.

    Attempt ``n`` (0-based) that fails is followed by a sleep drawn uniformly from
    ``[d/2, d]`` where ``d = min(max_delay, initial_delay * multiplier**n)`` ("equal jitter": never
    synchronised with other kiosks, never much shorter than planned). After `max_attempts` failed attempts the
    caller gives up.
    """

    max_attempts: int = 8
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and the multiplier >= 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier**attempt)
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def worst_case(self) -> float:
        """The longest total time spent sleeping before giving up."""
        return sum(min(self.max_delay, self.initial_delay * self.multiplier**n) for n in range(self.max_attempts - 1))


def sleep(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep, waking early when `stop` is set; True when woken by `stop`."""
    if stop is None:
        threading.Event().wait(seconds)
        return False
    return stop.wait(seconds)
