"""`python -m bench.fleet_sync`: a fleet's sync throughput against raw pymilvus upsert, in the same run (issue 17).

Six kiosk outboxes (ids doc-0 .. doc-N-1 each, the Debian documents as texts, embedded with potion-base-8M fp32) are
synced at once, one real `m2v-edge sync` process per kiosk as on six kiosks, into a new collection of a
`milvus-lite server` and of a Milvus 2.3.5 standalone (`milvus-server`), both started here on 127.0.0.1. The same
rows, with the same schema and fields, are upserted with plain pymilvus from one client into another new
collection. Each round does both, alternating which goes first; collections are created before the clock starts.
Figures: rows/s of the fleet from the first sync's start to the last one's end (as the syncs time themselves) and
from the first process start to the last exit (Python start-up included), the raw rows/s, and fleet/raw per round
(median, min, max). On Milvus before 2.4 a sync writes by delete and insert (upsert there misplaces rows across the
partition key's partitions), which raw upsert does not pay, nor does it keep an outbox, repair, or mark rows synced.

`--smoke`: 100 documents per kiosk, one round, the milvus-lite server only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.paths import DEBIAN_DATA, POTION_MODEL, REPO

sys.path.insert(0, str(REPO / "tests"))

from sync.fleet import build_fleet, copies, raw_upsert, sync_all_at_once  # noqa: E402
from sync.servers import LiteServer, StandaloneServer  # noqa: E402

from bench.machine import load_average  # noqa: E402

KIOSKS = [f"kiosk-{k}" for k in range(6)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="100 documents a kiosk, one round, milvus-lite only")
    parser.add_argument("--docs", type=int, default=1000, help="documents per kiosk (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    docs, rounds = (100, 1) if args.smoke else (args.docs, args.rounds)

    from m2v_edge.export import export_model
    from m2v_edge.runtime import EdgeEmbedder

    lines = DEBIAN_DATA.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["document"] for line in lines if line.strip()]
    results: dict[str, object] = {"load_average_start": load_average(), "kiosks": len(KIOSKS), "docs": docs}
    with tempfile.TemporaryDirectory(prefix="m2v-edge-fleet-bench-") as scratch_name:
        scratch = Path(scratch_name)
        embedder = EdgeEmbedder(export_model(POTION_MODEL, scratch / "bundle", variants=("fp32",)), variant="fp32")
        templates = build_fleet(scratch / "templates", embedder, KIOSKS, docs, texts)
        servers = [("milvus-lite server", LiteServer(scratch / "lite"))]
        if not args.smoke:
            servers.append(("Milvus 2.3.5 standalone", StandaloneServer(scratch / "standalone")))
        for label, server in servers:
            server.start()
            try:
                results[label] = _rounds(server.uri, templates, embedder, scratch / label.split()[0], rounds)
            finally:
                server.kill()
            _print(label, len(KIOSKS) * docs, results[label])  # type: ignore[arg-type]
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _rounds(uri: str, templates: dict[str, Path], embedder, folder: Path,  # noqa: ANN001 - EdgeEmbedder
            rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"fleet_sync_s": [], "fleet_wall_s": [], "raw_s": []}
    for n in range(rounds):
        outboxes = copies(templates, folder / f"round-{n}")

        def fleet(n: int = n, outboxes: dict[str, Path] = outboxes) -> None:
            wall, syncing = sync_all_at_once(outboxes, uri, f"fleet_{n}", outboxes[KIOSKS[0]].parent)
            figures["fleet_wall_s"].append(wall)
            figures["fleet_sync_s"].append(syncing)

        def raw(n: int = n) -> None:  # the templates: never synced, their rows all pending
            figures["raw_s"].append(raw_upsert(uri, f"raw_{n}", templates, embedder.fingerprint, embedder.dim))

        for step in (fleet, raw) if n % 2 == 0 else (raw, fleet):
            step()
    return figures


def _print(label: str, rows: int, figures: dict[str, list[float]]) -> None:
    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"

    sync_rate = [rows / s for s in figures["fleet_sync_s"]]
    wall_rate = [rows / s for s in figures["fleet_wall_s"]]
    raw_rate = [rows / s for s in figures["raw_s"]]
    ratios = [r / s for r, s in zip(figures["raw_s"], figures["fleet_sync_s"], strict=True)]
    print(f"{label}: {len(KIOSKS)} kiosks x {rows // len(KIOSKS)} documents, {len(ratios)} rounds")
    print(f"  fleet, syncing        {spread(sync_rate)} rows/s")
    print(f"  fleet, process wall   {spread(wall_rate)} rows/s")
    print(f"  raw pymilvus upsert   {spread(raw_rate)} rows/s")
    print(f"  fleet/raw (syncing)   {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
