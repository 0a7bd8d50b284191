"""The output folder of an export: what may be replaced, the staging folder beside it, and the final swap.

An export writes into `.NAME.<pid>.<random>.partial` beside `out_dir` and renames it to `out_dir` when complete.
An existing bundle is first renamed to `.NAME.<pid>.<random>.old/NAME` and deleted once the new one is in place.
Folders of these two kinds whose pid is no longer a running process were left by a killed export: the next export
to the same `out_dir` removes them.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from m2v_edge.bundle import MANIFEST_FILE
from m2v_edge.errors import ExportError

logger = logging.getLogger(__name__)

STAGING_SUFFIX = ".partial"
OLD_SUFFIX = ".old"


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse an `out_dir` export must not write: a file or link, a folder that is neither an m2v-edge bundle nor
    empty (never replaced, even with `overwrite`), or an existing bundle or empty folder without `overwrite`."""
    try:
        if out.is_symlink():
            raise ExportError(
                f"{out} is a symbolic link (to {os.readlink(out)}); export replaces only bundle folders: give the "
                "folder it points to, or another path"
            )
        if not out.exists():
            return
        if not out.is_dir():
            raise ExportError(f"{out} is a file, not a bundle folder; export to another path, or remove the file first")
        if not (out / MANIFEST_FILE).is_file() and any(out.iterdir()):
            raise ExportError(
                f"{out} is a folder that is not an m2v-edge bundle (it has no {MANIFEST_FILE}), and export replaces "
                "only bundles and empty folders: choose another output folder, or empty it yourself first"
            )
    except OSError as exc:
        raise ExportError(f"cannot use {out} as the output folder: {exc.strerror or exc}") from None
    if not overwrite:
        raise ExportError(f"{out} already exists; to replace it, export again with --overwrite (Python: overwrite)")


def check_not_source(out: Path, source_folder: Path) -> None:
    """Refuse an `out_dir` that is the source model's folder or contains it: replacing it would delete the model."""
    out_real, source_real = out.resolve(), source_folder.resolve()
    if out_real == source_real or out_real in source_real.parents:
        where = "is" if out_real == source_real else "contains"
        raise ExportError(
            f"{out} {where} the source model {source_folder}: replacing it would delete the model; "
            "choose another output folder"
        )


def make_staging(out: Path) -> Path:
    """Create the staging folder for an export to `out` (after removing those of killed exports) and return it."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(out)
        staging = Path(tempfile.mkdtemp(prefix=_prefix(out), suffix=STAGING_SUFFIX, dir=out.parent))
    except OSError as exc:
        raise ExportError(f"cannot write a bundle at {out}: {_why(out, exc)}; choose another output folder") from None
    staging.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared and copied
    return staging


def replace(staging: Path, out: Path) -> None:
    """Move the finished bundle into place; an existing bundle (checked again) is swapped out only at the very end,
    and put back if the new one cannot be moved in."""
    if not os.path.lexists(out):
        staging.rename(out)
        return
    check_out_dir(out, overwrite=True)
    holder = Path(tempfile.mkdtemp(prefix=_prefix(out), suffix=OLD_SUFFIX, dir=out.parent))
    old = holder / out.name
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        holder.rmdir()
        raise
    shutil.rmtree(holder, ignore_errors=True)


def _prefix(out: Path) -> str:
    return f".{out.name}.{os.getpid()}."


def _remove_leftovers(out: Path) -> None:
    """Remove the staging and set-aside folders of exports to `out` whose process is gone (killed before it could
    clean up). Those of running processes are left alone: two exports may run at once."""
    pattern = re.compile(
        rf"\.{re.escape(out.name)}\.(\d+)\.[a-z0-9_]+(?:{re.escape(STAGING_SUFFIX)}|{re.escape(OLD_SUFFIX)})"
    )
    for path in out.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and not path.is_symlink() and path.is_dir() and not _is_running(int(match.group(1))):
            logger.info("removing %s, left by an export that was killed", path)
            shutil.rmtree(path, ignore_errors=True)


def _is_running(pid: int) -> bool:
    """Whether a process `pid` exists. Only POSIX can ask without side effects (on Windows `os.kill` would end
    the process): elsewhere every pid counts as running, so nothing is removed."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    return True


def _why(out: Path, exc: OSError) -> str:
    """Why `out` cannot be written, named by its nearest existing parent rather than a temporary path."""
    existing = next(parent for parent in out.parents if os.path.lexists(parent))
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return f"{existing} is not writable ({exc.strerror})"
    return f"{exc.strerror or exc} (in {existing})"
