"""`m2v-edge reembed`, `vacuum` and `alias`: moving a kiosk to a new model, keeping its outbox small, and switching
a fleet's readers from one collection to another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from m2v_edge.commands import sync_options as opt
from m2v_edge.commands.progress import Progress, show_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `reembed`, `vacuum` and `alias` commands."""
    reembed = subparsers.add_parser(
        "reembed", help="embed an outbox's texts again with a new model (resumable, switched over at once)",
        description="Embed every document of an outbox again with a new bundle or variant. A reembed stopped at "
        "any point leaves the outbox on the old model; running it again continues. When done, every document is "
        "pending, for a sync to a collection of the new model.",
    )
    reembed.add_argument("--outbox", required=True, type=Path)
    opt.bundle_args(reembed, required=True, bundle_help="the new model's bundle folder",
                    variant_help="bundle variant (default: the device profile's choice)")
    reembed.add_argument("--batch-size", type=opt.positive, default=512, help="texts per batch (default 512)")
    opt.progress_flag(reembed)
    reembed.set_defaults(handler=_reembed)

    vacuum = subparsers.add_parser("vacuum", help="give an outbox's unused space back to the file system")
    vacuum.add_argument("--outbox", required=True, type=Path)
    vacuum.set_defaults(handler=_vacuum)

    alias = subparsers.add_parser(
        "alias", help="point a Milvus alias at a collection (readers switch at once)",
        description="Point ALIAS at COLLECTION, creating the alias when missing. When the alias points at another "
        "collection, every kiosk that synced to that one must have synced to COLLECTION too, unless --force.",
    )
    opt.target_args(alias)
    alias.add_argument("--alias", required=True, help="the alias readers search")
    alias.add_argument("--force", action="store_true", help="switch even if some kiosks have not synced to it yet")
    alias.set_defaults(handler=_alias)


def _reembed(args: argparse.Namespace) -> int:
    from m2v_edge.sync import Outbox
    from m2v_edge.sync.reembed import reembed

    embedder = opt.embedder(args)
    bar = Progress("reembed", show_progress(args.progress), unit="docs")
    started = []

    def progress(done: int, total: int) -> None:
        if not started:  # the outbox is open and the model new: a user error would have been said by now
            print(f"m2v-edge reembed: embedding with {opt.describe_model(embedder)}", file=sys.stderr, flush=True)
            started.append(True)
        bar.update(done, total)

    opt.interrupt_on_sigterm()
    with Outbox.open(args.outbox) as outbox:
        try:
            report = reembed(outbox, embedder, batch_size=args.batch_size, progress=progress)
        except KeyboardInterrupt:
            bar.close()
            print(f"m2v-edge reembed: interrupted; {args.outbox} is still on model {outbox.fingerprint}, and what was "
                  "embedded is kept: run the same reembed again to continue", file=sys.stderr)
            return 130
    bar.close()
    resumed = f", {report.resumed} of them by an earlier run" if report.resumed else ""
    print(f"re-embedded {report.documents} documents of {args.outbox} in {report.seconds:.2f}s{resumed}: model "
          f"{report.old_fingerprint} -> {report.new_fingerprint}; all are pending: sync them to a collection for "
          "the new model")
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    from m2v_edge.sync import Outbox

    with Outbox.open(args.outbox) as outbox:
        before, after = outbox.vacuum()
    print(f"vacuumed {args.outbox}: {opt.size(before)} -> {opt.size(after)}")
    return 0


def _alias(args: argparse.Namespace) -> int:
    from m2v_edge.errors import MilvusSyncError
    from m2v_edge.sync import MilvusCollection

    with MilvusCollection(opt.target(args), args.collection, must_exist=True) as collection:
        new = collection.describe()
        current = collection.alias_target(args.alias)
        if current == new.name:
            print(f"alias {args.alias} already points at {new.name}")
            return 0
        if current is not None and not args.force:
            behind = sorted(set(collection.describe(name=current).kiosk_tokens) - set(new.kiosk_tokens))
            if behind:
                raise MilvusSyncError(
                    f"{len(behind)} kiosks synced to {current} but not yet to {new.name} ({', '.join(behind[:10])}"
                    f"{', ...' if len(behind) > 10 else ''}): readers would miss their documents; wait until they "
                    "have synced, or pass --force"
                )
        collection.point_alias(args.alias)
    print(f"alias {args.alias} now points at {new.name} (before: {current or 'no alias'})")
    return 0
