"""Where m2v-edge keeps user data: the XDG base directories, in one place.

`$XDG_CONFIG_HOME/m2v-edge` holds user profiles, `$XDG_CACHE_HOME/m2v-edge` the verified-file stamps and the
drop-in's exported bundles. As the XDG Base Directory specification says, a variable that is unset, empty or not an
absolute path is ignored, and the default (`~/.config`, `~/.cache`) is used instead.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "m2v-edge"


def _base(variable: str, default: str) -> Path:
    value = os.environ.get(variable) or ""
    return Path(value) if os.path.isabs(value) else Path.home() / default


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/m2v-edge` (default `~/.config/m2v-edge`); it may not exist."""
    return _base("XDG_CONFIG_HOME", ".config") / APP


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/m2v-edge` (default `~/.cache/m2v-edge`); it may not exist."""
    return _base("XDG_CACHE_HOME", ".cache") / APP
