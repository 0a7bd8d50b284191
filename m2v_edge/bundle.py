"""The bundle format: the one module that both `export` (writer) and `runtime` (reader) import.

A bundle is a folder::

    m2v_edge.json          the manifest (this module's `Manifest`)
    tokenizer.json         the source tokenizer, padding and truncation settings removed
    model.<variant>.onnx   one pooling graph per variant (fp32, fp16, int8, int4)
    model.<variant>.data   its token table, the graph's only ONNX external data (format 2): onnxruntime maps it
                           from the file instead of parsing and copying it out of the graph
    LICENSE, ATTRIBUTION.txt, ...   the source's licence files, copied verbatim

Only the standard library is used here so that the runtime stays dependency-light.
"""

from __future__ import annotations

import json
import os
import re
import stat as stat_mode
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from m2v_edge.errors import BundleError
from m2v_edge.paths import cache_dir

FORMAT_VERSION = 2
"""1: tables inside the graphs. 2: each variant's table in `model.<variant>.data` beside its graph (format 1 still read)."""
MANIFEST_FILE = "m2v_edge.json"
TOKENIZER_FILE = "tokenizer.json"
VARIANTS = ("fp32", "fp16", "int8", "int4")
"""Every variant this format version knows, in order of decreasing precision."""
DEFAULT_VARIANTS = ("fp32", "int8")
"""What an export writes unless told otherwise (`export_model`, `m2v-edge export`, the drop-in's cached exports)."""

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embeddings"


def model_file(variant: str) -> str:
    """The file name of a variant's graph inside a bundle."""
    return f"model.{variant}.onnx"


def table_file(variant: str) -> str:
    """The file name of a variant's token table (the graph's external data) inside a bundle."""
    return f"model.{variant}.data"


def table_tensor(variant: str) -> str:
    """The name of the graph initializer that holds a variant's token table."""
    return "int4_table" if variant == "int4" else "table"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib  # imported here: it loads OpenSSL (about 4 MB), needed only on a bundle's first load

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle with the sha256 and size it must have."""

    file: str
    sha256: str
    size: int

    @classmethod
    def of(cls, folder: Path, name: str) -> FileEntry:
        """Describe the file `folder/name` as it is now."""
        path = folder / name
        return cls(file=name, sha256=sha256_file(path), size=path.stat().st_size)


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
    tables: dict[str, FileEntry] = field(default_factory=dict)
    """Each variant's table file (format 2); empty in format 1, whose graphs hold their tables."""

    def files(self) -> list[FileEntry]:
        """Every file the manifest lists."""
        return [*self.variants.values(), *self.tables.values(), self.tokenizer, *self.licence_files]

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
                tables={name: FileEntry(**entry) for name, entry in data.get("tables", {}).items()},
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
    for entry in manifest.files():
        if not isinstance(entry.file, str) or not entry.file or "\x00" in entry.file:
            raise ValueError(f"file must be a non-empty name, got {entry.file!r}")
        if not isinstance(entry.sha256, str) or not _SHA256.fullmatch(entry.sha256):
            raise ValueError(f"sha256 of {entry.file} must be 64 lowercase hex digits, got {entry.sha256!r}")
        if isinstance(entry.size, bool) or not isinstance(entry.size, int) or entry.size < 0:
            raise ValueError(f"size of {entry.file} must be a whole number of bytes, got {entry.size!r}")


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
        info = _bundle_file_stat(Path(bundle_dir), path)
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


def verify_file(
    bundle_dir: Path, entry: FileEntry, *, check: Callable[[Path], None] | None = None, check_id: str = ""
) -> Path:
    """Check that a bundle file exists and matches its manifest entry; return its path.

    Always checked: the name stays inside the bundle (no absolute path, no `..`, no symlink leading out), the file
    is a regular file, its size. The sha256, and then `check` (a format check that raises `BundleError`), run once
    per file state: success is remembered under `$XDG_CACHE_HOME/m2v-edge/verified/` keyed by the file's device,
    inode, size, mtime and ctime, its sha256 and `check_id` (which names the check and the manifest values it
    compared), so later loads of an unchanged file skip hashing and parsing (any write changes the ctime). Only
    a file that passed everything gets a stamp.
    """
    path = Path(bundle_dir) / entry.file
    if _leaves_folder(entry.file):
        raise BundleError(f"manifest of {bundle_dir} names a file outside the bundle: {entry.file!r}")
    try:
        stat = _bundle_file_stat(Path(bundle_dir), path)
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing; re-export the bundle or copy it again") from None
    except OSError as exc:
        raise BundleError(f"cannot read bundle file {path}: {exc.strerror or exc}") from None
    if stat.st_size != entry.size:
        raise BundleError(
            f"bundle file {path} has {stat.st_size} bytes, the manifest says {entry.size}: "
            "the file is truncated or was replaced; re-export or copy the bundle again"
        )
    stamp = _stamp_path(stat, f"{entry.sha256}-{check_id}" if check_id else entry.sha256)
    if stamp.exists():
        return path
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise BundleError(
            f"bundle file {path} does not match its manifest (sha256 {actual[:12]}..., expected "
            f"{entry.sha256[:12]}...): it was modified or corrupted; re-export or copy the bundle again"
        )
    if check is not None:
        check(path)
    _touch(stamp)
    return path


def _leaves_folder(name: str) -> bool:
    """Whether a manifest's file name is absolute or climbs out with `..`."""
    return Path(name).is_absolute() or ".." in Path(name).parts


def _bundle_file_stat(bundle_dir: Path, path: Path) -> os.stat_result:
    """`stat` of a bundle file that must be a regular file inside the bundle folder, symlinks resolved."""
    root = bundle_dir.resolve()
    try:
        real = path.resolve()
    except RuntimeError:  # a symlink loop (Python < 3.13)
        raise BundleError(f"bundle file {path} is a symlink loop; copy the real file into the bundle") from None
    if real != root and root not in real.parents:
        raise BundleError(
            f"bundle file {path} is a symlink to {real}, outside the bundle folder {root}: "
            "copy the real file into the bundle (m2v-edge follows no links out of a bundle)"
        )
    info = path.stat()
    if not stat_mode.S_ISREG(info.st_mode):
        raise BundleError(f"bundle file {path} is not a regular file; re-export the bundle or copy it again")
    return info


def _stamp_path(stat: os.stat_result, sha256: str) -> Path:
    """Where a successful check of this exact file state is remembered (device, inode, size, times, digest)."""
    key = f"{stat.st_dev}-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ctime_ns}-{sha256}"
    return cache_dir() / "verified" / key


def _touch(stamp: Path) -> None:
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        pass  # a read-only cache only costs the fast path


# ----------------------------------------------------------------------------- format checks (before onnxruntime)

CHECKS_VERSION = 2
"""Part of every stamp's `check_id`: bumped when the checks change, so that files are checked again."""


def verify_model(bundle_dir: Path, manifest: Manifest, variant: str) -> Path:
    """`verify_file` for a variant's table file (format 2) and graph, the graph checked by
    `m2v_edge.bundle_checks.check_model_file`; return the graph's path."""
    if variant not in VARIANTS:
        raise BundleError(
            f"bundle {bundle_dir} has a variant {variant!r} this m2v-edge does not know: "
            "upgrade m2v-edge (pip install -U m2v-edge)"
        )
    from m2v_edge.bundle_checks import check_model_file

    entry = manifest.variants[variant]
    if entry.file != model_file(variant) and not _leaves_folder(entry.file):  # verify_file explains the latter
        raise BundleError(
            f"the manifest of {bundle_dir} puts variant {variant} in {entry.file!r}, not {model_file(variant)!r}: "
            "its variants disagree with the files; re-export the bundle"
        )
    table = manifest.tables.get(variant)
    if table is not None:
        verify_file(bundle_dir, table)
    check_id = f"model{CHECKS_VERSION}.{variant}.{manifest.dim}.{manifest.vocab_size}.{table.size if table else '-'}"
    return verify_file(
        bundle_dir, entry, check=lambda path: check_model_file(path, manifest, variant), check_id=check_id
    )


def verify_tokenizer(bundle_dir: Path, manifest: Manifest) -> Path:
    """`verify_file` for `tokenizer.json`, checked by `m2v_edge.bundle_checks.check_tokenizer_file`; return its path."""
    from m2v_edge.bundle_checks import check_tokenizer_file

    check_id = f"tokenizer{CHECKS_VERSION}.{manifest.vocab_size}"
    return verify_file(
        bundle_dir, manifest.tokenizer, check=lambda path: check_tokenizer_file(path, manifest), check_id=check_id
    )
