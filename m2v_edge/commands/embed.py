"""`m2v-edge export` and `m2v-edge encode`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` and `encode` commands."""
    export = subparsers.add_parser("export", help="export a Model2Vec model (folder or Hub id) to a bundle")
    export.add_argument("source", help="Model2Vec model folder or Hub id (org/name)")
    export.add_argument("-o", "--output", required=True, type=Path, help="bundle folder to create")
    export.add_argument(
        "--variants", default="fp32,int8", help="comma-separated: fp32, fp16, int8, int4 (default fp32,int8)"
    )
    export.add_argument(
        "--dim", type=int, metavar="N", help="keep the first N dimensions only (re-normalised if the model normalises)"
    )
    export.add_argument("--revision", help="Hub branch, tag or commit")
    export.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    export.set_defaults(handler=_export)

    encode = subparsers.add_parser("encode", help="encode texts (one per line, or JSONL with 'text') with a bundle")
    encode.add_argument("bundle", type=Path)
    encode.add_argument("--variant", help="bundle variant (default: the device profile's choice)")
    encode.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")
    encode.add_argument("--input", default="-", help="text file, one text per line, or .jsonl with a 'text' field (- for stdin)")
    encode.add_argument("--format", choices=("jsonl", "npy"), default="jsonl", help="output format (default jsonl)")
    encode.add_argument("--output", default="-", help="output file (- for stdout; npy needs a file)")
    encode.add_argument("--batch", type=int, default=4096, help="texts encoded per step (bounds memory)")
    encode.set_defaults(handler=_encode)


def _export(args: argparse.Namespace) -> int:
    import os

    from m2v_edge.bundle import read_manifest
    from m2v_edge.errors import MissingExtraError

    try:
        from m2v_edge.export import export_model
    except ImportError:
        raise MissingExtraError("export", "m2v-edge export") from None
    out = export_model(
        args.source,
        args.output,
        variants=args.variants,
        revision=args.revision,
        token=os.environ.get("HF_TOKEN"),
        overwrite=args.overwrite,
        dimensionality=args.dim,
    )
    manifest = read_manifest(out)
    of = f" of {manifest.truncated_from}" if manifest.truncated_from else ""
    print(f"exported {manifest.source.id} (dim {manifest.dim}{of}) to {out}")
    for name, entry in manifest.variants.items():
        print(f"  {entry.file:<20} {entry.size / 1e6:8.2f} MB")
    return 0


def _read_texts(source: str) -> Iterator[str]:
    handle = sys.stdin if source == "-" else open(source, encoding="utf-8")
    as_jsonl = source.endswith(".jsonl")
    with handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if as_jsonl:
                try:
                    record = json.loads(line)
                    text = record["text"]
                except (ValueError, KeyError, TypeError):
                    raise ValueError(f"{source} line {number}: expected a JSON object with a 'text' field") from None
                yield text
            else:
                yield line


def _encode(args: argparse.Namespace) -> int:
    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.runtime.stream import encode_stream

    if args.format == "npy" and args.output == "-":
        raise ValueError("--format npy needs --output FILE")
    embedder = EdgeEmbedder(args.bundle, variant=args.variant, profile=args.profile)
    vectors = encode_stream(embedder, _read_texts(args.input), batch=args.batch)
    if args.format == "npy":
        count = _write_npy(Path(args.output), vectors, embedder.dim)
    else:
        out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
        with out:
            count = 0
            for block in vectors:
                for row in block:
                    out.write(json.dumps([round(float(x), 7) for x in row]) + "\n")
                count += len(block)
    print(f"encoded {count} texts", file=sys.stderr)
    return 0


def _write_npy(path: Path, blocks: Iterator[np.ndarray], dim: int) -> int:
    """Write an .npy file incrementally; the fixed-size header is rewritten with the final count at the end."""
    with open(path, "wb") as handle:
        handle.write(_npy_header(0, dim))
        count = 0
        for block in blocks:
            handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
            count += len(block)
        handle.seek(0)
        handle.write(_npy_header(count, dim))
    return count


def _npy_header(count: int, dim: int) -> bytes:
    """An .npy version 1.0 header of a fixed 128 bytes for a float32 [count, dim] array."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count}, {dim}), }}"
    body = text.ljust(128 - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")
