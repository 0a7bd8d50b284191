"""The manifest `m2v_edge.json`: its schema (`Manifest`), parsing with checks of every value, and writing.

Only the standard library is used here so that the runtime stays dependency-light.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from m2v_edge.bundle.files import FileEntry, bundle_file_stat
from m2v_edge.bundle.format import CORE_TOKENIZER_FILE, FORMAT_VERSION, MANIFEST_FILE, VARIANTS, table_file
from m2v_edge.bundle.layout import TableFile, check_table_file
from m2v_edge.errors import BundleError


@dataclass(frozen=True)
class SourceInfo:
    """Where a bundle came from."""

    id: str
    """The Hub id or the local folder name the model was exported from."""
    revision: str | None
    """The Hub commit, or None for a local folder."""
    sha256: str
    """sha256 of the source's safetensors file."""


@dataclass(frozen=True)
class CoreTokenizer:
    """What the export decided about the native tokenizing core for this bundle's tokenizer."""

    file: FileEntry | None
    """`tokenizer.m2v` when the core reproduces the pipeline; None when the bundle tokenizes through tokenizers."""
    reason: str
    """Why not, when `file` is None (empty otherwise)."""
    core_version: int
    """The core's version (`m2v_edge._core.CORE_VERSION`) that compiled and checked the file: a runtime with another
    core version tokenizes through tokenizers until the bundle is exported again."""
    probe_texts: int
    """How many texts the export tokenized both ways, with the same ids, before deciding."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreTokenizer:
        entry = data["file"]
        return cls(
            file=None if entry is None else FileEntry(**entry),
            reason=str(data["reason"]),
            core_version=int(data["core_version"]),
            probe_texts=int(data["probe_texts"]),
        )


@dataclass(frozen=True)
class Manifest:
    """The contents of `m2v_edge.json`: everything the runtime needs besides the files themselves."""

    source: SourceInfo
    dim: int
    normalize: bool
    max_length: int | None
    """Token truncation length (model2vec's `max_length`), None for no truncation."""
    median_token_length: int
    """Characters kept per token allowed: texts are cut to `max_length * median_token_length` characters."""
    unk_id: int | None
    pad_id: int
    vocab_size: int
    variants: dict[str, FileEntry]
    tokenizer: FileEntry
    licence_files: tuple[FileEntry, ...] = ()
    exporter_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form facts recorded by the exporter (table dtype, weights/mapping present...)."""
    truncated_from: int | None = None
    """The source table's dim when the export kept only its first `dim` dimensions (`export_model(...,
    dimensionality=N)`, `--dim N`), None when every dimension was kept. Absent from older manifests."""
    tables: dict[str, TableFile] = field(default_factory=dict)
    """Each variant's data file: in format 3 every array its graph reads, with their layout; in format 2 the token
    table alone (no layout: the whole file); empty in format 1, whose graphs hold their tables."""
    core_tokenizer: CoreTokenizer | None = None
    """The export's decision about the native core; None in bundles exported before the core existed."""

    def files(self) -> list[FileEntry]:
        """Every file the manifest lists."""
        core = [self.core_tokenizer.file] if self.core_tokenizer and self.core_tokenizer.file else []
        return [*self.variants.values(), *self.tables.values(), self.tokenizer, *core, *self.licence_files]

    def variant_size(self, variant: str) -> int:
        """Bytes on disk of a variant's graph and table file."""
        table = self.tables.get(variant)
        return self.variants[variant].size + (table.size if table else 0)

    @property
    def char_limit(self) -> int | None:
        """How many characters of a text are tokenised (model2vec's pre-truncation), None for all."""
        if self.max_length is None:
            return None
        return self.max_length * self.median_token_length

    def fingerprint(self, variant: str) -> str:
        """Identity of the vectors a variant produces: source sha256, variant, normalize, dim."""
        return f"{self.source.sha256[:16]}:{variant}:{'norm' if self.normalize else 'raw'}:{self.dim}"

    def to_json(self) -> str:
        """Serialise with sorted keys so that the same export gives the same bytes."""
        data = asdict(self)
        data["licence_files"] = list(data["licence_files"])
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = MANIFEST_FILE) -> Manifest:
        """Parse a manifest, refusing newer format versions and malformed content."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BundleError(f"{where} is not valid JSON ({exc}); re-export the bundle") from None
        if not isinstance(data, dict):
            raise BundleError(f"{where} must hold a JSON object; re-export the bundle")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BundleError(f"{where} has no integer 'format_version'; re-export the bundle")
        if version < 1:
            raise BundleError(f"{where} has format_version {version}, which no m2v-edge writes; re-export the bundle")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{where} uses bundle format {version} but this m2v-edge reads up to {FORMAT_VERSION}: "
                "upgrade m2v-edge (pip install -U m2v-edge)"
            )
        try:
            manifest = cls(
                source=SourceInfo(**data["source"]),
                dim=int(data["dim"]),
                normalize=bool(data["normalize"]),
                max_length=data["max_length"],
                median_token_length=int(data["median_token_length"]),
                unk_id=data["unk_id"],
                pad_id=int(data["pad_id"]),
                vocab_size=int(data["vocab_size"]),
                variants={name: FileEntry(**entry) for name, entry in data["variants"].items()},
                tokenizer=FileEntry(**data["tokenizer"]),
                licence_files=tuple(FileEntry(**entry) for entry in data.get("licence_files", [])),
                exporter_version=str(data.get("exporter_version", "")),
                format_version=version,
                extra=dict(data.get("extra", {})),
                truncated_from=_optional_int(data.get("truncated_from")),
                tables={name: TableFile.from_dict(entry) for name, entry in data.get("tables", {}).items()},
                core_tokenizer=(
                    None if data.get("core_tokenizer") is None else CoreTokenizer.from_dict(data["core_tokenizer"])
                ),
            )
            _check_values(manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where} is missing or has a malformed field ({exc!r}); re-export the bundle") from None
        return manifest


_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 1 << 20


def _check_values(manifest: Manifest) -> None:
    """Raise ValueError for values no exporter writes (they would reach numpy or file paths unchecked)."""
    for name in ("dim", "vocab_size", "median_token_length"):
        if getattr(manifest, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(manifest, name)}")
    _optional_int(manifest.max_length)
    unk = manifest.unk_id
    if unk is not None and (isinstance(unk, bool) or not isinstance(unk, int) or not 0 <= unk < manifest.vocab_size):
        raise ValueError(f"unk_id must be null or a token id below vocab_size, got {unk!r}")
    if not manifest.variants:
        raise ValueError("variants is empty")
    for variant, entry in manifest.tables.items():
        if variant not in manifest.variants or entry.file != table_file(variant):
            raise ValueError(f"tables holds {variant!r} in {entry.file!r}; expected {table_file(variant)!r} of a variant")
    core = manifest.core_tokenizer
    if core is not None and core.file is not None and core.file.file != CORE_TOKENIZER_FILE:
        raise ValueError(f"core_tokenizer names {core.file.file!r}; expected {CORE_TOKENIZER_FILE!r}")
    for entry in manifest.files():
        if not isinstance(entry.file, str) or not entry.file or "\x00" in entry.file:
            raise ValueError(f"file must be a non-empty name, got {entry.file!r}")
        if not isinstance(entry.sha256, str) or not _SHA256.fullmatch(entry.sha256):
            raise ValueError(f"sha256 of {entry.file} must be 64 lowercase hex digits, got {entry.sha256!r}")
        if isinstance(entry.size, bool) or not isinstance(entry.size, int) or entry.size < 0:
            raise ValueError(f"size of {entry.file} must be a whole number of bytes, got {entry.size!r}")
    _check_layouts(manifest)


def _check_layouts(manifest: Manifest) -> None:
    """Format 3: every variant has a data file laid out as its graph reads it. Before: no layouts. (A variant this
    version does not know is refused by `verify_model`, with the advice to upgrade.)"""
    for variant in manifest.variants:
        entry = manifest.tables.get(variant)
        if variant not in VARIANTS:
            continue
        if manifest.format_version < 3:
            if entry is not None and (entry.arrays or entry.int4 is not None):
                raise ValueError(f"tables.{variant} lists arrays, which bundle format {manifest.format_version} has not")
        elif entry is None or not entry.arrays:
            raise ValueError(f"variant {variant} has no data file layout in tables")
        else:
            check_table_file(variant, entry, dim=manifest.dim, vocab_size=manifest.vocab_size)


def _optional_int(value: Any) -> int | None:
    """None, or a positive integer (bools refused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer or null, got {value!r}")
    return value


def read_manifest(bundle_dir: Path) -> Manifest:
    """Read and parse a bundle's manifest, with errors that name the folder."""
    path = Path(bundle_dir) / MANIFEST_FILE
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"bundle folder {bundle_dir} does not exist; export one with 'm2v-edge export'")
    try:
        info = bundle_file_stat(Path(bundle_dir), path)
        if info.st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{path} has {info.st_size} bytes, far more than a manifest; re-export the bundle")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(
            f"{bundle_dir} is not an m2v-edge bundle (no {MANIFEST_FILE}); export one with 'm2v-edge export'"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None
    return Manifest.from_json(text, where=str(path))


def write_manifest(bundle_dir: Path, manifest: Manifest) -> None:
    """Write `m2v_edge.json` into a folder."""
    (Path(bundle_dir) / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
