"""Finding the rows Milvus refuses in a batch it refused, so that they can be set aside and the others sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from m2v_edge.errors import MilvusRowError, MilvusUnavailableError


def isolate(rows: list[Any], send: Callable[[Sequence[Any]], None], acknowledged: Callable[[Sequence[Any]], None],
             refused: Callable[[Any, MilvusRowError], None], probe: Callable[[], None]) -> None:
    """Send `rows`; when Milvus refuses them for their content, split until the refused rows are found.

    Halves are tried level by level. A row is given up on (`refused`) when it fails alone, twice, and Milvus takes
    other writes: other parts of the batch, or else a write that changes nothing (`probe`); or when Milvus said
    it is an input error. When four or more parts of a level, and all before them, failed, Milvus is taken to be
    refusing writes as such, and the batch is retried later (`MilvusUnavailableError`).
    """
    try:
        send(rows)
        acknowledged(rows)
        return
    except MilvusRowError as exc:
        first = exc
    accepted = False
    suspects: list[tuple[Any, MilvusRowError]] = [] if len(rows) > 1 else [(rows[0], first)]
    parts = _halves(rows) if len(rows) > 1 else []
    while parts:
        failing: list[tuple[list[Any], MilvusRowError]] = []
        for part in parts:
            try:
                send(part)
                acknowledged(part)
                accepted = True
            except MilvusRowError as exc:
                failing.append((part, exc))
        if not accepted and len(parts) >= 4:
            raise MilvusUnavailableError(f"{first} (Milvus refused every part of a batch of {len(rows)} rows)")
        parts = []
        for part, exc in failing:
            if len(part) == 1:
                suspects.append((part[0], exc))
            else:
                parts.extend(_halves(part))
    if suspects and not accepted and not all(exc.certain for _, exc in suspects):
        try:
            probe()
        except MilvusRowError as exc:
            raise MilvusUnavailableError(f"{first} (and Milvus refuses writes that change nothing: {exc})") from None
    for row, _ in suspects:
        try:
            send([row])
            acknowledged([row])
        except MilvusRowError as again:
            refused(row, again)


def _halves(rows: list[Any]) -> list[list[Any]]:
    middle = len(rows) // 2
    return [rows[:middle], rows[middle:]]
