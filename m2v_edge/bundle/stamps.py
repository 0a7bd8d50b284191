"""The cache of verified bundle files: a stamp per file state that passed its sha256 and content checks.

Stamps live in `$XDG_CACHE_HOME/m2v-edge/verified/`, one empty file each, named by the file's device, inode, size,
mtime and ctime, its sha256 and the id of the checks it passed. Any write to a bundle file changes its ctime, so a
stamp never vouches for changed bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from m2v_edge.paths import cache_dir


def stamp_path(stat: os.stat_result, key: str) -> Path:
    """Where a successful check of this exact file state is remembered (device, inode, size, times, `key`)."""
    state = f"{stat.st_dev}-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ctime_ns}-{key}"
    return cache_dir() / "verified" / state


def is_stamped(stat: os.stat_result, key: str) -> bool:
    """Whether this file state passed the checks named by `key` before."""
    return stamp_path(stat, key).exists()


def stamp(stat: os.stat_result, key: str) -> None:
    """Remember that this file state passed the checks named by `key`."""
    path = stamp_path(stat, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # a read-only cache only costs the fast path
