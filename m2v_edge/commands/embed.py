"""`m2v-edge export` and `m2v-edge encode`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from m2v_edge.bundle import DEFAULT_VARIANTS, VARIANTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` and `encode` commands."""
    export = subparsers.add_parser("export", help="export a Model2Vec model (folder or Hub id) to a bundle")
    export.add_argument("source", help="Model2Vec model folder or Hub id (org/name)")
    export.add_argument("-o", "--output", required=True, type=Path, help="bundle folder to create")
    defaults = ",".join(DEFAULT_VARIANTS)
    export.add_argument(
        "--variants", default=defaults, help=f"comma-separated: {', '.join(VARIANTS)} (default {defaults})"
    )
    export.add_argument(
        "--dim", type=int, metavar="N", help="keep the first N dimensions only (re-normalised if the model normalises)"
    )
    export.add_argument("--revision", help="Hub branch, tag or commit")
    export.add_argument("--subfolder", help="the model's folder inside SOURCE (a folder or a Hub repository)")
    export.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None,
        help="override the model config's normalize (default: the config's)",
    )
    export.add_argument(
        "--max-length", type=_max_length, metavar="N", help="override the config's max_length ('none': no truncation)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    export.set_defaults(handler=_export)

    encode = subparsers.add_parser("encode", help="encode texts (one per line, or JSONL with 'text') with a bundle")
    encode.add_argument("bundle", type=Path)
    encode.add_argument("--variant", help="bundle variant (default: the device profile's choice)")
    encode.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")
    encode.add_argument("--input", default="-", help="text file, one text per line, or .jsonl with a 'text' field (- for stdin)")
    encode.add_argument("--format", choices=("jsonl", "npy"), default="jsonl", help="output format (default jsonl)")
    encode.add_argument("--output", default="-", help="output file (- for stdout; npy needs a file)")
    encode.add_argument("--batch", type=_positive, default=4096, help="texts encoded per step (bounds memory)")
    encode.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    encode.set_defaults(handler=_encode)


def _export(args: argparse.Namespace) -> int:
    from m2v_edge.bundle import read_manifest
    from m2v_edge.errors import MissingExtraError

    try:
        from m2v_edge.export import FROM_CONFIG, export_model
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
        subfolder=args.subfolder,
        normalize=args.normalize,
        max_length={None: FROM_CONFIG, "none": None}.get(args.max_length, args.max_length),
    )
    manifest = read_manifest(out)
    of = f" of {manifest.truncated_from}" if manifest.truncated_from else ""
    print(f"exported {manifest.source.id} (dim {manifest.dim}{of}) to {out}")
    for variant, entry in manifest.variants.items():
        table = manifest.tables.get(variant)
        files = f"{entry.file} + {table.file}" if table else entry.file
        print(f"  {variant:<5} {manifest.variant_size(variant) / 1e6:8.2f} MB  {files}")
    return 0


def _max_length(text: str) -> int | str:
    """`--max-length`: a token count, or 'none' for no truncation."""
    return "none" if text.strip().lower() == "none" else _positive(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _read_texts(source: str) -> Iterator[str]:
    """Texts one per line (a line's end removed), or the 'text' field of each JSONL line; streamed.

    Lines are decoded one by one so that an error names the right line."""
    handle = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115 - closed below
    as_jsonl = source.endswith(".jsonl")
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{source} line {number} is not UTF-8 ({exc.reason})") from None
            if not as_jsonl:
                yield line
                continue
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{source} line {number}: expected a JSON object with a 'text' field") from None
            if not isinstance(text, str):
                kind = type(text).__name__
                raise ValueError(f"{source} line {number}: 'text' is {kind}, not a string")  # noqa: TRY004
            yield text


def _encode(args: argparse.Namespace) -> int:
    from m2v_edge.commands.progress import Progress, show_progress
    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.runtime.stream import encode_stream

    if args.format == "npy" and args.output == "-":
        raise ValueError("--format npy needs --output FILE")
    if args.output != "-":
        _check_output(Path(args.output))
    embedder = EdgeEmbedder(args.bundle, variant=args.variant, profile=args.profile)
    bar = Progress("encode", show_progress(args.progress), unit="texts")
    vectors = _counted(encode_stream(embedder, _read_texts(args.input), batch=args.batch), bar)
    try:
        if args.format == "npy":
            with _atomic(Path(args.output), "wb") as handle:
                count = _write_npy(handle, vectors, embedder.dim)
        elif args.output == "-":
            count = _write_jsonl(sys.stdout, vectors)
        else:
            with _atomic(Path(args.output), "w") as handle:
                count = _write_jsonl(handle, vectors)
    finally:
        bar.close()
    print(f"encoded {count} texts", file=sys.stderr)
    return 0


def _counted(blocks: Iterator[np.ndarray], bar: Any) -> Iterator[np.ndarray]:
    """The blocks, reporting the running count of texts to a progress bar."""
    done = 0
    for block in blocks:
        yield block
        done += len(block)
        bar.update(done)


def _check_output(path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"--output {path}: folder {path.parent} does not exist")


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    """A file written under a temporary name beside `path`, renamed to it only when writing succeeded: an
    interrupted or failed run never leaves a half-written file that looks complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


JSONL_ROWS = 256
"""Vectors turned into Python floats at a time for JSONL output: bounds the memory of that step (~2 MB)."""


def _write_jsonl(out: IO[str], blocks: Iterator[np.ndarray]) -> int:
    """One JSON array of 7-decimal floats per vector, `JSONL_ROWS` vectors at a time."""
    count = 0
    for block in blocks:
        for start in range(0, len(block), JSONL_ROWS):
            rows = np.round(block[start : start + JSONL_ROWS].astype(np.float64), 7).tolist()
            out.write("".join(f"{json.dumps(row)}\n" for row in rows))
            count += len(rows)
    return count


def _write_npy(handle: IO[bytes], blocks: Iterator[np.ndarray], dim: int) -> int:
    """Write an .npy file incrementally; the fixed-size header is rewritten with the final count at the end."""
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
