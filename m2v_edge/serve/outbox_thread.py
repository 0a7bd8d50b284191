"""The outbox behind `/search` and `/documents`, opened in a thread of its own (an `Outbox` belongs to one thread).

Searches and ingests run there one at a time, in arrival order; other processes (`m2v-edge sync --watch`) may use
the same file meanwhile, as SQLite allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.serve.replies import server_stopping
from m2v_edge.sync import Hit, IngestReport, Outbox, Record, ingest, search_outbox

T = TypeVar("T")


class OutboxThread:
    """An outbox opened (created when missing, with `kiosk_id` or the machine's) for `embedder`'s model; `OutboxError`
    at once when it is of another model, or of another kiosk than `kiosk_id`."""

    def __init__(self, path: Path, embedder: EdgeEmbedder, *, kiosk_id: str | None = None) -> None:
        self.path = path
        self.embedder = embedder
        self._kiosk_id = kiosk_id
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2v-edge-outbox")
        self._outbox: Outbox | None = None
        self._closed = False
        try:
            self.kiosk_id = self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown()
            raise

    async def search(self, query: str, *, k: int, kiosk: str | None) -> list[Hit]:
        """`m2v_edge.sync.search_outbox` over this outbox."""
        return await self._call(lambda outbox: search_outbox(outbox, self.embedder, query, k=k, kiosk=kiosk))

    async def ingest(self, records: list[Record]) -> IngestReport:
        """`m2v_edge.sync.ingest` of checked records into this outbox, all in one transaction (all or nothing)."""
        return await self._call(lambda outbox: ingest(outbox, self.embedder, records, batch_size=max(1, len(records))))

    async def close(self) -> None:
        """Refuse new work (503), finish the work given, then close the outbox (waiting off the event loop)."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        await asyncio.to_thread(self._executor.shutdown)

    def _open(self) -> str:
        self._outbox = Outbox.create(self.path, fingerprint=self.embedder.fingerprint, dim=self.embedder.dim,
                                     kiosk_id=self._kiosk_id)
        return self._outbox.kiosk_id

    def _close(self) -> None:
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None

    async def _call(self, work: Callable[[Outbox], T]) -> T:
        if self._closed:
            raise server_stopping()

        def run() -> Any:
            assert self._outbox is not None, "the outbox is closed"
            return work(self._outbox)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)
