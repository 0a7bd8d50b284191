"""`m2v-edge ingest`, `sync`, `status`, `search` and `delete`: the offline outbox and its sync to Milvus.

Handlers parse nothing and decide nothing: they call `m2v_edge.sync` and print its results. The Milvus token is
read from `$M2V_EDGE_MILVUS_TOKEN` or `--token-file` and never printed.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

from m2v_edge.commands.progress import Progress, show_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ingest`, `sync`, `status`, `search` and `delete` commands."""
    ingest = subparsers.add_parser(
        "ingest",
        help="embed JSONL records ({id, text, metadata?}) into an outbox, offline",
        description="Embed JSON Lines records ({\"id\": str, \"text\": str, \"metadata\": {...}}) into an outbox. "
        "The whole file is checked first: any bad line refuses the file, with line numbers, and nothing is written. "
        "Duplicate ids: the last line wins. Each batch is written in one transaction.",
    )
    ingest.add_argument("file", nargs="?", default="-", help="JSONL file, or - for standard input (default)")
    ingest.add_argument("--bundle", required=True, type=Path, help="bundle folder (from 'm2v-edge export')")
    ingest.add_argument("--outbox", required=True, type=Path, help="outbox file (created, mode 0600, when missing)")
    ingest.add_argument("--variant", help="bundle variant (default: the device profile's choice)")
    ingest.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")
    ingest.add_argument("--batch-size", type=_positive, default=512, help="records per transaction (default 512)")
    _progress_flag(ingest)
    ingest.set_defaults(handler=_ingest)

    sync = subparsers.add_parser("sync", help="push an outbox's pending rows and deletions to Milvus")
    sync.add_argument("--outbox", required=True, type=Path)
    _target_args(sync)
    sync.add_argument("--watch", action="store_true", help="keep running and sync new rows as they arrive")
    sync.add_argument("--interval", type=_seconds, default=2.0, help="seconds between checks with --watch (default 2)")
    sync.add_argument("--batch-size", type=_positive, default=500, help="rows per upsert/delete (default 500)")
    sync.add_argument("--max-attempts", type=_positive, default=8, help="tries per batch before giving up (default 8)")
    sync.add_argument("--max-delay", type=_delay, default=30.0, help="longest backoff between tries, s (default 30)")
    sync.add_argument("--timeout", type=_seconds, default=15.0, help="per-request Milvus timeout, s (default 15)")
    _progress_flag(sync)
    sync.set_defaults(handler=_sync)

    status = subparsers.add_parser("status", help="show how many outbox rows are pending, synced, deleted")
    status.add_argument("--outbox", required=True, type=Path)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)

    search = subparsers.add_parser("search", help="embed a query on this device and search a Milvus collection")
    search.add_argument("query", help="query text")
    search.add_argument("--bundle", required=True, type=Path)
    _target_args(search)
    search.add_argument("-k", type=_positive, default=10, help="number of hits (default 10)")
    search.add_argument("--variant", help="bundle variant (must be the one the collection was built with)")
    search.add_argument("--profile", default="auto")
    search.add_argument("--timeout", type=_seconds, default=15.0, help="Milvus timeout, s (default 15)")
    search.add_argument("--json", action="store_true", help="print hits as JSON lines")
    search.set_defaults(handler=_search)

    delete = subparsers.add_parser("delete", help="mark ids deleted in an outbox; the next sync removes them")
    delete.add_argument("--outbox", required=True, type=Path)
    delete.add_argument("ids", nargs="+", metavar="ID")
    delete.set_defaults(handler=_delete)


# ----------------------------------------------------------------------------- handlers


def _ingest(args: argparse.Namespace) -> int:
    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.sync import ingest_file

    embedder = EdgeEmbedder(args.bundle, variant=args.variant, profile=args.profile)
    bar = Progress("ingest", show_progress(args.progress), unit="docs")
    report = ingest_file(args.outbox, embedder, args.file, batch_size=args.batch_size, progress=bar.update)
    bar.close()
    rate = report.written / report.seconds if report.seconds > 0 else 0.0
    line = (
        f"ingested {report.written} documents from {report.lines} lines into {args.outbox} "
        f"({report.batches} batches, {report.seconds:.2f}s, {rate:,.0f} docs/s; model {embedder.fingerprint})"
    )
    if report.duplicates:
        line += f"; {report.duplicates} lines repeated an earlier id: the last one won"
    print(line)
    return 0


def _sync(args: argparse.Namespace) -> int:
    from m2v_edge.sync import MilvusCollection, Outbox, RetryPolicy, Syncer, SyncLock

    retry = RetryPolicy(max_attempts=args.max_attempts, max_delay=args.max_delay)
    target = _target(args)
    stop = threading.Event()
    bar = Progress("sync", show_progress(args.progress) and not args.watch, unit="rows")
    with Outbox.open(args.outbox) as outbox, SyncLock(outbox.path):
        collection = MilvusCollection(target, args.collection, timeout=args.timeout)
        syncer = Syncer(outbox, collection, batch_size=args.batch_size, retry=retry, stop=stop, progress=bar.update)
        try:
            if args.watch:
                _stop_on_signals(stop)
                print(f"watching {args.outbox} -> {target} collection {args.collection} (Ctrl-C to stop)", flush=True)
                report = syncer.watch(interval=args.interval, on_pass=_print_pass)
            else:
                report = syncer.run()
        finally:
            syncer.close()
            bar.close()
    rate = (report.upserted + report.deleted) / report.seconds if report.seconds > 0 else 0.0
    print(
        f"synced {report.upserted} rows and {report.deleted} deletions to {target} collection {args.collection} "
        f"in {report.seconds:.2f}s ({rate:,.0f} rows/s, {report.failed_attempts} failed attempts); "
        f"{report.waiting} still waiting"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from m2v_edge.sync import Outbox

    with Outbox.open(args.outbox) as outbox:
        status = outbox.status()
    if args.json:
        data = {key: getattr(status, key) for key in status.__dataclass_fields__}
        print(json.dumps(data, sort_keys=True))
        return 0
    print(f"outbox      {status.path}")
    print(f"model       {status.fingerprint} (dim {status.dim})")
    print(f"pending     {status.pending}")
    print(f"synced      {status.synced}")
    print(f"deleted     {status.deleted_pending} waiting to be deleted remotely")
    if status.oldest_pending is not None:
        age = time.time() - status.oldest_pending
        print(f"oldest      waiting for {_duration(age)}")
    if status.failing:
        print(f"failing     {status.failing} rows; last error: {status.last_error}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.sync import MilvusCollection, search

    embedder = EdgeEmbedder(args.bundle, variant=args.variant, profile=args.profile)
    with MilvusCollection(_target(args), args.collection, timeout=args.timeout, must_exist=True) as collection:
        hits = search(collection, embedder, args.query, k=args.k)
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print(json.dumps({"rank": rank, "id": hit.id, "score": hit.score, "text": hit.text,
                              "metadata": hit.metadata}, ensure_ascii=False))
        else:
            print(f"{rank:>3}. {hit.score:.4f}  {hit.id}  {_snippet(hit.text)}")
    if not hits and not args.json:
        print("no hits")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from m2v_edge.sync import Outbox

    with Outbox.open(args.outbox) as outbox:
        result = outbox.delete(args.ids)
    line = f"marked {result.marked + result.unknown} ids for deletion; the next sync removes them"
    if result.unknown:
        line += f" ({result.unknown} not in this outbox: deleted remotely anyway)"
    print(line)
    return 0


# ----------------------------------------------------------------------------- helpers


def _target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uri", required=True, help="Milvus Lite path (*.db) or http(s)://host:port")
    parser.add_argument("--collection", required=True, help="collection name")
    parser.add_argument(
        "--token-file", type=Path, help="file holding the Milvus token (default: $M2V_EDGE_MILVUS_TOKEN)"
    )
    parser.add_argument("--token", nargs="?", action=_RefuseToken, help=argparse.SUPPRESS)


class _RefuseToken(argparse.Action):
    """`--token VALUE` is refused without echoing VALUE: argv is readable by every user of the machine."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error(
            "the Milvus token is never taken on the command line (other users can read it there); "
            "put it in $M2V_EDGE_MILVUS_TOKEN or a file given with --token-file"
        )


def _target(args: argparse.Namespace) -> Any:
    from m2v_edge.sync import parse_target, read_token

    return parse_target(args.uri, token=read_token(args.token_file))


def _progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def _seconds(text: str) -> float:
    """A finite duration > 0 (a zero, negative or NaN interval would make `--watch` spin)."""
    return _duration_arg(text, zero_allowed=False)


def _delay(text: str) -> float:
    """A finite duration >= 0."""
    return _duration_arg(text, zero_allowed=True)


def _duration_arg(text: str, *, zero_allowed: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        bound = ">= 0" if zero_allowed else "> 0"
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds {bound}, got {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _print_pass(report: Any) -> None:
    print(f"synced {report.upserted} rows, {report.deleted} deletions; {report.waiting} waiting", flush=True)


def _snippet(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
