"""`m2v-edge search`: a query embedded on this device, against a Milvus collection or, offline, an outbox."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from m2v_edge.commands import sync_options as opt


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` command."""
    search = subparsers.add_parser(
        "search",
        help="embed a query on this device and search a Milvus collection, or an outbox offline",
        description="Search a Milvus collection (--uri, --collection) or, with no network needed, an outbox's own "
        "documents (--outbox): exact cosine over all of them.",
    )
    search.add_argument("query", help="query text")
    opt.bundle_args(search, required=True, bundle_help="bundle folder",
                    variant_help="bundle variant (the one the vectors were made with; default for --outbox: the "
                    "outbox's, else the device profile's choice)")
    search.add_argument("--outbox", type=Path, help="search this outbox instead of Milvus")
    opt.target_args(search, required=False)
    search.add_argument("--kiosk", help="only this kiosk's documents")
    search.add_argument("-k", type=opt.positive, default=10, help="number of hits (default 10)")
    search.add_argument("--timeout", type=opt.seconds, default=15.0, help="Milvus timeout, s (default 15)")
    search.add_argument("--json", action="store_true", help='print one JSON object: {"hits": [...]}')
    search.set_defaults(handler=_search)


def _search(args: argparse.Namespace) -> int:
    if (args.outbox is None) == (args.uri is None or args.collection is None):
        raise ValueError("give either --outbox (offline search) or both --uri and --collection (Milvus)")
    if args.outbox is not None:
        hits = _offline(args)
    else:
        from m2v_edge.sync import MilvusCollection, search

        embedder = opt.embedder(args)
        with MilvusCollection(opt.target(args), args.collection, timeout=args.timeout, must_exist=True) as collection:
            hits = search(collection, embedder, args.query, k=args.k, kiosk=args.kiosk)
    if args.json:
        print(json.dumps({"hits": [_as_json(rank, hit) for rank, hit in enumerate(hits, 1)]}, ensure_ascii=False))
        return 0
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>3}. {hit.score:.4f}  {hit.doc_id}  {_snippet(hit.text)}")
    if not hits:
        print("no hits")
    return 0


def _offline(args: argparse.Namespace) -> list[Any]:
    from m2v_edge.sync import Outbox, search_outbox

    with Outbox.open(args.outbox) as outbox:
        embedder = opt.embedder(args, outbox_fingerprint=outbox.fingerprint)
        return search_outbox(outbox, embedder, args.query, k=args.k, kiosk=args.kiosk)


def _as_json(rank: int, hit: Any) -> dict[str, Any]:
    return {"rank": rank, "doc_id": hit.doc_id, "kiosk_id": hit.kiosk_id, "score": hit.score, "text": hit.text,
            "metadata": hit.metadata}


def _snippet(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
