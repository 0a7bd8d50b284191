"""Options and helpers shared by the outbox commands (`sync`, `search`, `fleet`): targets, bundles, durations."""

from __future__ import annotations

import argparse
import math
import signal
import threading
from pathlib import Path
from typing import Any


def target_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """`--uri`, `--collection` and `--token-file` (and a `--token` that is refused without echoing its value)."""
    parser.add_argument("--uri", required=required, help="Milvus Lite path (*.db) or http(s)://host:port")
    parser.add_argument("--collection", required=required, help="collection name")
    parser.add_argument(
        "--token-file", type=Path, help="file holding the Milvus token (default: $M2V_EDGE_MILVUS_TOKEN)"
    )
    refuse_token(parser, "the Milvus token", "$M2V_EDGE_MILVUS_TOKEN")


def refuse_token(parser: argparse.ArgumentParser, what: str, env: str) -> None:
    """A hidden `--token` that refuses any value without echoing it (argv is readable by every user of the
    machine), saying to put `what` in `env` or a `--token-file` instead."""
    message = (f"{what} is never taken on the command line (other users can read it there); put it in {env} or a "
               "file given with --token-file")

    class RefuseToken(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            parser.error(message)

    parser.add_argument("--token", nargs="?", action=RefuseToken, help=argparse.SUPPRESS)


def target(args: argparse.Namespace) -> Any:
    """The parsed `--uri` with its token."""
    from m2v_edge.sync import parse_target, read_token

    return parse_target(args.uri, token=read_token(args.token_file))


def bundle_args(parser: argparse.ArgumentParser, *, required: bool, bundle_help: str, variant_help: str) -> None:
    """`--bundle`, `--variant` and `--profile`."""
    parser.add_argument("--bundle", required=required, type=Path, help=bundle_help)
    parser.add_argument("--variant", help=variant_help)
    parser.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")


def embedder(args: argparse.Namespace, *, outbox_fingerprint: str | None = None) -> Any:
    """The `EdgeEmbedder` of `--bundle`; its variant defaults to the outbox's (from its fingerprint), when given."""
    from m2v_edge.runtime import EdgeEmbedder

    variant = args.variant
    if variant is None and outbox_fingerprint is not None:
        parts = outbox_fingerprint.split(":")  # <weights>:<variant>:<normalize>:<dim>
        variant = parts[1] if len(parts) > 1 else None
    return EdgeEmbedder(args.bundle, variant=variant, profile=args.profile)


def describe_model(embedder: Any) -> str:
    """The model and variant an embedder uses, as the commands' first stderr line names them."""
    from m2v_edge.sync.ingest import model_name

    return f"{model_name(embedder)}, variant {embedder.variant} (device profile {embedder.profile.name})"


def progress_flag(parser: argparse.ArgumentParser) -> None:
    """`--progress` / `--no-progress`."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def seconds(text: str) -> float:
    """A finite duration > 0 (a zero, negative or NaN interval would make `--watch` spin)."""
    return _duration_arg(text, zero_allowed=False)


def delay(text: str) -> float:
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


def positive(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop` (a long-running command then finishes what it is doing and exits)."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as SIGINT does, so that both clean up the same way."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def duration(seconds: float) -> str:
    """A duration for people: 45s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def size(size_bytes: int) -> str:
    """A file size for people: 812 kB, 4.3 MB."""
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1000:.0f} kB"
    return f"{size_bytes / 1_000_000:.1f} MB"
