"""`make demo`: an offline kiosk, end to end, in under a minute.

1. export the shipped potion-base-8M to an m2v-edge bundle (fp32 + int8 graphs);
2. `m2v-edge ingest`: embed a few hundred Debian package descriptions into an outbox (offline);
3. `m2v-edge sync`: push them into an embedded Milvus Lite database;
4. `m2v-edge search`: three queries, top hits printed.

Everything lands in ./demo-out (replaced on each run). Only the repository's own files are used; no network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "potion-base-8M"
DEBIAN = REPO / "bench" / "data" / "debian-descriptions-public.jsonl"
QUERIES = (
    "text editor for programmers",
    "play music and video files",
    "monitor network traffic",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "demo-out", help="work folder (default ./demo-out)")
    parser.add_argument("--docs", type=int, default=400, help="Debian descriptions to ingest (default 400)")
    parser.add_argument("-k", type=int, default=3, help="hits per query (default 3)")
    args = parser.parse_args()
    start = time.perf_counter()

    out: Path = args.out.resolve()  # the commands run from the repository
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    step("1. export potion-base-8M to a bundle")
    from m2v_edge.bundle import read_manifest
    from m2v_edge.export import export_model

    bundle = export_model(MODEL, out / "bundle", variants=("fp32", "int8"), overwrite=True)
    manifest = read_manifest(bundle)
    sizes = ", ".join(f"{variant} {manifest.variant_size(variant) / 1e6:.1f} MB" for variant in manifest.variants)
    print(f"exported {MODEL.name} to {bundle.relative_to(REPO) if bundle.is_relative_to(REPO) else bundle}: {sizes}")

    rows = [json.loads(line) for line in DEBIAN.read_text(encoding="utf-8").splitlines() if line.strip()]
    stride = max(1, len(rows) // args.docs)
    records = out / "kiosk-docs.jsonl"
    with open(records, "w", encoding="utf-8") as handle:
        for row in rows[::stride][: args.docs]:
            record = {"id": row["package"], "text": row["document"], "metadata": {"synopsis": row["query"]}}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    outbox, milvus = out / "kiosk.outbox", out / "kiosk-milvus.db"
    step(f"2. embed {args.docs} Debian package descriptions into an outbox (offline)")
    m2v_edge("ingest", "--bundle", bundle, "--variant", "fp32", "--outbox", outbox, records, "--no-progress")
    m2v_edge("status", "--outbox", outbox)

    step("3. sync the outbox into an embedded Milvus Lite database")
    m2v_edge("sync", "--outbox", outbox, "--uri", milvus, "--collection", "debian", "--no-progress")
    m2v_edge("status", "--outbox", outbox)

    step(f"4. search (top {args.k})")
    for query in QUERIES:
        print(f'\n"{query}"')
        m2v_edge("search", "--bundle", bundle, "--variant", "fp32", "--uri", milvus, "--collection", "debian",
                 "-k", str(args.k), query, echo=False)

    shown = out.relative_to(REPO) if out.resolve().is_relative_to(REPO) else out
    print(f"\ndemo finished in {time.perf_counter() - start:.1f}s; files in {shown}")
    return 0


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def m2v_edge(*args: object, echo: bool = True) -> None:
    """Run one `m2v-edge` command as a user would (from the repository, paths relative to it), showing the command
    line and its output."""
    shown = [str(a.relative_to(REPO)) if isinstance(a, Path) and a.is_relative_to(REPO) else str(a) for a in args]
    if echo:
        print("$ m2v-edge " + " ".join(f'"{a}"' if " " in a else a for a in shown), flush=True)
    result = subprocess.run([sys.executable, "-m", "m2v_edge.cli", *shown], cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"demo: m2v-edge {args[0]} failed with exit code {result.returncode}")


if __name__ == "__main__":
    sys.exit(main())
