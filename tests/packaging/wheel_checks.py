"""Checks of a wheel file against the wheel specification (and of its ELF files against the ELF specification),
written from the specs rather than from m2v_edge."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path

from packaging.metadata import Metadata
from packaging.utils import parse_wheel_filename


def dist_info(wheel: Path) -> str:
    """The wheel's `.dist-info` folder name, checked to be the only one and to match the file name."""
    _, version, _, _ = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        folders = {entry.split("/")[0] for entry in archive.namelist() if entry.split("/")[0].endswith(".dist-info")}
    assert len(folders) == 1, folders
    (folder,) = folders
    assert folder == f"{wheel.name.split('-')[0]}-{version}.dist-info", (folder, wheel.name)
    return folder


def metadata(wheel: Path) -> Metadata:
    """The wheel's METADATA, parsed and validated by `packaging` (raises on any invalid field)."""
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(f"{dist_info(wheel)}/METADATA")
    return Metadata.from_email(raw, validate=True)


def check_record(wheel: Path) -> dict[str, int]:
    """Check RECORD: every other file listed once with the right sha256 and size, RECORD itself without. Zip entries
    for folders (which auditwheel writes) are not files, and RECORD does not list them.

    :return: entry name -> size, for the entries RECORD lists.
    """
    folder = dist_info(wheel)
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]  # folder entries are no files
        assert len(names) == len(set(names)), "duplicate entries"
        rows = list(csv.reader(io.StringIO(archive.read(f"{folder}/RECORD").decode("utf-8"))))
        listed: dict[str, int] = {}
        for path, digest, size in rows:
            if path == f"{folder}/RECORD":
                assert (digest, size) == ("", ""), "RECORD must not hash itself"
                continue
            data = archive.read(path)
            algorithm, _, value = digest.partition("=")
            assert algorithm == "sha256", digest
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert value == expected, f"{path}: RECORD says {value}, content hashes to {expected}"
            assert int(size) == len(data), f"{path}: RECORD says {size} bytes, content is {len(data)}"
            listed[path] = len(data)
    assert set(listed) | {f"{folder}/RECORD"} == set(names), set(names) ^ (set(listed) | {f"{folder}/RECORD"})
    return listed


def wheel_text(wheel: Path, member: str) -> str:
    """A text file of the wheel's `.dist-info` folder."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"{dist_info(wheel)}/{member}").decode("utf-8")


def elf_machine(data: bytes) -> int:
    """The e_machine field of an ELF file (62: x86-64, 183: AArch64), read from its header."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2 and data[5] == 1, "not a 64-bit little-endian ELF file"
    return int.from_bytes(data[18:20], "little")


def elf_needs(data: bytes) -> tuple[set[str], dict[str, set[str]]]:
    """The shared libraries an ELF file names (DT_NEEDED), and the symbol versions it needs from each."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    elf = ELFFile(io.BytesIO(data))
    needed: set[str] = set()
    versions: dict[str, set[str]] = {}
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            needed |= {tag.needed for tag in section.iter_tags("DT_NEEDED")}
        elif isinstance(section, GNUVerNeedSection):
            for library, auxiliaries in section.iter_versions():
                versions.setdefault(library.name, set()).update(aux.name for aux in auxiliaries)
    return needed, versions
