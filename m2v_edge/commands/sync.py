"""`m2v-edge ingest`, `sync`, `status` and `delete`: the offline outbox and its sync to Milvus.

Handlers parse nothing and decide nothing: they call `m2v_edge.sync` and print its results. The Milvus token is
read from `$M2V_EDGE_MILVUS_TOKEN` or `--token-file` and never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from m2v_edge.commands import sync_options as opt
from m2v_edge.commands.progress import Progress, show_progress

REJECTED_SHOWN = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ingest`, `sync`, `status` and `delete` commands."""
    ingest = subparsers.add_parser(
        "ingest",
        help="embed JSONL records ({id, text, metadata?}) into an outbox, offline",
        description="Embed JSON Lines records ({\"id\": str, \"text\": str, \"metadata\": {...}}) into an outbox. "
        "The whole file is checked first: any bad line refuses the file, with line numbers, and nothing is written. "
        "Duplicate ids: the last line wins. Each batch is written in one transaction.",
    )
    ingest.add_argument("file", nargs="?", default="-", help="JSONL file, or - for standard input (default)")
    opt.bundle_args(ingest, required=True, bundle_help="bundle folder (from 'm2v-edge export')",
                    variant_help="bundle variant (default: the device profile's choice)")
    ingest.add_argument("--outbox", required=True, type=Path, help="outbox file (created, mode 0600, when missing)")
    ingest.add_argument("--kiosk-id", help="this kiosk's id, set when the outbox is created (default: from the "
                        "machine: host name and a hash of /etc/machine-id)")
    ingest.add_argument("--batch-size", type=opt.positive, default=512, help="records per transaction (default 512)")
    opt.progress_flag(ingest)
    ingest.set_defaults(handler=_ingest)

    sync = subparsers.add_parser("sync", help="push an outbox's pending rows and deletions to Milvus")
    sync.add_argument("--outbox", required=True, type=Path)
    opt.target_args(sync)
    opt.bundle_args(sync, required=False, bundle_help="the outbox's bundle, to embed again the rows a new or "
                    "repaired collection needs (their exact vectors are dropped once synced)",
                    variant_help="bundle variant (default: the outbox's)")
    sync.add_argument("--reconcile", action="store_true",
                      help="compare the collection with the outbox first and repair missing, stale and extra rows")
    sync.add_argument("--retry-rejected", action="store_true", help="send the rows Milvus refused once more")
    sync.add_argument("--watch", action="store_true", help="keep running and sync new rows as they arrive")
    sync.add_argument("--interval", type=opt.seconds, default=2.0,
                      help="seconds between checks with --watch (default 2)")
    sync.add_argument("--batch-size", type=opt.positive, default=500, help="rows per write/delete (default 500)")
    sync.add_argument("--max-attempts", type=opt.positive, default=8,
                      help="tries per batch before giving up (default 8)")
    sync.add_argument("--max-delay", type=opt.delay, default=30.0,
                      help="longest backoff between tries, s (default 30)")
    sync.add_argument("--timeout", type=opt.seconds, default=15.0, help="per-request Milvus timeout, s (default 15)")
    opt.progress_flag(sync)
    sync.set_defaults(handler=_sync)

    status = subparsers.add_parser("status", help="show an outbox's kiosk, model, size and rows by state")
    status.add_argument("--outbox", required=True, type=Path)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)

    delete = subparsers.add_parser("delete", help="mark ids deleted in an outbox; the next sync removes them")
    delete.add_argument("--outbox", required=True, type=Path)
    delete.add_argument("ids", nargs="+", metavar="ID")
    delete.set_defaults(handler=_delete)


# ----------------------------------------------------------------------------- handlers


def _ingest(args: argparse.Namespace) -> int:
    from m2v_edge.sync import IngestInterrupted, ingest_file

    embedder = opt.embedder(args)
    bar = Progress("ingest", show_progress(args.progress), unit="docs")
    started: list[bool] = []

    def progress(done: int, total: int) -> None:
        if not started:  # the records are checked and the outbox open: a user error would have been said by now
            print(f"m2v-edge ingest: embedding with {opt.describe_model(embedder)}", file=sys.stderr, flush=True)
            started.append(True)
        bar.update(done, total)

    opt.interrupt_on_sigterm()
    try:
        report = ingest_file(args.outbox, embedder, args.file, kiosk_id=args.kiosk_id, batch_size=args.batch_size,
                             progress=progress)
    except IngestInterrupted as stopped:
        bar.close()
        print(f"m2v-edge ingest: interrupted: {stopped.committed} documents were committed to {args.outbox}; "
              "running the same ingest again is safe (documents already in the outbox are replaced)", file=sys.stderr)
        return 130
    bar.close()
    rate = report.written / report.seconds if report.seconds > 0 else 0.0
    line = (
        f"ingested {report.written} documents from {report.lines} lines into {args.outbox} "
        f"({report.batches} batches, {report.seconds:.2f}s, {rate:,.0f} docs/s; model {embedder.fingerprint})"
    )
    if report.duplicates:
        line += f"; {report.duplicates} lines repeated an earlier id: the last one won"
    if report.zero_vectors:
        line += f"; {report.zero_vectors} texts gave zero vectors (see the warning)"
    print(line)
    return 0


def _sync(args: argparse.Namespace) -> int:
    from m2v_edge.sync import MilvusCollection, Outbox, RetryPolicy, Syncer

    retry = RetryPolicy(max_attempts=args.max_attempts, max_delay=args.max_delay)
    where = opt.target(args)
    stop = threading.Event()
    bar = Progress("sync", show_progress(args.progress) and not args.watch, unit="rows")
    with Outbox.open(args.outbox) as outbox:
        embedder = opt.embedder(args, outbox_fingerprint=outbox.fingerprint) if args.bundle else None
        collection = MilvusCollection(where, args.collection, timeout=args.timeout)
        syncer = Syncer(outbox, collection, embedder=embedder, batch_size=args.batch_size, retry=retry, stop=stop,
                        progress=bar.update, on_retry=_print_retry, reconcile=args.reconcile,
                        retry_rejected=args.retry_rejected)
        print(f"m2v-edge sync: kiosk {outbox.kiosk_id} -> {where} collection {args.collection}; an unreachable "
              f"Milvus is tried {retry.max_attempts} times over up to {opt.duration(retry.worst_case())} before "
              + ("the sync pauses and tries again" if args.watch else "the sync gives up"), file=sys.stderr, flush=True)
        try:
            if args.watch:
                opt.stop_on_signals(stop)
                print(f"watching {args.outbox} -> {where} collection {args.collection} every {args.interval:g}s "
                      "(Ctrl-C to stop)", flush=True)
                report = syncer.watch(interval=args.interval, on_pass=_print_pass)
            else:
                report = syncer.run()
        finally:
            syncer.close()
            bar.close()
    for repair in report.repairs if not args.watch else ():  # --watch printed them pass by pass
        if repair.found_anything:
            print(_repair_line(repair))
    rate = (report.upserted + report.deleted) / report.seconds if report.seconds > 0 else 0.0
    print(
        f"synced {report.upserted} rows and {report.deleted} deletions to {where} collection {args.collection} "
        f"in {report.seconds:.2f}s ({rate:,.0f} rows/s, {report.failed_attempts} failed attempts); "
        f"{report.waiting} still waiting" + _notes(report)
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from m2v_edge.sync import Outbox

    with Outbox.open(args.outbox) as outbox:
        status = outbox.status()
        rejected = outbox.rejected(limit=REJECTED_SHOWN)
    if args.json:
        data: dict[str, Any] = {key: getattr(status, key) for key in status.__dataclass_fields__}
        data["targets"] = [{"uri": uri, "collection": name, "synced": when} for uri, name, when in status.targets]
        data["rejected_rows"] = [{"id": row.id, "error": row.error} for row in rejected]
        print(json.dumps(data, sort_keys=True))
        return 0
    print(f"outbox      {status.path}")
    print(f"kiosk       {status.kiosk_id}")
    print(f"model       {status.fingerprint} (dim {status.dim})")
    free = f" ({opt.size(status.free_bytes)} unused: 'm2v-edge vacuum' gives it back)" if status.free_bytes else ""
    print(f"size        {opt.size(status.file_bytes)}{free}")
    print(f"pending     {status.pending}")
    print(f"synced      {status.synced}")
    print(f"deleted     {status.deleted_pending} waiting to be deleted remotely")
    if status.oldest_pending is not None:
        print(f"oldest      waiting for {opt.duration(time.time() - status.oldest_pending)}")
    if status.failing:
        print(f"failing     {status.failing} rows; last error: {status.last_error}")
    if status.rejected:
        print(f"rejected    {status.rejected} rows Milvus refused for good (ingest them again fixed, or "
              "'m2v-edge sync --retry-rejected'):")
        for row in rejected:
            print(f"  {row.id}: {row.error}")
        if status.rejected > len(rejected):
            print(f"  ... and {status.rejected - len(rejected)} more")
    for uri, name, when in status.targets:
        print(f"synced to   {uri} collection {name}, {opt.duration(time.time() - when)} ago")
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


def _print_retry(attempt: int, attempts: int, wait: float, error: Exception) -> None:
    print(f"m2v-edge sync: attempt {attempt} of {attempts} failed: {error}; next attempt in {wait:.1f}s",
          file=sys.stderr, flush=True)


def _print_pass(report: Any) -> None:
    for repair in report.repairs:
        if repair.found_anything:
            print(_repair_line(repair), flush=True)
    print(f"synced {report.upserted} rows, {report.deleted} deletions; {report.waiting} waiting{_notes(report)}; "
          "watching for more", flush=True)


def _notes(report: Any) -> str:
    notes = ""
    if report.retried:
        notes += f"; {report.retried} rows refused earlier sent again (--retry-rejected)"
    if report.shortened:
        notes += f"; {report.shortened} texts cut to Milvus's 65,535 bytes (the outbox keeps them whole)"
    if report.embedded_again:
        notes += f"; {report.embedded_again} rows embedded again"
    if report.rejected:
        notes += f"; {report.rejected} rows refused by Milvus and set aside ('m2v-edge status' lists them)"
    return notes


def _repair_line(repair: Any) -> str:
    return (f"compared the collection with the outbox ({repair.reason}): {repair.matching} rows as synced, "
            f"{repair.missing} missing, {repair.stale} stale, {repair.extra} extra; sending what differs")
