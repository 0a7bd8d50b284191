"""`build_model_wheel`: a bundle in, a data-only wheel `m2v-edge-model-<name>` out (what `m2v-edge package` does).

The wheel is written with the standard library alone (zipfile, hashlib), so a device or a CI job needs no
setuptools. Its layout::

    m2v_edge_model_<name>/__init__.py          BUNDLE = the bundle folder's path (for the entry point)
    m2v_edge_model_<name>/bundle/...           the manifest and every file it lists, nothing else
    m2v_edge_model_<name>-<version>.dist-info/
        METADATA  WHEEL  entry_points.txt      [m2v_edge.models] <name> = m2v_edge_model_<name>:BUNDLE
        RECORD                                 sha256 and size of every other file

The same bundle, name and version always give the same bytes: entries are sorted, timestamps, permissions
and compression are fixed, and nothing about the machine or the time of the build is recorded.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from m2v_edge import __version__
from m2v_edge.bundle import MANIFEST_FILE, FileEntry, Manifest, read_manifest
from m2v_edge.errors import BundleError
from m2v_edge.models import BUNDLE_FOLDER, ENTRY_POINT_GROUP, canonical_name, distribution_name, module_name

FIRST_READER = {1: "0.1.0", 2: "0.2.0", 3: "0.3.0"}
"""The first m2v-edge release that reads each bundle format version (the model package's `Requires-Dist` floor).
Add a row whenever `m2v_edge.bundle.FORMAT_VERSION` goes up."""

WHEEL_TAG = "py3-none-any"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip file can hold: no build time ends up in the wheel."""
_FILE_MODE = 0o100644 << 16
_CHUNK = 1 << 20
_VERSION = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?")
"""A PEP 440 version in its normalised form (the form pip writes in file names)."""


def default_model_name(manifest: Manifest) -> str:
    """The model name a bundle gets unless one is given: the last part of its source id (`potion-base-8M`)."""
    return manifest.source.id.rstrip("/").rsplit("/", 1)[-1]


def model_wheel_name(name: str, version: str) -> str:
    """The wheel's file name, e.g. `m2v_edge_model_potion_base_8m-0.2.0-py3-none-any.whl`."""
    return f"{module_name(name)}-{version}-{WHEEL_TAG}.whl"


def build_model_wheel(
    bundle: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    variants: Sequence[str] | None = None,
) -> Path:
    """Package a bundle folder as the wheel of the distribution `m2v-edge-model-<name>`; return the wheel's path.

    Every file is checked against the manifest's size and sha256 while it is copied, so a damaged bundle is
    never shipped. The wheel is written to a temporary file in `out_dir` and renamed into place when complete.

    :param bundle: the bundle folder (from `m2v-edge export`).
    :param out_dir: the folder to write the wheel into (created if missing).
    :param name: the model name (default: the last part of the bundle's source id).
    :param version: the package version, PEP 440 normalised (default: this m2v-edge's version).
    :param variants: the variants to ship (default: all the bundle has); the packaged manifest lists only these.
    """
    folder = Path(bundle)
    manifest = read_manifest(folder)
    if variants is None:
        manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
    else:
        manifest = _with_variants(manifest, variants, folder)
        manifest_bytes = manifest.to_json().encode()
    name = canonical_name(name if name is not None else default_model_name(manifest))
    version = version if version is not None else __version__
    if _VERSION.fullmatch(version) is None:
        raise BundleError(f"package version {version!r} is not a normalised PEP 440 version such as 1.0 or 2.1.post1")
    module = module_name(name)
    files = _bundle_files(folder, manifest, manifest_bytes)
    dist_info = f"{module}-{version}.dist-info"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / model_wheel_name(name, version)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=out)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w") as wheel:
            record = [_write_bytes(wheel, f"{module}/__init__.py", _init_py(name, manifest).encode())]
            for entry in files:
                arcname = f"{module}/{BUNDLE_FOLDER}/{entry.file}"
                if entry.file == MANIFEST_FILE:
                    record.append(_write_bytes(wheel, arcname, manifest_bytes))
                else:
                    record.append(_copy_checked(wheel, folder, entry, arcname))
            metadata = {
                "METADATA": _metadata(name, version, manifest, files),
                "WHEEL": f"Wheel-Version: 1.0\nGenerator: m2v-edge {__version__}\nRoot-Is-Purelib: true\n"
                f"Tag: {WHEEL_TAG}\n",
                "entry_points.txt": f"[{ENTRY_POINT_GROUP}]\n{name} = {module}:BUNDLE\n",
            }
            for file, text in metadata.items():
                record.append(_write_bytes(wheel, f"{dist_info}/{file}", text.encode()))
            record.append((f"{dist_info}/RECORD", "", ""))
            _write_bytes(wheel, f"{dist_info}/RECORD", _csv(record).encode())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a wheel is meant to be copied around
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _with_variants(manifest: Manifest, variants: Sequence[str], folder: Path) -> Manifest:
    """The manifest of the same bundle holding only `variants` (at least one, each one the bundle has)."""
    missing = [variant for variant in variants if variant not in manifest.variants]
    if missing or not variants:
        which = f"has no variant {', '.join(map(repr, missing))}" if missing else "needs at least one variant"
        raise BundleError(f"packaging bundle {folder} {which}; it has {', '.join(manifest.variants)}")
    return dataclasses.replace(
        manifest,
        variants={v: entry for v, entry in manifest.variants.items() if v in variants},
        tables={v: entry for v, entry in manifest.tables.items() if v in variants},
    )


def _bundle_files(folder: Path, manifest: Manifest, manifest_bytes: bytes) -> list[FileEntry]:
    """The manifest itself (as packaged) and every file it lists, sorted by name."""
    listed = manifest.files()
    for entry in listed:
        if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts or entry.file == MANIFEST_FILE:
            raise BundleError(
                f"manifest of {folder} lists a file it cannot contain: {entry.file!r}; re-export the bundle"
            )
    own = FileEntry(MANIFEST_FILE, hashlib.sha256(manifest_bytes).hexdigest(), len(manifest_bytes))
    return sorted({entry.file: entry for entry in [own, *listed]}.values(), key=lambda entry: entry.file)


def _zip_info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _FILE_MODE
    info.create_system = 3  # unix, whatever the building machine is
    return info


def _record_line(arcname: str, digest: bytes, size: int) -> tuple[str, str, str]:
    """A RECORD row: path, `sha256=<urlsafe base64 without padding>`, size."""
    encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return arcname, f"sha256={encoded}", str(size)


def _csv(rows: list[tuple[str, str, str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_bytes(wheel: zipfile.ZipFile, arcname: str, data: bytes) -> tuple[str, str, str]:
    wheel.writestr(_zip_info(arcname), data)
    return _record_line(arcname, hashlib.sha256(data).digest(), len(data))


def _copy_checked(wheel: zipfile.ZipFile, folder: Path, entry: FileEntry, arcname: str) -> tuple[str, str, str]:
    """Stream one bundle file into the wheel, hashing it on the way; refuse it if it differs from the manifest."""
    path = folder / entry.file
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as source, wheel.open(_zip_info(arcname), "w", force_zip64=entry.size >= 1 << 31) as sink:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                sink.write(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise BundleError(f"bundle file {path} is missing; re-export the bundle or copy it again") from None
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise BundleError(
            f"bundle file {path} does not match its manifest ({size} bytes, sha256 {digest.hexdigest()[:12]}...; "
            f"expected {entry.size} bytes, {entry.sha256[:12]}...): re-export or copy the bundle again"
        )
    return _record_line(arcname, digest.digest(), size)


def _init_py(name: str, manifest: Manifest) -> str:
    return (
        f'"""m2v-edge model package {name!r}: the bundle of {manifest.source.id} in ./{BUNDLE_FOLDER}/.\n\n'
        f"Load it with m2v_edge.EdgeEmbedder({name!r}); list installed models with 'm2v-edge models'.\n"
        '"""\n\n'
        "from pathlib import Path\n\n"
        f'BUNDLE = Path(__file__).resolve().parent / "{BUNDLE_FOLDER}"\n'
    )


def _metadata(name: str, version: str, manifest: Manifest, files: list[FileEntry]) -> str:
    variants = ", ".join(sorted(manifest.variants))
    floor = FIRST_READER.get(manifest.format_version, manifest.exporter_version or __version__)
    revision = manifest.source.revision or "local folder"
    licences = ", ".join(entry.file for entry in manifest.licence_files) or "none recorded"
    sizes = "\n".join(f"| `{entry.file}` | {entry.size:,} |" for entry in files)
    description = (
        f"# {distribution_name(name)}\n\n"
        f"The Model2Vec model `{manifest.source.id}` (revision: {revision}) as an m2v-edge bundle: "
        f"variants {variants}, dimension {manifest.dim}, bundle format {manifest.format_version}, "
        f"exported by m2v-edge {manifest.exporter_version or 'unknown'}.\n\n"
        "```python\n"
        "from m2v_edge import EdgeEmbedder\n\n"
        f'vectors = EdgeEmbedder("{name}").encode(["some text"])\n'
        "```\n\n"
        f"The source's licence files ship in the bundle: {licences}. Source weights sha256 "
        f"`{manifest.source.sha256}`.\n\n| file | bytes |\n|---|---|\n{sizes}\n"
    )
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {distribution_name(name)}\n"
        f"Version: {version}\n"
        f"Summary: Model2Vec model {manifest.source.id} as an m2v-edge bundle ({variants}; dim {manifest.dim})\n"
        f"Keywords: m2v-edge,model2vec,embeddings,onnx\n"
        f"Requires-Dist: m2v-edge>={floor}\n"
        "Description-Content-Type: text/markdown\n"
        "\n"
        f"{description}"
    )

