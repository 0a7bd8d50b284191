"""`m2v-edge serve`: the embedding and search API (`m2v_edge.serve`) on this device, until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from m2v_edge.commands import sync_options as opt
from m2v_edge.serve.settings import Limits


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` command."""
    serve = subparsers.add_parser(
        "serve",
        help="serve embeddings over HTTP (OpenAI and TEI APIs), and with --outbox offline search and a search page",
        description="Serve a bundle's embeddings over HTTP: POST /v1/embeddings (OpenAI), POST /embed (Hugging Face "
        "TEI), GET /health, GET /info; with --outbox also POST /search, POST /documents and a search page at /. "
        "Binds 127.0.0.1 unless --host says otherwise; any other address needs a bearer token, read from "
        "$M2V_EDGE_SERVE_TOKEN or --token-file. Logs one line per request. Stops gracefully on SIGTERM.",
    )
    serve.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle folder or installed model name")
    serve.add_argument("--variant", help="bundle variant (default: the outbox's, else the device profile's choice)")
    serve.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--outbox", type=Path, help="outbox for /search and /documents (created when missing)")
    serve.add_argument("--kiosk-id", help="with --outbox: this kiosk's id, set when the outbox is created (default: "
                       "from the machine: host name and a hash of /etc/machine-id)")
    serve.add_argument("--token-file", type=Path, help="file holding the bearer token (default: $M2V_EDGE_SERVE_TOKEN)")
    opt.refuse_token(serve, "the serve token", "$M2V_EDGE_SERVE_TOKEN")
    serve.add_argument("--max-body-bytes", type=opt.positive, default=Limits.max_body_bytes,
                       help=f"largest request body (default {Limits.max_body_bytes})")
    serve.add_argument("--max-texts", type=opt.positive, default=Limits.max_texts,
                       help=f"texts or records per request (default {Limits.max_texts})")
    serve.add_argument("--max-text-chars", type=opt.positive, default=Limits.max_text_chars,
                       help=f"characters per text (default {Limits.max_text_chars})")
    serve.add_argument("--no-grouping", dest="group_requests", action="store_false",
                       help="hand each request to the encoding thread alone (default: those that arrive together, "
                       "in one go)")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from m2v_edge.serve import ServeSettings, create_app, listen, read_serve_token, run_server, url_of

    settings = ServeSettings(
        host=args.host, port=args.port, token=read_serve_token(args.token_file), outbox=args.outbox,
        limits=Limits(args.max_body_bytes, args.max_texts, args.max_text_chars), group_requests=args.group_requests,
        kiosk_id=args.kiosk_id,
    )
    sock = listen(settings.host, settings.port)  # first: a port in use is refused before the model loads
    embedder = opt.embedder(args, outbox_fingerprint=_outbox_fingerprint(args.outbox))
    app = create_app(embedder, settings)
    logging.getLogger("m2v_edge.serve").setLevel(logging.INFO)
    url = url_of(sock)

    def ready() -> None:
        print(f"m2v-edge serve: {opt.describe_model(embedder)} on {url}"
              + (f" (outbox {args.outbox})" if args.outbox else ""), file=sys.stderr, flush=True)

    run_server(app, sock, on_ready=ready)
    return 0


def _outbox_fingerprint(path: Path | None) -> str | None:
    """The fingerprint of an existing outbox (its variant is the default), else None."""
    if path is None or not path.exists():
        return None
    from m2v_edge.sync import Outbox

    with Outbox.open(path) as outbox:
        return outbox.fingerprint
