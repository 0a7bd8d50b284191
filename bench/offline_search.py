"""`python -m bench.offline_search`: offline search latency (`search_outbox`) at 10k and 100k documents (issue 17).

Target: p50 <= 20 ms at 100,000 documents on the benchmark machine, without loading every vector on each call.
Each outbox holds the Debian documents (8,000 texts, embedded once with potion-base-8M fp32; cycled with new ids
up to the size, which leaves latency unchanged). Queries are the 8,000 Debian synopses, each embedded inside the
timed call as a user's would be. Figures, in the same run:

- `search_outbox`: the whole call (query embedding, index refresh check, int8 screen, exact scores of the rows it
  keeps, top-k, hit texts from SQLite);
- the float32 way: a NumPy float32 matrix-vector product and a partial sort over the same vectors held in memory
  as float32 (the query already embedded): exact, and what the screen has to beat;
- the first call of a process (reads every search vector once);
- at 10k only, the naive way: every vector read from SQLite on each call.

`--smoke` runs 2,000 and 5,000 documents and 50 queries, asserting nothing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import load_average
from bench.paths import DEBIAN_DATA, POTION_MODEL

TARGET_MS = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offline_search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, few queries, no target checked")
    parser.add_argument("--queries", type=int, default=500, help="timed queries per size (default 500)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    sizes = (2_000, 5_000) if args.smoke else (10_000, 100_000)
    queries_n = 50 if args.smoke else args.queries

    from m2v_edge.export import export_model
    from m2v_edge.runtime import EdgeEmbedder

    rows = [json.loads(line) for line in DEBIAN_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    documents = [row["document"] for row in rows]
    queries = [row["query"] for row in rows][:queries_n]
    results: dict[str, object] = {"load_average_start": load_average(), "queries": queries_n, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="m2v-edge-offline-search-") as scratch:
        bundle = export_model(POTION_MODEL, Path(scratch) / "bundle", variants=("fp32",))
        embedder = EdgeEmbedder(bundle, variant="fp32")
        vectors = embedder.encode(documents)
        for size in sizes:
            path = Path(scratch) / f"outbox-{size}.db"
            _fill(path, embedder, documents, vectors, size)
            figures = _measure(path, embedder, queries, naive=size <= 10_000)
            results["sizes"][str(size)] = figures  # type: ignore[index]
            _print(size, figures)
    if not args.smoke:
        p50 = results["sizes"][str(sizes[-1])]["search_outbox_ms"]["p50"]  # type: ignore[index]
        verdict = "met" if p50 <= TARGET_MS else "NOT met"
        print(f"target p50 <= {TARGET_MS:g} ms at {sizes[-1]:,} documents: {verdict} ({p50:.2f} ms)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _fill(path: Path, embedder, documents: list[str], vectors: np.ndarray, size: int) -> None:  # noqa: ANN001
    from m2v_edge.sync import Outbox

    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id="bench") as outbox:
        for start in range(0, size, 5_000):
            picks = [i % len(documents) for i in range(start, min(size, start + 5_000))]
            outbox.put([(f"doc-{start + n}", documents[i], {"n": start + n}) for n, i in enumerate(picks)],
                       vectors[picks])


def _measure(path: Path, embedder, queries: list[str], *, naive: bool) -> dict[str, object]:  # noqa: ANN001
    from m2v_edge.sync import Outbox, search_outbox
    from m2v_edge.sync.offline_index import index_of

    figures: dict[str, object] = {}
    with Outbox.open(path) as outbox:
        started = time.perf_counter()
        search_outbox(outbox, embedder, queries[0], k=10)
        figures["first_call_ms"] = (time.perf_counter() - started) * 1000
        index = index_of(outbox)
        parts = (index.half, index.codes, index.scale, index.l1)
        figures["index_mib"] = sum(part.nbytes for part in parts) / 2**20
        figures["search_outbox_ms"] = _latency(lambda q: search_outbox(outbox, embedder, q, k=10), queries)
        matrix = index.half[: len(index.ids)].astype(np.float32)
        embedded = dict(zip(queries, embedder.encode(queries), strict=True))  # the floor does not embed
        figures["floor_ms"] = _latency(lambda q: np.argpartition(-(matrix @ embedded[q]), 9)[:10], queries)
        if naive:
            figures["naive_sqlite_ms"] = _latency(lambda q: _naive(path, embedder, q), queries[:50])
    return figures


def _naive(path: Path, embedder, query: str) -> list[str]:  # noqa: ANN001
    """Every search vector read from SQLite, then scored: what a search without an index costs."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, search FROM docs WHERE search IS NOT NULL").fetchall()
    finally:
        conn.close()
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f2").reshape(len(rows), -1).astype(np.float32)
    scores = matrix @ embedder.encode([query])[0]
    return [rows[i][0] for i in np.argpartition(-scores, 9)[:10]]


def _latency(call, queries: list[str]) -> dict[str, float]:  # noqa: ANN001
    call(queries[0])
    times = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p90": times[int(0.9 * (len(times) - 1))], "max": times[-1]}


def _print(size: int, figures: dict[str, object]) -> None:
    def line(name: str, value: dict[str, float]) -> str:
        return f"  {name:<16} p50 {value['p50']:7.2f} ms   p90 {value['p90']:7.2f} ms   max {value['max']:7.2f} ms"

    print(f"{size:,} documents (index {figures['index_mib']:.1f} MiB; first call {figures['first_call_ms']:.0f} ms)")
    print(line("search_outbox", figures["search_outbox_ms"]))  # type: ignore[arg-type]
    print(line("numpy float32", figures["floor_ms"]))  # type: ignore[arg-type]
    if "naive_sqlite_ms" in figures:
        print(line("naive (sqlite)", figures["naive_sqlite_ms"]))  # type: ignore[arg-type]
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
