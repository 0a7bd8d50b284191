"""Verifying bundle files before anything reads them: inside the folder, regular, the manifest's size and sha256,
and the content checks of `m2v_edge.bundle.checks`, once per file state (`m2v_edge.bundle.stamps`)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

from m2v_edge.bundle import checks, stamps
from m2v_edge.bundle.files import FileEntry, bundle_file_stat, leaves_folder, sha256_file
from m2v_edge.bundle.format import VARIANTS, model_file
from m2v_edge.bundle.layout import TableFile, check_table_file
from m2v_edge.bundle.manifest import Manifest
from m2v_edge.errors import BundleError

CHECKS_VERSION = 3
"""Part of every stamp's `check_id`: bumped when the checks change, so that files are checked again."""


def verify_file(
    bundle_dir: Path, entry: FileEntry, *, check: Callable[[Path], None] | None = None, check_id: str = ""
) -> Path:
    """Check that a bundle file exists and matches its manifest entry; return its path.

    Always checked: the name stays inside the bundle (no absolute path, no `..`, no symlink leading out), the file
    is a regular file, its size. The sha256, and then `check` (a format check that raises `BundleError`), run once
    per file state: success is stamped (`m2v_edge.bundle.stamps`) with the file's sha256 and `check_id` (which
    names the check and the manifest values it compared), so later loads of an unchanged file skip hashing and
    parsing. Only a file that passed everything gets a stamp.
    """
    path = Path(bundle_dir) / entry.file
    if leaves_folder(entry.file):
        raise BundleError(f"manifest of {bundle_dir} names a file outside the bundle: {entry.file!r}")
    try:
        stat = bundle_file_stat(Path(bundle_dir), path)
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing; re-export the bundle or copy it again") from None
    except OSError as exc:
        raise BundleError(f"cannot read bundle file {path}: {exc.strerror or exc}") from None
    if stat.st_size != entry.size:
        raise BundleError(
            f"bundle file {path} has {stat.st_size} bytes, the manifest says {entry.size}: "
            "the file is truncated or was replaced; re-export or copy the bundle again"
        )
    key = f"{entry.sha256}-{check_id}" if check_id else entry.sha256
    if stamps.is_stamped(stat, key):
        return path
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise BundleError(
            f"bundle file {path} does not match its manifest (sha256 {actual[:12]}..., expected "
            f"{entry.sha256[:12]}...): it was modified or corrupted; re-export or copy the bundle again"
        )
    if check is not None:
        check(path)
    stamps.stamp(stat, key)
    return path


def verify_model(bundle_dir: Path, manifest: Manifest, variant: str) -> Path:
    """`verify_data` when the variant has a data file (formats 2 and 3), then `verify_file` for its graph, checked by
    `m2v_edge.bundle.checks.check_model_file`; return the graph's path."""
    _check_variant(bundle_dir, variant)
    entry = manifest.variants[variant]
    if entry.file != model_file(variant) and not leaves_folder(entry.file):  # verify_file explains the latter
        raise BundleError(
            f"the manifest of {bundle_dir} puts variant {variant} in {entry.file!r}, not {model_file(variant)!r}: "
            "its variants disagree with the files; re-export the bundle"
        )
    table = manifest.tables.get(variant)
    if table is not None:
        verify_data(bundle_dir, manifest, variant)
    layout = _layout_key(table) if table is not None else "-"
    check_id = f"model{CHECKS_VERSION}.{variant}.{manifest.dim}.{manifest.vocab_size}.{layout}"
    return verify_file(
        bundle_dir, entry, check=lambda path: checks.check_model_file(path, manifest, variant), check_id=check_id
    )


def verify_data(bundle_dir: Path, manifest: Manifest, variant: str) -> Path:
    """`verify_file` for a variant's data file, in format 3 checked by `m2v_edge.bundle.checks.check_data_file`
    (its layout was checked with the manifest); return its path. Raises `BundleError` when the variant has none."""
    _check_variant(bundle_dir, variant)
    table = manifest.tables.get(variant)
    if table is None:
        raise BundleError(f"variant {variant} of {bundle_dir} has no data file (bundle format "
                          f"{manifest.format_version} keeps its table in the graph); re-export the bundle")
    if not table.arrays:  # format 2: the whole file is the table, checked with the graph
        return verify_file(bundle_dir, table)
    try:  # read_manifest checked it; a Manifest built in code was not
        check_table_file(variant, table, dim=manifest.dim, vocab_size=manifest.vocab_size)
    except ValueError as exc:
        raise BundleError(f"the manifest of {bundle_dir} lays out {table.file} wrongly ({exc}); re-export the "
                          "bundle") from None
    check_id = f"data{CHECKS_VERSION}.{variant}.{_layout_key(table)}"
    return verify_file(
        bundle_dir, table, check=lambda path: checks.check_data_file(path, manifest, variant), check_id=check_id
    )


def _check_variant(bundle_dir: Path, variant: str) -> None:
    if variant not in VARIANTS:
        raise BundleError(
            f"bundle {bundle_dir} has a variant {variant!r} this m2v-edge does not know: "
            "upgrade m2v-edge (pip install -U m2v-edge)"
        )


def _layout_key(table: TableFile) -> str:
    """A short name for a data file's size and layout, part of the stamps of the checks that compared it: any change
    of the layout in the manifest has the graph and data file checked again."""
    layout = (table.size, sorted(table.arrays.items()), table.int4)
    return f"{table.size}.{zlib.crc32(repr(layout).encode()):08x}"


def verify_tokenizer(bundle_dir: Path, manifest: Manifest) -> Path:
    """`verify_file` for `tokenizer.json`, checked by `m2v_edge.bundle.checks.check_tokenizer_file`; return its path."""
    check_id = f"tokenizer{CHECKS_VERSION}.{manifest.vocab_size}"
    return verify_file(
        bundle_dir, manifest.tokenizer, check=lambda path: checks.check_tokenizer_file(path, manifest), check_id=check_id
    )
