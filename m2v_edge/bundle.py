"""The bundle format: the one module that both `export` (writer) and `runtime` (reader) import.

A bundle is a folder::

    m2v_edge.json          the manifest (this module's `Manifest`)
    tokenizer.json         the source tokenizer, padding and truncation settings removed
    model.<variant>.onnx   one pooling graph per variant (fp32, fp16, int8, int4)
    LICENSE, ATTRIBUTION.txt, ...   the source's licence files, copied verbatim

Only the standard library is used here so that the runtime stays dependency-light.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from m2v_edge.errors import BundleError

FORMAT_VERSION = 1
MANIFEST_FILE = "m2v_edge.json"
TOKENIZER_FILE = "tokenizer.json"
VARIANTS = ("fp32", "fp16", "int8", "int4")
"""Every variant this format version knows, in order of decreasing precision."""

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embeddings"


def model_file(variant: str) -> str:
    """The file name of a variant's graph inside a bundle."""
    return f"model.{variant}.onnx"


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
        if not isinstance(version, int):
            raise BundleError(f"{where} has no integer 'format_version'; re-export the bundle")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{where} uses bundle format {version} but this m2v-edge reads up to {FORMAT_VERSION}: "
                "upgrade m2v-edge (pip install -U m2v-edge)"
            )
        try:
            return cls(
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
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where} is missing or has a malformed field ({exc!r}); re-export the bundle") from None


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


def verify_file(bundle_dir: Path, entry: FileEntry) -> Path:
    """Check that a bundle file exists and matches its manifest entry; return its path.

    The size is always checked. The sha256 is checked once per file state: a successful check is remembered
    under `$XDG_CACHE_HOME/m2v-edge/verified/` keyed by the file's device, inode, size, mtime and ctime, so later
    loads of an unchanged file skip the hashing (any write to the file changes its ctime).
    """
    path = Path(bundle_dir) / entry.file
    if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
        raise BundleError(f"manifest of {bundle_dir} names a file outside the bundle: {entry.file!r}")
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing; re-export the bundle or copy it again") from None
    if stat.st_size != entry.size:
        raise BundleError(
            f"bundle file {path} has {stat.st_size} bytes, the manifest says {entry.size}: "
            "the file is truncated or was replaced; re-export or copy the bundle again"
        )
    stamp = _stamp_path(stat, entry.sha256)
    if stamp.exists():
        return path
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise BundleError(
            f"bundle file {path} does not match its manifest (sha256 {actual[:12]}..., expected "
            f"{entry.sha256[:12]}...): it was modified or corrupted; re-export or copy the bundle again"
        )
    _touch(stamp)
    return path


def _stamp_path(stat: os.stat_result, sha256: str) -> Path:
    """Where a successful check of this exact file state is remembered (device, inode, size, times, digest)."""
    key = f"{stat.st_dev}-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ctime_ns}-{sha256}"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "m2v-edge" / "verified"
    return cache / key


def _touch(stamp: Path) -> None:
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        pass  # a read-only cache only costs the fast path
