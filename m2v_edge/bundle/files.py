"""A bundle's files: their manifest entries (`FileEntry`), their sha256, and reading them safely (names that stay
inside the folder, regular files only)."""

from __future__ import annotations

import os
import stat as stat_mode
from dataclasses import dataclass
from pathlib import Path

from m2v_edge.errors import BundleError


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


def leaves_folder(name: str) -> bool:
    """Whether a manifest's file name is absolute or climbs out with `..`."""
    return Path(name).is_absolute() or ".." in Path(name).parts


def bundle_file_stat(bundle_dir: Path, path: Path) -> os.stat_result:
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
