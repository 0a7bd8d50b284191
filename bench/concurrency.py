"""`python -m bench.concurrency`: throughput of one shared `EdgeEmbedder` with 1, 2, 4 and 8 caller threads.

Two workloads on the Debian texts: `batches` (each call encodes a batch of long descriptions, the ingest case) and
`single` (each call encodes one short synopsis, the concurrent-queries case). The callers take work from a shared
queue until all of it is done; each configuration runs `--repeat` times and the median is printed. Every result is
compared with serial encoding of the same calls first (to 1e-6: a batch's padding does not depend on the thread),
so the figures are of correct work. Prints a table; asserts no timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.corpus import load_corpus
from bench.paths import DEBIAN_DATA, POTION_MODEL



def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: export models/potion-base-8M to a temp dir)")
    parser.add_argument("--variants", default="int8,fp32", help="comma-separated variants (default int8,fp32)")
    parser.add_argument("--callers", default="1,2,4,8", help="comma-separated caller thread counts (default 1,2,4,8)")
    parser.add_argument("--intra-op", type=int, help="onnxruntime intra-op threads (default: the device profile's)")
    parser.add_argument("--data", type=Path, default=DEBIAN_DATA, help="JSONL corpus with query and document fields")
    parser.add_argument("--texts", type=int, default=4000, help="texts per workload (default 4000)")
    parser.add_argument("--batch", type=int, default=64, help="texts per call in the batches workload (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration, median kept (default 3)")
    return parser.parse_args(argv)


def run_callers(encode, calls: list[list[str]], callers: int) -> tuple[float, list[np.ndarray | None], list[float]]:
    """Encode `calls` with `callers` threads pulling from a shared index; return seconds, results, call latencies."""
    results: list[np.ndarray | None] = [None] * len(calls)
    latencies: list[float] = []
    lock = threading.Lock()
    next_call = iter(range(len(calls)))
    start_gate = threading.Barrier(callers + 1)

    def caller() -> None:
        start_gate.wait()
        mine = []
        while True:
            with lock:
                index = next(next_call, None)
            if index is None:
                break
            begin = time.perf_counter()
            results[index] = encode(calls[index])
            mine.append(time.perf_counter() - begin)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(callers)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - begin, results, latencies


def measure(embedder, workloads: dict[str, list[list[str]]], counts: Sequence[int], repeat: int) -> list[dict]:
    """One row per (workload, caller count): texts/s (median of `repeat`), speed-up over 1 caller, p50/p95 call ms."""
    rows = []
    for name, calls in workloads.items():
        serial = [embedder.encode(call) for call in calls]  # also warms up allocators and arenas
        total = sum(map(len, calls))
        base = None
        for callers in counts:
            rates, latencies = [], []
            for _ in range(repeat):
                seconds, results, call_seconds = run_callers(embedder.encode, calls, callers)
                for got, want in zip(results, serial, strict=True):
                    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
                rates.append(total / seconds)
                latencies.extend(call_seconds)
            rate = statistics.median(rates)
            base = base or rate
            rows.append({
                "workload": name, "callers": callers, "texts_per_s": rate, "speedup": rate / base,
                "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p95_ms": 1000 * float(np.percentile(latencies, 95)),
            })
    return rows


def table(variant: str, intra_op: int, rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    lines = [f"variant {variant}, onnxruntime intra-op threads {intra_op}",
             f"  {'workload':<8} {'callers':>7} {'texts/s':>9} {'x 1 caller':>10} {'p50 ms/call':>11} {'p95 ms/call':>11}"]
    for row in rows:
        lines.append(
            f"  {row['workload']:<8} {row['callers']:>7} {row['texts_per_s']:>9,.0f} {row['speedup']:>10.2f} "
            f"{row['p50_ms']:>11.2f} {row['p95_ms']:>11.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one table per variant."""
    from m2v_edge.runtime import EdgeEmbedder

    args = parse_args(argv)
    counts = [int(part) for part in args.callers.split(",") if part.strip()]
    corpus = load_corpus(args.data, limit=args.texts)
    documents, queries = corpus.documents, corpus.queries
    workloads = {
        "batches": [documents[i : i + args.batch] for i in range(0, len(documents), args.batch)],
        "single": [[query] for query in queries],
    }
    print(f"{os.cpu_count()} CPUs; {len(documents)} documents in batches of {args.batch}, {len(queries)} single queries;"
          f" median of {args.repeat} runs", flush=True)
    with tempfile.TemporaryDirectory(prefix="m2v-edge-concurrency-") as scratch:
        bundle = args.bundle
        if bundle is None:
            from m2v_edge.export import export_model

            bundle = export_model(POTION_MODEL, Path(scratch) / "bundle", variants=args.variants.split(","))
        for variant in args.variants.split(","):
            embedder = EdgeEmbedder(bundle, variant=variant, threads=args.intra_op)
            intra_op = args.intra_op or embedder.profile.session.intra_op_threads
            print(table(variant, intra_op, measure(embedder, workloads, counts, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
