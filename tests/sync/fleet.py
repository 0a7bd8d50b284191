"""Fleets of kiosk outboxes for the fleet test and the fleet benchmark (`bench/fleet_sync.py`): building them,
syncing them all at once with the real `m2v-edge sync` command, and raw pymilvus upsert of the same rows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from m2v_edge.sync import MilvusCollection, Outbox, ingest, parse_target

CLI = [sys.executable, "-m", "m2v_edge.cli"]


def build_fleet(folder: Path, embedder, kiosks: Sequence[str], docs: int,  # noqa: ANN001 - EdgeEmbedder
                texts: Sequence[str]) -> dict[str, Path]:
    """One pending outbox per kiosk, ids doc-0 .. doc-<docs-1> in each; kiosk k's texts start at texts[k * docs]
    (the list is cycled when it is shorter)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for k, kiosk in enumerate(kiosks):
        records = [{"id": f"doc-{i}", "text": texts[(k * docs + i) % len(texts)], "metadata": {"kiosk": kiosk}}
                   for i in range(docs)]
        paths[kiosk] = folder / f"{kiosk}.outbox"
        with Outbox.create(paths[kiosk], fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id=kiosk) as box:
            ingest(box, embedder, records)
    return paths


def copies(templates: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Fresh copies of the outboxes `templates`, in `folder` (made, with its parents; it must not exist)."""
    folder.mkdir(parents=True)
    return {kiosk: Path(shutil.copy2(path, folder / path.name)) for kiosk, path in templates.items()}


def sync_args(path: Path, uri: str, collection: str, *, batch: int = 500) -> tuple[str, ...]:
    """`m2v-edge sync` arguments that ride out a server restart."""
    return ("sync", "--outbox", str(path), "--uri", uri, "--collection", collection, "--batch-size", str(batch),
            "--max-attempts", "100", "--max-delay", "1", "--timeout", "10")


def sync_all_at_once(outboxes: dict[str, Path], uri: str, collection: str, logs: Path) -> tuple[float, float]:
    """Every outbox synced at once, one `m2v-edge sync` process each (default batch size), into a collection made
    beforehand (as `raw_upsert`'s is: creating and loading one takes seconds on Milvus standalone).

    Returns (seconds from the first process start to the last exit, seconds from the first sync's start to the last
    one's end as the syncs timed themselves: what `m2v-edge sync` prints, ending when it records the sync).
    """
    with Outbox.open(next(iter(outboxes.values()))) as box, MilvusCollection(parse_target(uri), collection) as made:
        made.ensure(dim=box.dim, fingerprint=box.fingerprint)
    log = {kiosk: logs / f"rate-{kiosk}.log" for kiosk in outboxes}
    started = time.perf_counter()
    procs = {kiosk: _start(sync_args(path, uri, collection), log[kiosk]) for kiosk, path in outboxes.items()}
    for kiosk, proc in procs.items():
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(f"sync of {kiosk} failed: {log[kiosk].read_text()[-2000:]}")
    wall = time.perf_counter() - started
    spans = []
    rows = 0
    for kiosk, path in outboxes.items():
        seconds = float(log[kiosk].read_text().split(" in ")[-1].split("s ")[0])
        with Outbox.open(path) as box:
            (ended,) = [when for _, name, when in box.status().targets if name == collection]
            rows += box.status().synced
        spans.append((ended - seconds, ended))
    with MilvusCollection(parse_target(uri), collection) as check:
        check.load()
        if check.count() != rows:
            raise RuntimeError(f"collection {collection} holds {check.count()} rows, not {rows}")
    return wall, max(end for _, end in spans) - min(start for start, _ in spans)


def _start(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([*CLI, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def raw_upsert(uri: str, collection: str, outboxes: dict[str, Path], fingerprint: str, dim: int) -> float:
    """Seconds for plain pymilvus `upsert` of the outboxes' pending rows (same schema and fields, batches of 500)
    from one client, into a new collection made first (not timed)."""
    import pymilvus
    from pymilvus import MilvusClient

    from m2v_edge.sync.milvus_schema import build_schema

    rows = []
    for kiosk, path in outboxes.items():
        with Outbox.open(path) as box:
            for row in box.pending(limit=1 << 30, max_bytes=1 << 40, up_to=box.high_water()):
                rows.append({"pk": f"{kiosk}:{row.id}", "kiosk_id": kiosk, "doc_id": row.id,
                             "vector": row.vector.tolist(), "text": row.text, "metadata": row.metadata,
                             "fingerprint": fingerprint, "digest": row.digest})
    if not rows:
        raise RuntimeError("the outboxes have no pending rows to upsert (give ones not synced yet)")
    client = MilvusClient(uri=uri, dedicated=True, timeout=60)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(collection, schema=build_schema(pymilvus, client, dim), index_params=index)
    started = time.perf_counter()
    for start in range(0, len(rows), 500):
        client.upsert(collection, rows[start:start + 500])
    seconds = time.perf_counter() - started
    client.close()
    return seconds


