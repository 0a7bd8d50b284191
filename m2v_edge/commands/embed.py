"""`m2v-edge export` and `m2v-edge encode`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2v_edge.bundle import DEFAULT_VARIANTS, VARIANTS

if TYPE_CHECKING:
    import numpy as np

    from m2v_edge.commands.encode_output import Block

logger = logging.getLogger(__name__)


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
    export.add_argument(
        "--token-file", type=Path, metavar="FILE",
        help="file holding the Hugging Face token for private or gated models (default: $HF_TOKEN, then the token "
        "'hf auth login' saved)",
    )
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

    encode = subparsers.add_parser(
        "encode", help="encode texts (one per line, or JSONL objects with a text field) with a bundle"
    )
    encode.add_argument("bundle", type=Path)
    encode.add_argument("--variant", help="bundle variant (default: the device profile's choice)")
    encode.add_argument("--profile", default="auto", help="device profile name or TOML path (default: auto)")
    encode.add_argument(
        "--input", default="-", help="text file, one text per line, or JSONL file (- for stdin, the default)"
    )
    encode.add_argument(
        "--input-format", choices=("text", "jsonl"),
        help="how to read --input (default: jsonl for a .jsonl name or when the first line is a JSON object with "
        "the text field, else text)",
    )
    encode.add_argument(
        "--text-field", default="text", metavar="NAME", help="the JSONL field holding the text (default: text)"
    )
    encode.add_argument(
        "--format", choices=("jsonl", "npy"), default="jsonl",
        help="output format (default jsonl: one vector per line; for JSONL input an object with the input's id, "
        "metadata and the vector)",
    )
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
        token=_token(args.token_file),
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


def _token(token_file: Path | None) -> str | None:
    """The Hub token: from `--token-file`, else `$HF_TOKEN` (None: huggingface_hub's own saved login, if any)."""
    if token_file is None:
        return os.environ.get("HF_TOKEN") or None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ValueError(f"--token-file {token_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file {token_file}: cannot read it ({exc})") from None
    if not token:
        raise ValueError(f"--token-file {token_file} is empty; put the Hugging Face token in it")
    return token


def _encode(args: argparse.Namespace) -> int:
    from m2v_edge.commands.encode_input import TextInput
    from m2v_edge.commands.encode_output import check_output, opened_output, write_jsonl, write_npy
    from m2v_edge.commands.progress import Progress, show_progress
    from m2v_edge.runtime import EdgeEmbedder
    from m2v_edge.runtime.embedder import zero_vector_logger

    if args.format == "npy" and args.output == "-":
        raise ValueError("--format npy needs --output FILE")
    if args.output != "-":
        check_output(Path(args.output))
    with TextInput(args.input, args.input_format, args.text_field) as rows:
        embedder = EdgeEmbedder(args.bundle, variant=args.variant, profile=args.profile)
        using = _variant_used(embedder, chosen=args.variant is not None)
        logger.info("encoding with %s", using)
        zeros = _ZeroVectors()
        bar = Progress(f"encode ({embedder.variant})", show_progress(args.progress), unit="texts")
        blocks = _encoded_blocks(embedder, iter(rows), args.batch, bar, zeros)
        npy = args.format == "npy"
        # zero vectors are counted over the whole input, not logged by every encode call
        with closing(bar), _silenced(zero_vector_logger), opened_output(args.output, binary=npy) as out:
            count = write_npy(out, blocks, embedder.dim) if npy else write_jsonl(out, blocks)
            rows.check()  # before the output file is renamed into place
    print(f"encoded {count} text{'' if count == 1 else 's'} with {using}", file=sys.stderr)
    if zeros.count:
        print(f"m2v-edge encode: warning: {zeros.message(count, embedder.manifest.source.id)}", file=sys.stderr)
    return 0


@contextmanager
def _silenced(logger: logging.Logger) -> Iterator[None]:
    """`logger` shows errors only, for the duration."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _variant_used(embedder: Any, *, chosen: bool) -> str:
    """The model and variant an `encode` uses, who chose it, and how to get model2vec's exact vectors if not fp32."""
    used = f"{embedder.manifest.source.id} {embedder.variant}"
    notes = [] if chosen else [f"the {embedder.profile.name} profile's choice"]
    if embedder.variant != "fp32" and "fp32" in embedder.manifest.variants:
        notes.append("--variant fp32 gives model2vec's vectors exactly")
    return f"{used} ({'; '.join(notes)})" if notes else used


class _ZeroVectors:
    """The texts that gave zero vectors, counted over a whole input (a few kept to name their script)."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        from m2v_edge.runtime.embedder import ZERO_VECTOR_EXAMPLES
        from m2v_edge.runtime.zero_vectors import zero_rows

        rows = zero_rows(vectors)
        self.count += len(rows)
        self.examples += [texts[index] for index in rows[: ZERO_VECTOR_EXAMPLES - len(self.examples)]]

    def message(self, total: int, model: str) -> str:
        from m2v_edge.runtime.zero_vectors import zero_vector_message

        return zero_vector_message(self.count, total, model, self.examples)


def _encoded_blocks(embedder: Any, rows: Iterator[Any], batch: int, bar: Any, zeros: _ZeroVectors) -> Iterator[Block]:
    """The vectors of consecutive groups of at most `batch` rows, with the fields the rows carry."""
    done = 0
    while block := list(islice(rows, batch)):
        texts = [row.text for row in block]
        vectors = embedder.encode(texts)
        zeros.add(texts, vectors)
        yield (None if block[0].carried is None else [row.carried for row in block]), vectors
        done += len(block)
        bar.update(done)
