"""Measure sync throughput (documents/s) of 5,000 Debian documents into the three Milvus targets.

    .venv/bin/python scripts/sync_throughput.py [--docs 5000] [--repeat 3] [--batch-size 500]

Targets: an embedded Milvus Lite database, a `milvus-lite server` on a free loopback port, and a Milvus 2.3.5
standalone (`milvus-server`, PyPI package `milvus`). Servers are started here on 127.0.0.1 and killed at the end.
Each run syncs a fresh copy of the same outbox into a new collection and times `Syncer.run()`, twice over:
"new collection" includes connecting and creating the collection (schema, index, load); "existing collection"
creates it first, untimed, and times only pushing the rows and marking them synced. Process start-up is not
included. Every run is checked afterwards: the collection holds exactly the 5,000 ids.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from sync.servers import LiteServer, StandaloneServer  # noqa: E402

from m2v_edge.export import export_model  # noqa: E402
from m2v_edge.runtime import EdgeEmbedder  # noqa: E402
from m2v_edge.sync import MilvusCollection, Outbox, Record, Syncer, ingest, parse_target  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="m2v-sync-bench-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = export_model(REPO / "models" / "potion-base-8M", tmp / "bundle", variants=("fp32",), overwrite=True)
        embedder = EdgeEmbedder(bundle, variant="fp32")
        rows = [json.loads(line) for line in open(REPO / "bench" / "data" / "debian-descriptions-public.jsonl")]
        records = [Record(r["package"], r["document"], {"synopsis": r["query"]}) for r in rows[: args.docs]]
        template = tmp / "template.db"
        with Outbox.create(template, fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
            ingest(outbox, embedder, records, batch_size=1000)

        lite_server = LiteServer(tmp / "lite-server")
        standalone = StandaloneServer(tmp / "standalone")
        try:
            lite_server.start()
            standalone.start()
            targets = {
                "Milvus Lite (embedded)": lambda i: str(tmp / f"embedded-{i}.db"),
                "milvus-lite server": lambda i: lite_server.uri,
                "Milvus 2.3.5 standalone": lambda i: standalone.uri,
            }
            print(f"sync of {args.docs} documents (dim {embedder.dim}), batch {args.batch_size}, "
                  f"best/median of {args.repeat}")
            for label, uri_of in targets.items():
                for mode in ("new collection", "existing collection"):
                    rates = []
                    for i in range(args.repeat):
                        run = f"{mode[:3]}{i}"
                        path = tmp / f"outbox-{label[:5]}-{run}.db"
                        shutil.copy2(template, path)
                        target = parse_target(uri_of(run))
                        name = f"bench_{run}"
                        with Outbox.open(path) as outbox:
                            collection = MilvusCollection(target, name, timeout=60)
                            if mode == "existing collection":
                                collection.connect()
                                collection.ensure(dim=outbox.dim, fingerprint=outbox.fingerprint)
                            syncer = Syncer(outbox, collection, batch_size=args.batch_size)
                            start = time.perf_counter()
                            report = syncer.run()
                            seconds = time.perf_counter() - start
                            syncer.close()
                        assert report.upserted == args.docs and report.waiting == 0, report
                        with MilvusCollection(target, name, timeout=60) as check:
                            check.load()
                            assert check.count() == args.docs
                            if target.kind == "server":
                                check._require().drop_collection(name)
                        rates.append(args.docs / seconds)
                    print(f"  {label:<24} {mode:<20} best {max(rates):7,.0f} docs/s   "
                          f"median {statistics.median(rates):7,.0f} docs/s")
        finally:
            lite_server.kill()
            standalone.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
