"""`export_model`: a Model2Vec source in, a verified bundle folder out."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from m2v_edge import __version__
from m2v_edge.bundle import (
    DEFAULT_VARIANTS,
    TOKENIZER_FILE,
    VARIANTS,
    FileEntry,
    Manifest,
    SourceInfo,
    model_file,
    write_manifest,
)
from m2v_edge.errors import ExportError
from m2v_edge.export.graph import build_graph
from m2v_edge.export.output import check_not_source, check_out_dir, make_staging
from m2v_edge.export.output import replace as _replace
from m2v_edge.export.source import FROM_CONFIG, FromConfig, ModelSource, load_source
from m2v_edge.export.source_table import SourceTable
from m2v_edge.export.tables import write_data_files
from m2v_edge.export.tokenizer_core import write_core_tokenizer

logger = logging.getLogger(__name__)

def export_model(
    source: str | Path,
    out_dir: str | Path,
    *,
    variants: Iterable[str] = DEFAULT_VARIANTS,
    revision: str | None = None,
    token: str | None = None,
    overwrite: bool = False,
    dimensionality: int | None = None,
    subfolder: str | None = None,
    normalize: bool | None = None,
    max_length: int | None | FromConfig = FROM_CONFIG,
) -> Path:
    """Export a Model2Vec model (local folder or Hub id) to an m2v-edge bundle folder.

    The bundle is written to a temporary folder beside `out_dir` and renamed into place only when complete,
    so a failed export leaves nothing half-written (see `m2v_edge.export.output`). Exporting the same source twice
    gives identical bytes.

    :param source: a Model2Vec model folder (any of the three layouts) or a Hub id such as
        `minishlab/potion-base-8M` (downloaded with huggingface_hub; offline it is read from the cache).
    :param out_dir: the bundle folder to create.
    :param variants: table precisions to write, any of `fp32`, `fp16`, `int8`, `int4`.
    :param revision: Hub branch, tag or commit (Hub ids only).
    :param token: Hub token for private or gated models (Hub ids only).
    :param overwrite: replace `out_dir` if it exists and is an m2v-edge bundle or an empty folder. Anything else
        there (a file, a link, another folder, the source model or a folder holding it) is refused, with or without.
    :param dimensionality: keep only the first N dimensions of the table (Model2Vec tables are PCA-ordered), as
        model2vec's `StaticModel.from_pretrained(..., dimensionality=N)` does; vectors are re-normalised when the
        model normalises. Recorded in the manifest (`dim` = N, `truncated_from` = the source's dim).
    :param subfolder: the model's folder inside `source` (a local folder or a Hub repository).
    :param normalize: override the config's `normalize` (model2vec's `from_pretrained(..., normalize=...)`).
    :param max_length: override the config's `max_length` in tokens; None disables truncation. The config's own
        value is then not used, so an invalid one does not matter.
    :return: the bundle folder.
    """
    chosen = _check_variants(variants)
    if dimensionality is not None and not _is_whole(dimensionality):
        raise ExportError(f"dimensionality must be a whole number, got {dimensionality!r}")
    if normalize is not None and not isinstance(normalize, bool):
        raise ExportError(f"normalize must be True, False or None, got {normalize!r}")
    if not (max_length is FROM_CONFIG or max_length is None or (_is_whole(max_length) and max_length >= 1)):
        raise ExportError(f"max_length must be a whole number >= 1, or None for no truncation, got {max_length!r}")
    out = Path(out_dir)
    check_out_dir(out, overwrite=overwrite)
    src = load_source(
        source, revision=revision, token=token, subfolder=subfolder, normalize=normalize, max_length=max_length
    )
    check_not_source(out, src.folder)
    table = _truncate(src, dimensionality)
    staging = make_staging(out)
    try:
        _write_bundle(src, table, staging, chosen)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported %s to %s (%s)", src.source_id, out, ", ".join(chosen))
    return out


def _check_variants(variants: Iterable[str]) -> tuple[str, ...]:
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",")]
    chosen = tuple(dict.fromkeys(variants))
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or not chosen:
        raise ExportError(f"unknown variant(s) {unknown or '(none given)'}; choose from {', '.join(VARIANTS)}")
    return chosen


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _truncate(src: ModelSource, dimensionality: int | None) -> SourceTable:
    """The source table, or its first `dimensionality` columns; out-of-range values are refused."""
    dim = src.table.shape[1]
    if dimensionality is None:
        return src.table
    if not 1 <= dimensionality <= dim:
        raise ExportError(
            f"dimensionality {dimensionality} is out of range for {src.source_id}: its table has {dim} dimensions, "
            f"so choose from 1 to {dim}"
        )
    return src.table.truncated(dimensionality)


def _write_bundle(src: ModelSource, table: SourceTable, folder: Path, variants: tuple[str, ...]) -> None:
    (folder / TOKENIZER_FILE).write_text(src.tokenizer.text, encoding="utf-8")
    # Every array a graph reads is ONNX external data in the variant's data file: onnxruntime maps the file instead
    # of parsing arrays out of the graph and copying them (a faster load, one copy in memory, shared between
    # processes), and `m2v_edge.runtime.table` reads them without onnxruntime. The tables (numpy and file writes,
    # which release the GIL) are written while the tokenizer is compiled (Python): a 500k-piece model's export
    # takes the longer of the two instead of their sum.
    with ThreadPoolExecutor(1, thread_name_prefix="m2v-edge-tables") as pool:
        tables = pool.submit(write_data_files, table, folder, variants, mapping=src.mapping, weights=src.weights)
        core_tokenizer = write_core_tokenizer(
            folder, src.tokenizer.tokenizer, src.tokenizer.spec, id_limit=src.vocab_size, max_length=src.max_length
        )
        data_files = tables.result()
    entries = {}
    for variant in variants:
        model = build_graph(
            data_files[variant],
            dim=table.shape[1],
            unk_id=src.tokenizer.unk_id,
            normalize=src.normalize,
            producer_version=__version__,
        )
        (folder / model_file(variant)).write_bytes(model.SerializeToString())
        entries[variant] = FileEntry.of(folder, model_file(variant))
    for licence in src.licence_files:
        shutil.copyfile(licence, folder / licence.name)
    manifest = Manifest(
        source=SourceInfo(id=src.source_id, revision=src.revision, sha256=src.weights_sha256),
        dim=table.shape[1],
        normalize=src.normalize,
        max_length=src.max_length,
        median_token_length=src.tokenizer.median_token_length,
        unk_id=src.tokenizer.unk_id,
        pad_id=src.tokenizer.pad_id,
        vocab_size=src.vocab_size,
        variants=entries,
        tables=data_files,
        tokenizer=FileEntry.of(folder, TOKENIZER_FILE),
        licence_files=tuple(FileEntry.of(folder, p.name) for p in src.licence_files),
        exporter_version=__version__,
        extra=_facts(src),
        truncated_from=src.table.shape[1] if table.shape[1] < src.table.shape[1] else None,
        core_tokenizer=core_tokenizer,
    )
    write_manifest(folder, manifest)


def _facts(src: ModelSource) -> dict[str, Any]:
    """What the manifest records about the source beyond the bundle's own layout."""
    facts: dict[str, Any] = {"table_dtype": src.table.stored_dtype, "table_rows": src.table.shape[0]}
    if src.overrides:
        facts["config_overrides"] = dict(src.overrides)
    return facts
