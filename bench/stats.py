"""Summaries of repeated measurements: median with min and max, and ratios paired by repetition."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, min and max of repeated measurements of one figure."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, min and max of at least one sample."""
    if not samples:
        raise ValueError("no samples to summarize")
    values = [float(x) for x in samples]
    return Summary(median=statistics.median(values), min=min(values), max=max(values), n=len(values))


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Ratio of each repetition's figure to the same repetition's reference figure.

    Systems run alternately within each repetition, so pairing by repetition cancels slow drift of the machine.
    """
    if len(numerator) != len(denominator):
        raise ValueError(f"cannot pair {len(numerator)} samples with {len(denominator)}")
    return [a / b for a, b in zip(numerator, denominator, strict=True) if b > 0]


Progress = Callable[[str], None] | None
"""Where the measuring functions report each finished round (a one-line message), or None."""

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)
"""Percentiles kept for each latency run (the raw per-call samples only go to the chart)."""
